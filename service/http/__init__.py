"""The HTTP layer: how requests reach the routes (route classes, body limit, negotiation,
request ids, logs, OpenAPI) and the HTTP protocol around a session (tokens, ETags,
idempotent replays). Nothing below it (wire formats, programs, the session domain, the
store) imports it."""
