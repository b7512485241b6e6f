"""The pydantic schemas of the API, one module per resource: what requests send (`...Create`)
and answers hold (`...Public`). FastAPI documents them in OpenAPI under their class names."""
