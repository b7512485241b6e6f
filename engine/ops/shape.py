"""Views and copies that keep the element order: view/reshape (torch's three reshape nodes),
flatten/unflatten, squeeze/unsqueeze, expand, clone/contiguous.

Their VJPs move the gradient back the same way (reshape back, sum the broadcast axes)."""

from __future__ import annotations

import math

import numpy as np

from .. import shapes as S
from ..autograd.sum_to import sum_to
from ..dispatch import apply
from ..errors import ShapeError, SignatureError
from ..registry import OPS, deffn, defop
from ..tensor import Tensor
from . import dual as d


def _shape_arg(shape):
    """torch accepts x.view(2, 3) and x.view((2, 3))."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(n) for n in shape)


def missing(op, name):
    """torch's refusal of a call that gives its `*sizes` parameter nothing (`x.expand()`;
    `x.expand(())` is an empty size): the front end sees an empty tuple, check's rule None."""
    return SignatureError(f'{op}() missing 1 required positional arguments: "{name}"')


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


def _reshaped(input, *, shape):
    """The same elements under another shape (one size may be -1)."""
    return input.reshape(infer_shape(shape, input.size))


# torch's three reshape nodes: ViewBackward0 (contiguous input), ReshapeAliasBackward0 (strides
# allow a view), UnsafeViewBackward0 (of a contiguous copy). Same forward, same VJP.
for _name in ("view", "_reshape_alias", "_unsafe_view"):
    defop(
        _name, public=False, shape=_view_shape, vjp=lambda g, input_shape: d.reshape(g, input_shape)
    )(_reshaped)


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
    """As torch: a view of a contiguous input (ViewBackward0); else a strided alias when the
    strides allow one (ReshapeAliasBackward0); else a copy (CloneBackward0 → UnsafeView)."""
    shape = _shape_arg(shape)
    a = input._a
    if a.flags.c_contiguous:
        return apply(OPS["view"], (input,), {"shape": shape})
    try:
        np.reshape(a, infer_shape(shape, a.size), copy=False)
    except ValueError:
        return apply(OPS["_unsafe_view"], (clone(input),), {"shape": shape})
    return apply(OPS["_reshape_alias"], (input,), {"shape": shape})


@deffn("view_as", op="view", method=True, shape=lambda s, o: _view_shape(s, shape=o))
def view_as(input, other):
    return view(input, *other.shape)


@deffn("reshape_as", op="view", method=True, shape=lambda s, o: _view_shape(s, shape=o))
def reshape_as(input, other):
    return reshape(input, *other.shape)


@deffn("contiguous", op="clone", method=True)
def contiguous(input):
    """The tensor itself when already C-contiguous, else a contiguous copy (CloneBackward0)."""
    return input if input._a.flags.c_contiguous else clone(input)


def _flatten_shape(shape, *, start_dim=0, end_dim=-1):
    if not shape:
        return (1,)
    st, e = S.norm_dim(start_dim, len(shape), "flatten"), S.norm_dim(end_dim, len(shape), "flatten")
    if st > e:
        raise ShapeError(
            "flatten() has invalid args: start_dim cannot come after end_dim",
            op="flatten",
            shapes=[shape],
        )
    return tuple(shape[:st]) + (math.prod(shape[st : e + 1]),) + tuple(shape[e + 1 :])


@deffn("flatten", op="view", method=True, shape=_flatten_shape)
def flatten(input, start_dim=0, end_dim=-1):
    """Merge dims start_dim..end_dim into one (the tensor itself when that is one dim)."""
    out = _flatten_shape(input.shape, start_dim=start_dim, end_dim=end_dim)
    return input if out == input.shape and input.ndim else reshape(input, out)


def _expand_shape(input_shape, *, size):
    return _expanded(input_shape, size)


