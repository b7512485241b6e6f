"""Reductions over `dim` (an int, a tuple, or None for all) with torch's `keepdim`: sum, mean,
prod, var, std and logsumexp. (The vector norm is in norm.py, amax/amin/max/min/argmax in
extrema.py.)

Their VJPs re-insert the reduced axes (`unreduce`) and let broadcasting spread the gradient.
The formulas are torch's (FunctionsManual.cpp), including its special cases: prod with zeros
in the input, std where it is 0."""

from __future__ import annotations

import math

import numpy as np

from .. import dtypes as _dt
from .. import shapes as S
from ..dispatch import apply, apply_unary, unary
from ..errors import ArgumentError, DTypeError
from ..registry import FUNCTIONS, OPS, deffn, defop
from . import costs
from . import dual as d


def _axes(dim, ndim, op):
    return S.norm_dims(dim, ndim, op)


def np_axis(dim, ndim, op):
    """numpy's `axis` for torch's `dim` (checked): None for all dims, and for 0-d inputs."""
    axes = _axes(dim, ndim, op)
    return None if dim is None or ndim == 0 else axes


def unreduce(g, shape, dim, keepdim):
    """g reshaped so it broadcasts against the unreduced input of `shape`."""
    if keepdim or not shape or dim is None:  # a full reduction's g broadcasts as it is
        return g
    return d.expand_dims(g, _axes(dim, len(shape), "sum"))


def count(shape, dim, op="mean"):
    """How many elements each output element reduces."""
    return math.prod(shape[i] for i in _axes(dim, len(shape), op)) if shape else 1


def _reduce_shape(shape, *, dim=None, keepdim=False, **_):
    return S.reduced(shape, dim, keepdim)


def _int64_if_integral(input, *_, dtype=None, **__):
    if dtype is not None:
        return _dt.canonical(dtype)
    return _dt.int64 if input.kind in "biu" else input


_VAR_DTYPES = "std and var only support floating point and complex dtypes"


def floating_only(op, what=_VAR_DTYPES):
    """A dtype rule (and forward check) refusing non-floating inputs with torch's message."""

    def rule(input, *_, **__):
        if getattr(input, "kind", "f") != "f":
            raise DTypeError(what if op is None else f"{op}: {what}. Got {input}")
        return input

    return rule


@defop(
    "sum",
    public=False,
    shape=_reduce_shape,
    dtype=_int64_if_integral,
    grad_fn=lambda a: "SumBackward0" if a["dim"] is None else "SumBackward1",
    vjp=lambda g, input_shape, dim, keepdim: d.broadcast_to(
        g if dim is None else unreduce(g, input_shape, dim, keepdim), input_shape
    ),
)
def _sum(input, *, dim=None, keepdim=False):
    """Sum of elements over dim."""
    if dim is None and input.dtype.kind == "f":
        return np.add.reduce(input, None, keepdims=keepdim, out=...)  # `...`: an array
    if input.dtype.kind in "bi":  # torch sums bool and int into int64
        input = input.astype(np.int64)
    return np.add.reduce(input, axis=np_axis(dim, input.ndim, "sum"), keepdims=keepdim)


_SUM = unary(OPS["sum"])
_SUM_ALL = {"dim": None, "keepdim": False}  # shared by every x.sum(): never modified
_SUM_ALL_NODE = OPS["sum"].node_class(_SUM_ALL)


@deffn("sum", op="sum", method=True)
def sum(input, dim=None, keepdim=False, *, dtype=None):  # noqa: A001
    """Sum over dim (int or tuple, default all) with keepdim."""
    if dim is None and not keepdim:
        out = _SUM(input, _SUM_ALL, _SUM_ALL_NODE)
    else:
        out = _SUM(input, {"dim": dim, "keepdim": keepdim})
    return out if dtype is None else out.to(dtype)


@defop(
    "mean",
    public=False,
    shape=_reduce_shape,
    to_float=True,
    grad_fn=lambda a: "MeanBackward0" if a["dim"] is None else "MeanBackward1",
    vjp=lambda g, input_shape, dim, keepdim: d.broadcast_to(
        unreduce(g, input_shape, dim, keepdim) / count(input_shape, dim), input_shape
    ),
)
def _mean(input, *, dim=None, keepdim=False):
    """Mean over dim."""
    axis = np_axis(dim, input.ndim, "mean")
    return np.mean(input, axis=axis, keepdims=keepdim, dtype=input.dtype)


