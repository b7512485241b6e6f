"""Op families. Importing this package registers every op in `engine.registry`."""

from . import (  # noqa: F401
    activations,
    arithmetic,
    arrange,
    compare,
    elementwise,
    extrema,
    indexing,
    join,
    linalg,
    losses,
    matmul,
    nn,
    norm,
    pointwise_losses,
    reductions,
    shape,
    slicing,
    special,
)