def _expanded(shape, size):
    """torch's expand geometry, checked from the last dim backwards as torch does."""
    size = tuple(size)
    if len(size) < len(shape):
        raise ShapeError(
            f"expand(): the number of sizes provided ({len(size)}) must be greater or equal to "
            f"the number of dimensions in the tensor ({len(shape)})",
            op="expand",
            shapes=[shape, size],
        )
    lead = len(size) - len(shape)
    out = list(size)
    for i in reversed(range(len(size))):
        cur = shape[i - lead] if i >= lead else None
        if size[i] == -1 and cur is None:
            raise ShapeError(
                f"expand(): The expanded size of the tensor (-1) isn't allowed in a leading, "
                f"non-existing dimension {i}",
                op="expand",
                shapes=[shape, size],
            )
        if size[i] == -1:
            out[i] = cur
        elif cur is not None and cur != 1 and cur != size[i]:
            raise ShapeError(
                f"expand(): The expanded size of the tensor ({size[i]}) must match the existing "
                f"size ({cur}) at non-singleton dimension {i}.  Target sizes: {list(size)}.  "
                f"Tensor sizes: {list(shape)}",
                op="expand",
                shapes=[shape, size],
            )
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
    return sum_to(g, shape)


def _expand_fn_shape(input_shape, *, size=None):
    if size is None:
        raise missing("expand", "size")
    return _expanded(input_shape, size)


@deffn("expand", op="expand", method=True, shape=_expand_fn_shape)
def expand(input, *size):
    """x.expand(3, -1): repeat singleton dims without copying."""
    if not size:
        raise missing("expand", "size")
    return apply(OPS["expand"], (input,), {"size": _shape_arg(size)})


@deffn("expand_as", op="expand", method=True, shape=lambda s, o: _expanded(s, o))
def expand_as(input, other):
    # (not expand(input, *other.shape): a 0-d `other` would be a call with no sizes)
    return apply(OPS["expand"], (input,), {"size": tuple(other.shape)})


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


def _squeeze_shape(shape, *, dim=None):
    """Drop the size-1 dims among dim: None (all), an int, or a tuple."""
    nd = len(shape)
    if dim is None or isinstance(dim, int):
        dims = range(nd) if dim is None else (S.norm_dim(dim, nd, "squeeze"),)
    else:
        dims = S.norm_dims(tuple(dim), nd, "squeeze") if dim else ()
    drop = {i for i in dims if nd and shape[i] == 1}
    return tuple(n for i, n in enumerate(shape) if i not in drop)


# squeeze() / squeeze(dim) / squeeze(dims): torch's SqueezeBackward0/1/2.
@defop(
    "squeeze",
    public=False,
    shape=_squeeze_shape,
    vjp=lambda g, input_shape: d.reshape(g, input_shape),
    grad_fn=lambda a: f"SqueezeBackward{_dim_kind(a['dim'])}",
)
def _squeeze(input, *, dim=None):
    """Remove size-1 dims (all, or those among dim)."""
    return input.reshape(_squeeze_shape(input.shape, dim=dim))


def _dim_kind(dim):
    return 0 if dim is None else 1 if isinstance(dim, int) else 2


def _dim_arg(dim):
    return dim if dim is None or isinstance(dim, int) else tuple(dim)


@deffn("squeeze", op="squeeze", method=True)
def squeeze(input, dim=None):
    """x.squeeze(), x.squeeze(1), x.squeeze((0, 2)): drop size-1 dims."""
    return apply(OPS["squeeze"], (input,), {"dim": _dim_arg(dim)})


def _unflat_shape(shape, dim, sizes):
    ax = S.norm_dim(dim, len(shape), "unflatten")
    if not len(sizes):
        raise ShapeError("unflatten: sizes must be non-empty", op="unflatten", shapes=[shape])
    try:
        sizes = infer_shape(sizes, shape[ax], "unflatten")
    except ShapeError:
        raise ShapeError(
            f"unflatten: Provided sizes {list(sizes)} don't multiply up to the size of dim "
            f"{dim} ({shape[ax]}) in the input tensor",
            op="unflatten",
            shapes=[shape],
        ) from None
    return tuple(shape[:ax]) + sizes + tuple(shape[ax + 1 :])


@deffn(
    "unflatten",
    op="view",
    method=True,
    shape=lambda s, *, dim, sizes: _unflat_shape(s, dim, sizes),
)
def unflatten(input, dim, sizes):
    """Split dim into sizes (one may be -1): a view."""
    return view(input, *_unflat_shape(input.shape, dim, sizes))