def _mean_dtype(input, *_, dtype=None, **__):
    if dtype is not None:
        return _dt.canonical(dtype)
    if getattr(input, "kind", "f") != "f":
        raise DTypeError(
            "mean(): could not infer output dtype. Input dtype must be either a floating point "
            f"or complex dtype. Got: {input}"
        )
    return input


@deffn("mean", op="mean", method=True, dtype=_mean_dtype)
def mean(input, dim=None, keepdim=False, *, dtype=None):
    """Mean over dim (int or tuple, default all) with keepdim."""
    if input.dtype.kind != "f" and dtype is None:
        raise DTypeError(
            "mean(): could not infer output dtype. Input dtype must be either a floating point "
            f"or complex dtype. Got: {input.dtype}"
        )
    out = apply_unary(OPS["mean"], input, {"dim": dim, "keepdim": keepdim})
    return out if dtype is None else out.to(dtype)


# -- prod ----------------------------------------------------------------------------------


def _others(x, axis):
    """Per element, the product of the other elements along axis, without dividing (so zeros
    are fine): torch's prod_safe_zeros_backward."""
    if type(x) is np.ndarray:
        xm = np.moveaxis(x, axis, -1)
        ones = np.ones(xm.shape[:-1] + (1,), x.dtype)
        left = np.cumprod(np.concatenate([ones, xm[..., :-1]], -1), -1)
        right = np.cumprod(np.concatenate([ones, xm[..., :0:-1]], -1), -1)[..., ::-1]
        return np.moveaxis(left * right, -1, axis)
    # Under create_graph: rows[..., i, j] = x_j, with 1 on the diagonal, multiplied over j.
    n = x.shape[axis]
    perm = [i for i in range(x.ndim) if i != axis] + [axis]
    xm = d.permute(x, perm)
    rows = d.broadcast_to(d.expand_dims(xm, (xm.ndim - 1,)), tuple(xm.shape[:-1]) + (n, n))
    rows = d.where(np.eye(n, dtype=bool), 1.0, rows)
    return d.permute(FUNCTIONS["prod"].fn(rows, -1), tuple(np.argsort(perm)))


def _prod_vjp(g, input, ans, dim, keepdim):
    x = d.const(input)
    if x.ndim == 0:
        return g
    if x.size == 0:
        return d.broadcast_to(g if dim is None or keepdim else d.expand_dims(g, (dim,)), x.shape)
    if dim is not None and not keepdim:
        ax = S.norm_dim(dim, x.ndim, "prod")
        g, ans = d.expand_dims(g, (ax,)), d.expand_dims(ans, (ax,))
    zeros = np.count_nonzero(x == 0)
    if not zeros:
        return g * (ans / input)
    if dim is None and zeros > 1 and type(g) is np.ndarray:
        return np.zeros(x.shape, g.dtype)  # torch's shortcut outside grad mode
    if dim is None:
        return g * d.reshape(_others(d.reshape(input, (-1,)), 0), x.shape)
    return g * _others(input, S.norm_dim(dim, x.ndim, "prod"))


def _prod_shape(shape, *, dim=None, keepdim=False, **_):
    return () if dim is None else S.reduced(shape, dim, keepdim)


@defop(
    "prod",
    public=False,
    shape=_prod_shape,
    dtype=_int64_if_integral,
    grad_fn=lambda a: "ProdBackward0" if a["dim"] is None else "ProdBackward1",
    vjp=_prod_vjp,
)
def _prod(input, *, dim=None, keepdim=False):
    """Product of elements (all, or along one dim)."""
    if input.dtype.kind in "bi":
        input = input.astype(np.int64)
    if dim is None:
        return np.prod(input)
    return np.prod(
        input, axis=S.norm_dim(dim, input.ndim, "prod") if input.ndim else None, keepdims=keepdim
    )


@deffn("prod", op="prod", method=True)
def prod(input, dim=None, keepdim=False, *, dtype=None):
    """Product of all elements, or along one dim (an int, as in torch) with keepdim."""
    if dim is not None and not isinstance(dim, int):
        raise TypeError(f"prod(): argument 'dim' must be int, not {type(dim).__name__}")
    out = apply(OPS["prod"], (input,), {"dim": dim, "keepdim": keepdim})
    return out if dtype is None else out.to(dtype)


# -- var / std -----------------------------------------------------------------------------


