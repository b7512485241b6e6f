"""Un-broadcasting, written once: sum a gradient back to the shape of the operand it is for.
Every op relies on it (the backward loop applies it), so no op author writes it."""

import numpy as np

from ..registry import FUNCTIONS


def reduce_axes(shape, target) -> tuple[tuple[int, ...], int]:
    lead = len(shape) - len(target)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, n in enumerate(target) if n == 1 and shape[i + lead] != 1
    )
    return axes, lead


def sum_to(g, shape):
    """g summed over its broadcast axes to `shape`: a numpy array, or a Tensor (with
    create_graph, through the registry's differentiable `sum_to_size`)."""
    if type(g) is not np.ndarray:
        return FUNCTIONS["sum_to_size"].fn(g, tuple(shape))
    shape = tuple(shape)
    if g.shape == shape:
        return g
    axes, lead = reduce_axes(g.shape, shape)
    r = np.add.reduce(g, axis=axes, keepdims=True) if axes else g
    return r.reshape(shape) if lead else r
