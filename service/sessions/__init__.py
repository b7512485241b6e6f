"""The session resource's domain logic: building a session from a request, running its
program forward and backward with the engine, stepping its optimizer, and turning store
records into engine tensors and back. The routes in `service.routes.sessions` stay thin."""