def _var_vjp(g, input, input_shape, dim, correction, keepdim):
    axis = None if dim is None or not input_shape else _axes(dim, len(input_shape), "var")
    n = count(input_shape, dim, "var")
    g = unreduce(g, input_shape, dim, keepdim)
    if not n:  # an empty reduction: the (empty) gradient, without numpy's empty-mean warning
        return d.broadcast_to(g, input_shape)
    dof = n - correction
    centred = input - d.mean(input, axis, keepdims=True)
    return (2.0 / dof if dof else math.inf) * g * centred


def _std_vjp(g, input, ans, input_shape, dim, correction, keepdim):
    zero = d.const(ans) == 0  # torch: the gradient is 0 where std is 0
    gv = d.mask(~zero, g / (d.where(zero, 1, ans) * 2))
    return _var_vjp(gv, input, input_shape, dim, correction, keepdim)


@defop(
    "var",
    public=False,
    shape=_reduce_shape,
    vjp=_var_vjp,
    dtype=floating_only(None),
    memory=costs.buffers(5, 8),
)  # fmt: skip  (deviations, their squares; centred in the VJP)
def _var(input, *, dim=None, correction=1, keepdim=False):
    """Variance over dim with `correction` (1: Bessel's, unbiased)."""
    floating_only(None)(input.dtype)
    axis = np_axis(dim, input.ndim, "var")
    if input.size == 0:
        return np.full(S.reduced(input.shape, dim, keepdim), np.nan, input.dtype)
    dev = input - np.mean(input, axis=axis, keepdims=True)
    dof = max(0, count(input.shape, dim, "var") - correction)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sum(dev * dev, axis=axis, keepdims=keepdim) / dof


@defop("std", public=False, shape=_reduce_shape, vjp=_std_vjp, dtype=floating_only(None),
       memory=costs.buffers(5, 8))  # fmt: skip
def _std(input, *, dim=None, correction=1, keepdim=False):
    """Standard deviation over dim with `correction`."""
    return np.sqrt(_var(input, dim=dim, correction=correction, keepdim=keepdim))


def _var_args(name, dim, unbiased, correction):
    if isinstance(dim, bool):  # var(x, True): torch's legacy (input, unbiased) overload
        dim, unbiased = None, dim
    if unbiased is not None and correction is not None:
        raise ArgumentError(f"{name}(): cannot pass both unbiased and correction")
    if correction is None:
        correction = 1 if unbiased is None else int(unbiased)
    return dim, correction


def _var_fn_shape(shape, *, dim=None, unbiased=None, keepdim=False, **_):
    return S.reduced(shape, None if isinstance(dim, bool) else dim, keepdim)


@deffn("var", op="var", method=True, shape=_var_fn_shape, dtype=floating_only(None))
def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Variance over dim; `correction` (or torch's legacy `unbiased`) sets the divisor N - c."""
    dim, c = _var_args("var", dim, unbiased, correction)
    return apply(OPS["var"], (input,), {"dim": dim, "correction": c, "keepdim": keepdim})


@deffn("std", op="std", method=True, shape=_var_fn_shape, dtype=floating_only(None))
def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Standard deviation over dim, with `correction` or `unbiased` as var."""
    dim, c = _var_args("std", dim, unbiased, correction)
    return apply(OPS["std"], (input,), {"dim": dim, "correction": c, "keepdim": keepdim})


# -- logsumexp -----------------------------------------------------------------------------


@defop(
    "logsumexp",
    method=True,
    memory=costs.buffers(5, 6),  # the shifted input, its exp, the max's masks
    to_float=True,
    shape=_reduce_shape,
    vjp=lambda g, input, ans, input_shape, dim, keepdim: (
        unreduce(g, input_shape, dim, keepdim)
        * d.exp(input - unreduce(ans, input_shape, dim, keepdim))
    ),
)
def logsumexp(input, *, dim, keepdim=False):
    """log(sum(exp(input))) over dim, shifted by the max so it neither overflows nor
    underflows (as torch: an infinite max is not subtracted)."""
    axis = np_axis(dim, input.ndim, "logsumexp")
    if input.size:
        m = np.amax(input, axis=axis, keepdims=True)
        m = np.where(np.isinf(m), 0, m).astype(input.dtype, copy=False)
    else:
        m = np.zeros((1,) * input.ndim, input.dtype)
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(input - m), axis=axis, keepdims=True)) + m
    return out if keepdim else out.reshape(S.reduced(input.shape, dim, False))
