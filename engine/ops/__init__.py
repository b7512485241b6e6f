"""Op families. Importing this package registers every op in `engine.registry`."""

from . import elementwise, reductions, shape  # noqa: F401
