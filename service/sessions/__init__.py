"""The session domain: building a session from a request, running its programs forward and
backward with the engine, stepping its optimizer, and turning store records into engine
tensors and back. Plain Python over the engine and the `SessionStore` Protocol: no HTTP, no
store driver (the `session-domain` contract in .importlinter). The HTTP protocol around it
is `service.http.sessions`; the routes are `service.routes.sessions`, `training`,
`state_dict` and `parameters`."""
