"""Extreme values: amax/amin (dim int, tuple or all), max/min (all elements, or along one dim
returning (values, indices) like torch's namedtuple, or elementwise against another tensor)
and argmax/argmin (no gradient).

Gradients as torch's: amax/amin and the full max/min spread the gradient evenly over tied
extremes; max/min along a dim send it to the one index they return."""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from .. import dtypes as _dt
from .. import shapes as S
from ..dispatch import apply
from ..errors import DTypeError, ShapeError
from ..registry import FUNCTIONS, OPS, default_dtype, deffn, defop
from ..tensor import Tensor
from . import dual as d
from .reductions import np_axis, unreduce

# torch.return_types.max / .min: a tuple with .values and .indices.
MaxResult = namedtuple("max", ["values", "indices"])
MinResult = namedtuple("min", ["values", "indices"])
MaxResult.__module__ = MinResult.__module__ = "engine.return_types"


def _nonempty(op, shape, dim):
    """torch's errors for an extreme of nothing; dim None or () reduces every dim. Shared by
    the forwards and the shape rules, so a graph is refused before it runs."""
    shape = tuple(shape)
    if dim is None or dim == ():
        if 0 in shape:
            raise ShapeError(
                f"{op}(): Expected reduction dim to be specified for input.numel() == 0. "
                "Specify the reduction dim with the 'dim' argument.",
                op=op,
                shapes=[shape],
            )
        return
    for a in S.norm_dims(dim, len(shape), op):
        if shape and shape[a] == 0:
            raise ShapeError(
                f"{op}(): Expected reduction dim {a} to have non-zero size.",
                op=op,
                shapes=[shape],
            )


def _spread(g, input, ans, input_shape, dim, keepdim, nan_ties):
    """The gradient shared evenly by the elements equal to the extreme: torch's
    scale_grad_by_count for amax/amin (a NaN extreme equals nothing: NaN gradients), or with
    `nan_ties` its evenly_distribute_backward for max()/min() (NaNs share a NaN extreme)."""
    x = d.const(input)
    v = unreduce(d.const(ans), input_shape, dim, keepdim)
    hit = x == v
    if nan_ties:
        hit |= np.isnan(x) & np.isnan(v)
    axis = np_axis(dim, x.ndim, "amax")
    return d.scale(unreduce(g, input_shape, dim, keepdim), hit / hit.sum(axis=axis, keepdims=True))


def _even_vjp(g, input, ans, input_shape, dim, keepdim):
    return _spread(g, input, ans, input_shape, dim, keepdim, nan_ties=False)


def _amax_shape(shape, *, dim=(), keepdim=False, _op="amax", **_):
    _nonempty(_op, shape, dim)
    return S.reduced(shape, dim, keepdim)


def _extreme(name, fn, doc):
    def shape(shape, *, dim=(), keepdim=False):
        return _amax_shape(shape, dim=dim, keepdim=keepdim, _op=name)

    @defop(name, method=True, shape=shape, vjp=_even_vjp, doc=doc)
    def reduce(input, *, dim=(), keepdim=False):
        axis = np_axis(dim, input.ndim, name)
        _nonempty(name, input.shape, dim)
        return fn(input, axis=axis, keepdims=keepdim)

    return reduce


amax = _extreme("amax", np.amax, "Maximum over dim (int, tuple, or () for all); ties share.")
amin = _extreme("amin", np.amin, "Minimum over dim (int, tuple, or () for all); ties share.")


def _full(name, fn, grad_fn):
    @defop(
        name,
        public=False,
        doc=f"{name.capitalize()} of all elements; tied extremes share the gradient.",
        grad_fn=grad_fn,
        shape=lambda shape, **_: _nonempty(name, shape, None) or (),
        vjp=lambda g, input, ans: _spread(g, input, ans, (), None, False, nan_ties=True),
    )
    def full(input):
        _nonempty(name, input.shape, None)
        return fn(input)

    return full


_full("max", np.amax, "MaxBackward1")
_full("min", np.amin, "MinBackward1")


def _select_vjp(g, ans, input_shape, dim, keepdim):
    """The gradient of the values goes to the element each index picked."""
    if not input_shape:
        return g[0]
    ax = S.norm_dim(dim, len(input_shape), "max")
    idx = d.const(ans[1]) if keepdim else np.expand_dims(d.const(ans[1]), ax)
    where = [1] * len(input_shape)
    where[ax] = input_shape[ax]
    picked = np.arange(input_shape[ax]).reshape(where) == idx
    return d.scale(unreduce(g[0], input_shape, dim, keepdim), picked)


