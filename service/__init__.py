"""HTTP service around the `engine`. The packages are its layers, each importing only those
below it (the `service-layers` contract in .importlinter):

    cli, app     the command line and the app factory
    routes       one router per resource
    http         HTTP plumbing, and the HTTP protocol of a session (tokens, ETags, replays)
    sessions     the session domain: no HTTP, no store driver
    programs     the program endpoints' work: compile, evaluate, derivatives, model templates
    store        the SessionStore Protocol, its records and errors; the SQLite and Redis drivers
    schemas      pydantic request and answer models, one module per resource
    wire         wire formats: JSON tensors, base64, safetensors, strict JSON
    problems     the problem catalogue and the exception the layers above raise
    metrics, settings, examples
"""

__version__ = "0.1.0"  # keep equal to pyproject's; it is the OpenAPI document's version
