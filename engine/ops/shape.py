"""Ops that move elements without arithmetic: views, permutations, broadcasting, casts.

Their VJPs move the gradient back the same way (reshape back, inverse permutation, sum
the broadcast axes)."""

from __future__ import annotations

import math

import numpy as np

from .. import dtypes as _dt
from .. import shapes as S
from ..dispatch import apply
from ..errors import ShapeError
from ..registry import OPS, deffn, defop
from ..tensor import Tensor
from . import dual as d


def _shape_arg(shape):
    """torch accepts x.view(2, 3) and x.view((2, 3))."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(n) for n in shape)


def infer_shape(shape, numel, op="view"):
    """Resolve one -1 and check the element count, with torch's message."""
    shape = tuple(shape)
    if shape.count(-1) > 1:
        raise ShapeError(f"{op}(): only one dimension can be inferred", op=op, shapes=[shape])
    known = math.prod(n for n in shape if n != -1)
    if -1 in shape:
        if known == 0 or numel % known:
            raise ShapeError(
                f"{op}(): shape '{list(shape)}' is invalid for input of size {numel}",
                op=op,
                shapes=[shape],
            )
        return tuple(numel // known if n == -1 else n for n in shape)
    if known != numel or any(n < 0 for n in shape):
        raise ShapeError(
            f"{op}(): shape '{list(shape)}' is invalid for input of size {numel}",
            op=op,
            shapes=[shape],
        )
    return shape


def _view_shape(input_shape, *, shape):
    return infer_shape(shape, math.prod(input_shape))


@defop(
    "view", public=False, shape=_view_shape, vjp=lambda g, input_shape: d.reshape(g, input_shape)
)
def _view(input, *, shape):
    """The same elements under another shape (one size may be -1)."""
    return input.reshape(infer_shape(shape, input.size))


@defop(
    "_unsafe_view",
    public=False,
    shape=_view_shape,
    vjp=lambda g, input_shape: d.reshape(g, input_shape),
)
def _unsafe_view(input, *, shape):
    """reshape of a copied (non-contiguous) input."""
    return input.reshape(infer_shape(shape, input.size))


@defop("clone", shape=S.same, vjp=lambda g: g, method=True)
def clone(input):
    """A copy with its own storage."""
    return input.copy()


@deffn("view", op="view", method=True)
def view(input, *shape):
    """x.view(2, -1): a new shape for the same elements."""
    return apply(OPS["view"], (input,), {"shape": _shape_arg(shape)})


@deffn("reshape", op="view", method=True)
def reshape(input, *shape):
    """A view when the layout allows it, else a copy (CloneBackward0 → UnsafeViewBackward0)."""
    shape = _shape_arg(shape)
    if input._a.flags.c_contiguous:
        return apply(OPS["view"], (input,), {"shape": shape})
    return apply(OPS["_unsafe_view"], (clone(input),), {"shape": shape})


@deffn("flatten", op="view", method=True)
def flatten(input, start_dim=0, end_dim=-1):
    """Merge dims start_dim..end_dim into one."""
    nd = input.ndim
    if nd == 0:
        return reshape(input, 1)
    s = S.norm_dim(start_dim, nd, "flatten")
    e = S.norm_dim(end_dim, nd, "flatten")
    if s > e:
        raise ShapeError(
            "flatten() has invalid args: start_dim cannot come after end_dim",
            op="flatten",
            shapes=[input.shape],
        )
    if s == e:
        return input
    shp = input.shape
    return reshape(input, shp[:s] + (math.prod(shp[s : e + 1]),) + shp[e + 1 :])


def _expand_shape(input_shape, *, size):
    return _expanded(input_shape, size)


def _expanded(shape, size):
    size = tuple(size)
    if len(size) < len(shape):
        raise ShapeError(
            f"expand(): the number of sizes provided ({len(size)}) must be greater or equal to "
            f"the number of dimensions in the tensor ({len(shape)})",
            op="expand",
            shapes=[shape, size],
        )
    lead = len(size) - len(shape)
    out = []
    for i, n in enumerate(size):
        cur = shape[i - lead] if i >= lead else None
        if n == -1:
            if cur is None:
                raise ShapeError(
                    "expand(): -1 is not allowed in a leading, non-existing dimension",
                    op="expand",
                    shapes=[shape, size],
                )
            n = cur
        elif cur is not None and cur != 1 and cur != n:
            raise ShapeError(
                f"expand(): the expanded size of the tensor ({n}) must match the existing size "
                f"({cur}) at non-singleton dimension {i}.  Target sizes: {list(size)}.  Tensor "
                f"sizes: {list(shape)}",
                op="expand",
                shapes=[shape, size],
            )
        out.append(n)
    return tuple(out)


@defop(
    "expand",
    public=False,
    shape=_expand_shape,
    vjp=lambda g, input_shape: (
        sum_to_size(g, input_shape) if isinstance(g, Tensor) else _np_sum_to(g, input_shape)
    ),
)
def _expand(input, *, size):
    """Broadcast to size without copying."""
    return np.broadcast_to(input, _expanded(input.shape, size))


def _np_sum_to(g, shape):
    from ..autograd.sum_to import sum_to

    return sum_to(g, shape)


@deffn("expand", op="expand", method=True)
def expand(input, *size):
    """x.expand(3, -1): repeat singleton dims without copying."""
    return apply(OPS["expand"], (input,), {"size": _shape_arg(size)})


@deffn("expand_as", op="expand", method=True)
def expand_as(input, other):
    return expand(input, *other.shape)


@defop(
    "sum_to_size",
    public=False,
    shape=lambda s, *, size: tuple(size),
    grad_fn="SumBackward1",
    vjp=lambda g, input_shape: d.broadcast_to(g, input_shape),
)
def _sum_to_size(input, *, size):
    """Sum broadcast dimensions away so the result has `size`."""
    return _np_sum_to(input, size)


@deffn("sum_to_size", op="sum_to_size", method=True)
def sum_to_size(input, *size):
    """Sum to the given shape (the inverse of expand)."""
    size = _shape_arg(size)
    if tuple(input.shape) == size:
        return input
    return apply(OPS["sum_to_size"], (input,), {"size": size})


def _unsqueeze_shape(shape, *, dim):
    dim = S.norm_dim(dim, len(shape) + 1, "unsqueeze")
    return tuple(shape[:dim]) + (1,) + tuple(shape[dim:])


@defop(
    "unsqueeze",
    method=True,
    shape=_unsqueeze_shape,
    vjp=lambda g, input_shape: d.reshape(g, input_shape),
)
def unsqueeze(input, *, dim):
    """Insert a size-1 dim at position dim."""
    return np.expand_dims(input, S.norm_dim(dim, input.ndim + 1, "unsqueeze"))


def _perm_shape(shape, *, dims):
    return tuple(shape[i] for i in _perm(dims, len(shape)))


def _perm(dims, ndim):
    dims = tuple(S.norm_dim(i, ndim, "permute") for i in dims)
    if sorted(dims) != list(range(ndim)):
        raise ShapeError(
            f"permute(): number of dims don't match or repeated dim in permute: dims {list(dims)} "
            f"for a tensor of {ndim} dims",
            op="permute",
            shapes=[],
        )
    return dims


@defop(
    "permute",
    public=False,
    shape=_perm_shape,
    vjp=lambda g, dims, input_shape: d.permute(g, np.argsort(_perm(dims, len(input_shape)))),
)
def _permute(input, *, dims):
    """Reorder dims."""
    return np.transpose(input, _perm(dims, input.ndim))


@deffn("permute", op="permute", method=True)
def permute(input, *dims):
    """x.permute(2, 0, 1): reorder the dims."""
    return apply(OPS["permute"], (input,), {"dims": _shape_arg(dims)})


def _transpose_shape(shape, *, dim0, dim1):
    s = list(shape)
    a, b = S.norm_dim(dim0, len(s), "transpose"), S.norm_dim(dim1, len(s), "transpose")
    s[a], s[b] = s[b], s[a]
    return tuple(s)


@defop(
    "transpose",
    method=True,
    shape=_transpose_shape,
    vjp=lambda g, dim0, dim1: d.swapaxes(g, dim0, dim1),
)
def transpose(input, *, dim0, dim1):
    """Swap two dims."""
    if input.ndim == 0:
        return input
    return np.swapaxes(
        input, S.norm_dim(dim0, input.ndim, "transpose"), S.norm_dim(dim1, input.ndim, "transpose")
    )


def _t_shape(shape):
    if len(shape) > 2:
        raise ShapeError(
            f"t() expects a tensor with <= 2 dimensions, but self is {len(shape)}D",
            op="t",
            shapes=[shape],
        )
    return tuple(reversed(shape))


@defop("t", method=True, shape=_t_shape, vjp=lambda g: d.permute(g, tuple(range(g.ndim))[::-1]))
def t(input):
    """Transpose a matrix (a vector or scalar is returned as is)."""
    if input.ndim > 2:
        raise ShapeError(
            f"t() expects a tensor with <= 2 dimensions, but self is {input.ndim}D",
            op="t",
            shapes=[input.shape],
        )
    return input.T


def _to_shape(shape, *, dtype):
    return tuple(shape)


@defop(
    "_to_copy", public=False, shape=_to_shape, vjp=lambda g: g
)  # the backward loop casts g back to the input's dtype
def _to_copy(input, *, dtype):
    """Cast to dtype."""
    return input.astype(dtype)


@deffn("to", op="_to_copy", method=True)
def to(input, dtype=None, *, copy=False):
    """x.to(engine.float64): cast (a no-op when the dtype already matches)."""
    if dtype is None or isinstance(dtype, str) and dtype == "cpu":
        return input
    dt = _dt.canonical(dtype)
    if input.dtype == dt and not copy:
        return input
    return apply(OPS["_to_copy"], (input,), {"dtype": dt})
