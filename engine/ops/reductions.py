"""Reductions over `dim` (an int, a tuple, or None for all) with torch's `keepdim`.

Their VJPs re-insert the reduced axes (`unreduce`) and let broadcasting spread the gradient."""

from __future__ import annotations

import numpy as np

from .. import shapes as S
from ..dispatch import apply
from ..registry import OPS, deffn, defop
from . import dual as d


def _axes(dim, ndim, op):
    return S.norm_dims(dim, ndim, op)


def unreduce(g, shape, dim, keepdim):
    """g reshaped so it broadcasts against the unreduced input of `shape`."""
    if keepdim or not shape:
        return g
    return d.expand_dims(g, _axes(dim, len(shape), "sum"))


def _reduce_shape(shape, *, dim=None, keepdim=False, **_):
    return S.reduced(shape, dim, keepdim)


@defop(
    "sum",
    public=False,
    shape=_reduce_shape,
    grad_fn=lambda a: "SumBackward0" if a["dim"] is None else "SumBackward1",
    vjp=lambda g, input_shape, dim, keepdim: d.broadcast_to(
        unreduce(g, input_shape, dim, keepdim), input_shape
    ),
)
def _sum(input, *, dim=None, keepdim=False):
    """Sum of elements over dim."""
    if input.dtype.kind in "bi":  # torch sums bool and int into int64
        input = input.astype(np.int64)
    return np.sum(
        input, axis=None if dim is None else _axes(dim, input.ndim, "sum"), keepdims=keepdim
    )


@deffn("sum", op="sum", method=True)
def sum(input, dim=None, keepdim=False, *, dtype=None):  # noqa: A001
    """Sum over dim (int or tuple, default all) with keepdim."""
    out = apply(OPS["sum"], (input,), {"dim": dim, "keepdim": keepdim})
    return out if dtype is None else out.to(dtype)


def _count(shape, dim):
    return int(np.prod([shape[i] for i in _axes(dim, len(shape), "mean")]))


@defop(
    "mean",
    public=False,
    shape=_reduce_shape,
    to_float=True,
    grad_fn=lambda a: "MeanBackward0" if a["dim"] is None else "MeanBackward1",
    vjp=lambda g, input_shape, dim, keepdim: d.broadcast_to(
        unreduce(g, input_shape, dim, keepdim) / _count(input_shape, dim), input_shape
    ),
)
def _mean(input, *, dim=None, keepdim=False):
    """Mean over dim."""
    return np.mean(
        input,
        axis=None if dim is None else _axes(dim, input.ndim, "mean"),
        keepdims=keepdim,
        dtype=input.dtype,
    )


@deffn("mean", op="mean", method=True)
def mean(input, dim=None, keepdim=False, *, dtype=None):
    """Mean over dim (int or tuple, default all) with keepdim."""
    if input.dtype.kind != "f" and dtype is None:
        raise TypeError(
            "mean(): could not infer output dtype. Input dtype must be either a floating point "
            f"or complex dtype. Got: {input.dtype}"
        )
    out = apply(OPS["mean"], (input,), {"dim": dim, "keepdim": keepdim})
    return out if dtype is None else out.to(dtype)
