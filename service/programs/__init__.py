"""The program endpoints' work, without HTTP: a request's program compiled and checked within
the limits (`requests`), evaluated with its gradients and DAG (`evaluate`), differentiated
as Jacobians, Hessians and gradchecks (`derivatives`); and the model templates whose
programs sessions train (`models`)."""
