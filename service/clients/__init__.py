"""Who is calling: API keys and their file (`keys`), the file as the server reads it, kept
current (`keyring`), and each client's request rate (`ratelimit`). Plain Python: the HTTP
layer (`service.http.clients`) applies them to requests, and the store counts each client's
sessions and bytes (`StoreLimits.caps`)."""
