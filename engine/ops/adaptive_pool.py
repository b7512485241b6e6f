"""torch.nn.functional.adaptive_avg_pool2d.

Output cell (i, j) averages input rows [floor(i*H/Ho), ceil((i+1)*H/Ho)) and the columns
likewise (torch's start/end index formula), so the pooling is A_h @ x @ A_w.T with constant
averaging matrices, and its gradient A_h.T @ g @ A_w: matmuls, differentiable as they are.
To 1x1 torch records `mean(dim=(-1, -2), keepdim=True)` (MeanBackward1), and so do we."""

from __future__ import annotations

import numpy as np

from ..dispatch import apply
from ..errors import DTypeError
from ..registry import FUNCTIONS, OPS, deffn, defop
from . import costs
from . import dual as d
from .pool_rules import adaptive_size


def _averaging(n_in, n_out, dt):
    """(n_out, n_in): row i is 1/len over input [start_i, end_i)."""
    o = np.arange(n_out)
    start = (o * n_in) // n_out
    end = -((-(o + 1) * n_in) // n_out)
    i = np.arange(n_in)
    hit = (i[None, :] >= start[:, None]) & (i[None, :] < end[:, None])
    return (hit / (end - start)[:, None]).astype(dt)


def _matrices(input_shape, out_hw, dt):
    return (
        _averaging(input_shape[-2], out_hw[0], dt),
        _averaging(input_shape[-1], out_hw[1], dt),
    )


def _vjp(g, input_shape, output_size):
    dt = np.dtype(g.dtype)
    ah, aw = _matrices(input_shape, output_size, dt)
    return d.matmul(d.matmul(ah.T, g), aw)


@defop(
    "adaptive_avg_pool2d",
    public=False,
    grad_fn="AdaptiveAvgPool2DBackward0",
    shape=lambda input, *, output_size: (*input[:-2], *adaptive_size(input, output_size)),
    vjp=_vjp,
    cost=costs.adaptive,
    memory=costs.adaptive_memory,
)
def adaptive_avg_pool2d_op(input, *, output_size):
    """Means over adaptive windows of a 3-D or 4-D input."""
    ah, aw = _matrices(input.shape, output_size, input.dtype)
    return np.matmul(np.matmul(ah, input), aw.T)


def _shape(input, output_size):
    return (*input[:-2], *adaptive_size(input, output_size))


def _dtype(input, output_size=None):
    if input.kind != "f":
        name = {"int64": "Long", "bool": "Bool"}.get(str(input), str(input))
        raise DTypeError(f"\"adaptive_avg_pool2d\" not implemented for '{name}'")
    return input


@deffn("adaptive_avg_pool2d", shape=_shape, dtype=_dtype, cost=costs.adaptive,
       memory=costs.adaptive_memory)  # fmt: skip
def adaptive_avg_pool2d(input, output_size):
    """Average pooling of a (N, C, H, W) or (C, H, W) input to output_size (an int, a pair,
    None keeping the input's size); to 1x1 a mean over the last two dims, as torch."""
    out = adaptive_size(input.shape, output_size)
    _dtype(input.dtype)
    if out == (1, 1):
        return FUNCTIONS["mean"].fn(input, (-1, -2), True)
    return apply(OPS["adaptive_avg_pool2d"], (input,), {"output_size": out})