def _dim_shape(shape, *, dim, keepdim=False, _op="max"):
    _nonempty(_op, shape, dim)
    out = S.reduced(shape, dim, keepdim)
    return out, out


def _along(name, arg, grad_fn):
    @defop(
        f"{name}.dim",
        public=False,
        doc=f"({name} values, their indices) along dim.",
        grad_fn=grad_fn,
        n_outputs=2,
        shape=lambda shape, *, dim, keepdim=False: _dim_shape(
            shape, dim=dim, keepdim=keepdim, _op=name
        ),
        vjp=_select_vjp,
    )
    def along(input, *, dim, keepdim=False):
        ax = S.norm_dim(dim, input.ndim, name)
        if input.ndim == 0:
            return input.copy(), np.zeros((), np.int64)
        _nonempty(name, input.shape, ax)
        idx = arg(input, axis=ax, keepdims=True)
        values = np.take_along_axis(input, idx, ax)
        if not keepdim:
            values, idx = np.squeeze(values, ax), np.squeeze(idx, ax)
        return values, idx.astype(np.int64, copy=False)

    return along


_along("max", np.argmax, "MaxBackward0")
_along("min", np.argmin, "MinBackward0")


def _max_fn_shape(shape, dim=None, keepdim=False, other=None, _op="max", **_):
    if isinstance(dim, tuple) or other is not None:  # max(input, other): elementwise
        return S.broadcast(shape, other if other is not None else dim, op=_op)
    if dim is None:
        _nonempty(_op, shape, None)
        return ()
    return _dim_shape(shape, dim=dim, keepdim=keepdim, _op=_op)


def _max_fn_dtype(input, other=None, *, dim=None, keepdim=False, **_):
    if other is not None or isinstance(dim, np.dtype):
        return default_dtype(OPS["maximum"], (input, other if other is not None else dim))
    return input if dim is None else (input, _dt.int64)


def _max_min(name, pairwise, result):
    def fn(input, dim=None, keepdim=False, *, other=None):
        if isinstance(dim, Tensor) or other is not None:
            return FUNCTIONS[pairwise].fn(input, other if other is not None else dim)
        if dim is None:
            return apply(OPS[name], (input,), {})
        return result(*apply(OPS[f"{name}.dim"], (input,), {"dim": dim, "keepdim": keepdim}))

    fn.__name__ = name
    fn.__doc__ = (
        f"torch.{name}: of all elements; along dim, a (values, indices) namedtuple; against "
        f"another tensor, torch.{pairwise}."
    )

    def shape(shape, other=None, *, dim=None, keepdim=False):
        return _max_fn_shape(shape, dim, keepdim, other, _op=name)

    deffn(name, op=name, method=True, shape=shape, dtype=_max_fn_dtype)(fn)
    return fn


max = _max_min("max", "maximum", MaxResult)  # noqa: A001 - torch's names
min = _max_min("min", "minimum", MinResult)  # noqa: A001


def _arg_shape(shape, *, dim=None, keepdim=False, _op="argmax"):
    _nonempty(_op, shape, dim)
    if dim is None:
        return (1,) * len(shape) if keepdim else ()
    return S.reduced(shape, dim, keepdim)


def _index_dtype(name):
    def rule(input, *_, **__):
        if input == _dt.bool_:
            raise DTypeError(f"{name}(): does not support bool input")
        return _dt.int64

    return rule


def _index(name, fn, doc):
    @defop(
        name,
        method=True,
        differentiable=False,
        shape=lambda shape, *, dim=None, keepdim=False: _arg_shape(
            shape, dim=dim, keepdim=keepdim, _op=name
        ),
        dtype=_index_dtype(name),
        doc=doc,
    )
    def arg(input, *, dim=None, keepdim=False):
        _index_dtype(name)(input.dtype)
        _nonempty(name, input.shape, dim)
        if dim is None:
            i = np.asarray(fn(input), np.int64)
            return i.reshape((1,) * input.ndim) if keepdim else i
        ax = S.norm_dim(dim, input.ndim, name)
        if input.ndim == 0:
            return np.zeros((), np.int64)
        return fn(input, axis=ax, keepdims=keepdim).astype(np.int64, copy=False)

    return arg


argmax = _index("argmax", np.argmax, "Index of the maximum (flattened, or along dim).")
argmin = _index("argmin", np.argmin, "Index of the minimum (flattened, or along dim).")
