"""The vector norm: torch.norm / Tensor.norm with torch.linalg.vector_norm's semantics
(LinalgVectorNormBackward0) for ord 2, 1, ±inf, 0 and any other number, over dim (int,
tuple or all) with keepdim. The gradient is torch's norm_backward case by case, including
its value 0 where the norm (or, for ord < 1, the element) is 0."""

from __future__ import annotations

import math

import numpy as np

from .. import shapes as S
from ..dispatch import apply
from ..errors import ArgumentError
from ..registry import OPS, deffn, defop
from . import costs
from . import dual as d
from .reductions import _axes, _reduce_shape, floating_only, np_axis, unreduce


def _norm_vjp(g, input, ans, input_shape, ord, dim, keepdim):  # noqa: A002 - torch's name
    """torch's norm_backward, case by case on ord."""
    g = unreduce(g, input_shape, dim, keepdim)
    norm = unreduce(ans, input_shape, dim, keepdim)
    x, n = d.const(input), d.const(norm)
    if ord == 0:
        return d.scale(g, np.zeros(x.shape))  # piecewise constant (torch: no gradient)
    if ord == 1:
        return d.scale(g, d.sgn(x))
    if ord == 2:
        return g * d.mask(n != 0, input / d.where(n == 0, 1, norm))
    if math.isinf(ord):
        ax = None if dim is None else _axes(dim, x.ndim, "norm")
        ax = None if x.ndim == 0 else ax
        hit = (np.abs(x) == n) | np.isnan(x)
        return d.scale(g, d.sgn(x) * hit / hit.sum(axis=ax, keepdims=True))
    if ord < 1:
        scaled = d.scale(d.pow(d.where(x == 0, 1, d.abs(input)), ord - 1), d.sgn(x))
        return scaled * g * d.pow(norm, 1 - ord)
    if ord < 2:
        scaled = d.scale(d.pow(d.abs(input), ord - 1), d.sgn(x))
    else:
        scaled = input * d.pow(d.abs(input), ord - 2)
    return scaled * d.mask(n != 0, g / d.pow(d.where(n == 0, 1, norm), ord - 1))


_NORM_DTYPE = floating_only(
    "linalg.vector_norm", "Expected a floating point or complex tensor as input"
)


@defop(
    "linalg_vector_norm",
    public=False,
    shape=_reduce_shape,
    vjp=_norm_vjp,
    dtype=_NORM_DTYPE,
    memory=costs.buffers(4, 8),
)  # fmt: skip  (|x|, its powers; the VJP's sign and ratio)
def _vector_norm(input, *, ord=2, dim=None, keepdim=False):  # noqa: A002
    """The vector ord-norm of input over dim: (Σ|x|^ord)^(1/ord), max|x| for inf, min|x| for
    -inf, the count of nonzeros for 0."""
    _NORM_DTYPE(input.dtype)
    axis = np_axis(dim, input.ndim, "linalg.vector_norm")
    if ord == 2:
        return np.sqrt(np.sum(input * input, axis=axis, keepdims=keepdim))
    a = np.abs(input)
    if math.isinf(ord):
        if a.size == 0:
            raise ArgumentError(
                f"linalg.vector_norm cannot compute the {ord} norm on an empty tensor because "
                "the operation does not have an identity"
            )
        return (np.amax if ord > 0 else np.amin)(a, axis=axis, keepdims=keepdim)
    if ord == 0:
        return np.sum(input != 0, axis=axis, keepdims=keepdim, dtype=input.dtype)
    if ord == 1:
        return np.sum(a, axis=axis, keepdims=keepdim)
    with np.errstate(divide="ignore"):
        return np.sum(a**ord, axis=axis, keepdims=keepdim) ** (1 / ord)


def _norm_fn_shape(shape, *, p="fro", dim=None, keepdim=False, **_):
    return S.reduced(shape, dim, keepdim)


@deffn("norm", op="linalg_vector_norm", method=True, shape=_norm_fn_shape, dtype=_NORM_DTYPE)
def norm(input, p="fro", dim=None, keepdim=False, dtype=None):
    """torch.norm / Tensor.norm: the vector p-norm over dim (default all), with
    torch.linalg.vector_norm's semantics; p='fro' (or None) is the 2-norm, p may be inf, -inf,
    0 or any number. (p='nuc', the nuclear norm, is not supported.)"""
    if p is None or p == "fro":
        p = 2
    elif isinstance(p, str):
        raise ArgumentError(f"norm(): p={p!r} is not supported; use a number or 'fro'")
    if dtype is not None:
        raise ArgumentError("norm(): dtype= is not supported; convert the input with .to()")
    return apply(OPS["linalg_vector_norm"], (input,), {"ord": p, "dim": dim, "keepdim": keepdim})
