"""HTTP service: FastAPI app factory, wire formats and error model around the `engine`."""

__version__ = "0.1.0"  # keep equal to pyproject's; it is the OpenAPI document's version
