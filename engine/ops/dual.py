"""Functions VJP rules are written with. Each works on numpy arrays (the ordinary backward
pass) and on Tensors (backward with create_graph=True, where it records ops so gradients can
be differentiated again). Arithmetic operators already work on both; this covers the rest.

Masks (`gt`, `sign`...) are constants of the backward pass: they return arrays either way."""

from __future__ import annotations

import numpy as np

from ..registry import FUNCTIONS
from ..tensor import Tensor
from .erf import np_erf


def _is_t(x) -> bool:
    return isinstance(x, Tensor)


def _f(name):
    return FUNCTIONS[name].fn


def _arr(x):
    return x._a if isinstance(x, Tensor) else x


def exp(x):
    return _f("exp")(x) if _is_t(x) else np.exp(x)


def log(x):
    return _f("log")(x) if _is_t(x) else np.log(x)


def sqrt(x):
    return _f("sqrt")(x) if _is_t(x) else np.sqrt(x)


def sin(x):
    return _f("sin")(x) if _is_t(x) else np.sin(x)


def cos(x):
    return _f("cos")(x) if _is_t(x) else np.cos(x)


def tanh(x):
    return _f("tanh")(x) if _is_t(x) else np.tanh(x)


def sigmoid(x):
    if _is_t(x):
        return _f("sigmoid")(x)
    return _np_sigmoid(x)


def _np_sigmoid(x):
    # exp of a negative argument only, so large |x| neither overflows nor warns.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def pow(x, e):  # noqa: A001 - numpy's and torch's name
    return _f("pow")(x, e) if _is_t(x) or _is_t(e) else np.power(x, e)


def square(x):
    return x * x


def where(cond, a, b):
    """Select by a constant mask; a and b may be arrays, Tensors or numbers."""
    if _is_t(a) or _is_t(b):
        return _f("where")(Tensor(np.asarray(_arr(cond))), a, b)
    return np.where(cond, a, b)


def mask(cond, x):
    """x where cond holds, else 0, keeping x's dtype."""
    if _is_t(x):
        return x * Tensor(np.asarray(_arr(cond), dtype=x.dtype))
    return x * cond


def sum(x, axis=None, keepdims=False):  # noqa: A001
    if _is_t(x):
        if axis is None and not keepdims:
            return _f("sum")(x)
        if axis is None:
            axis = tuple(range(x.ndim))
        return _f("sum")(x, dim=axis, keepdim=keepdims)
    return np.sum(x, axis=axis, keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    if _is_t(x):
        if axis is None:
            axis = tuple(range(x.ndim))
        return _f("mean")(x, dim=axis, keepdim=keepdims)
    return np.mean(x, axis=axis, keepdims=keepdims)


def broadcast_to(x, shape):
    if type(x) is np.ndarray:
        if not x.ndim and len(shape) == 1 and shape[0] <= 64:  # (_np_broadcast's, inlined)
            out = np.empty(shape, x.dtype)
            out[...] = x
            return out
        return _np_broadcast(x, shape if type(shape) is tuple else tuple(shape))
    shape = tuple(shape)
    if _is_t(x):
        if x.shape == shape:
            return x
        return (
            _f("expand")(x, *shape)
            if x.ndim == len(shape)
            else _f("expand")(
                _f("reshape")(x, (1,) * (len(shape) - x.ndim) + tuple(x.shape)), *shape
            )
        )
    return _np_broadcast(x, shape)


def _np_fill(x, shape):
    out = np.empty(shape, x.dtype)
    out[...] = x
    return out


def _np_broadcast(x, shape):
    """np.broadcast_to without its Python overhead (10x slower on tiny arrays): a zero-stride
    view built directly. Never written through: gradients are not modified in place."""
    if x.shape == shape:
        return x
    if not x.ndim:  # a full reduction's gradient: every element reads the one value
        if len(shape) == 1 and shape[0] <= 64:  # small: a fresh array is cheaper to make
            return _np_fill(x, shape)
        out = np.ndarray(shape, x.dtype, x, 0, (0,) * len(shape))
        if out.flags.writeable:  # (a view of a read-only array is born read-only)
            out.flags.writeable = False
        return out
    if not x.flags.c_contiguous or len(shape) < x.ndim:
        return np.broadcast_to(x, shape)
    lead = len(shape) - x.ndim
    strides = [0] * lead
    for i, n in enumerate(x.shape):
        m = shape[lead + i]
        if n == m:
            strides.append(x.strides[i])
        elif n == 1:
            strides.append(0)
        else:
            return np.broadcast_to(x, shape)  # raises numpy's error
    out = np.ndarray(shape, x.dtype, x, 0, tuple(strides))
    out.flags.writeable = False
    return out


def reshape(x, shape):
    return _f("reshape")(x, tuple(shape)) if _is_t(x) else np.reshape(x, shape)


def expand_dims(x, axes):
    """Re-insert reduced axes (sorted, non-negative) so a reduction's gradient broadcasts."""
    if _is_t(x):
        for a in sorted(axes):
            x = _f("unsqueeze")(x, a)
        return x
    shape = list(x.shape)
    for a in sorted(axes):
        shape.insert(a, 1)
    return x.reshape(shape)


def permute(x, axes):
    return _f("permute")(x, tuple(axes)) if _is_t(x) else np.transpose(x, axes)


def swapaxes(x, a, b):
    return _f("transpose")(x, a, b) if _is_t(x) else np.swapaxes(x, a, b)


def matmul(a, b):
    if _is_t(a) or _is_t(b):
        return _f("matmul")(_t(a), _t(b))
    return np.matmul(a, b)


def _t(x):
    return x if _is_t(x) else Tensor(np.asarray(x))


def zeros_like(x):
    return Tensor(np.zeros_like(x._a)) if _is_t(x) else np.zeros_like(x)


def ones_like(x):
    return Tensor(np.ones_like(x._a)) if _is_t(x) else np.ones_like(x)


def const(x):
    """The plain array of x: for masks and other values the gradient does not flow through."""
    return _arr(x)


def cat(xs, dim):
    """Join along dim (the VJP of split/chunk)."""
    if any(_is_t(x) for x in xs):
        return _f("cat")([_t(x) for x in xs], dim)
    return np.concatenate(xs, axis=dim)


def split(x, sizes, dim):
    """Cut x along dim into pieces of the given sizes (the VJP of cat)."""
    if _is_t(x):
        return _f("split")(x, list(sizes), dim)
    return tuple(np.split(x, np.cumsum(sizes)[:-1], axis=dim))


def stack(xs, dim):
    """Stack along a new dim (the VJP of unbind)."""
    if any(_is_t(x) for x in xs):
        return _f("stack")([_t(x) for x in xs], dim)
    return np.stack(xs, axis=dim)


def unbind(x, dim):
    """The slices of x along dim (the VJP of stack)."""
    if _is_t(x):
        return _f("unbind")(x, dim)
    return tuple(np.moveaxis(x, dim, 0))


def erf(x):
    if _is_t(x):
        return _f("erf")(x)
    return np_erf(x)


def abs(x):  # noqa: A001 - numpy's and torch's name
    return _f("abs")(x) if _is_t(x) else np.abs(x)


def scale(x, factor):
    """x times a constant array (a mask or weights), in x's dtype."""
    factor = np.asarray(_arr(factor), dtype=x.dtype)
    return x * (Tensor(factor) if _is_t(x) else factor)


def sgn(x):
    """torch's sign of x as a constant array (NaN gives 0, as torch.sign)."""
    s = np.sign(_arr(x))
    return np.where(s != s, 0, s).astype(s.dtype, copy=False) if s.dtype.kind == "f" else s
