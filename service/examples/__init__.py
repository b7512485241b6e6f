"""The OpenAPI examples: data tables (long by nature), one per group of routes. The tests run
every example against the app, so the documentation cannot drift from the behaviour."""
