"""Op families. Importing this package registers every op in `engine.registry`."""

from . import elementwise, losses, nn, pointwise_losses, reductions, shape  # noqa: F401
