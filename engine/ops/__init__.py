"""Op families. Importing this package registers every op in `engine.registry`."""

from . import (  # noqa: F401
    activations,
    arithmetic,
    compare,
    elementwise,
    extrema,
    losses,
    nn,
    norm,
    pointwise_losses,
    reductions,
    shape,
    special,
)
