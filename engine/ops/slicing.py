"""Parts of a tensor: select, slice, narrow, and the scatters that put a part back
(slice_scatter, select_scatter).

A part's gradient is the incoming gradient embedded in zeros; under create_graph that
embedding is a scatter op, whose own gradient is the part again."""

from __future__ import annotations

import numpy as np

from .. import shapes as S
from ..dispatch import apply
from ..errors import ShapeError
from ..registry import OPS, deffn, defop
from ..tensor import Tensor


class IndexingError(ShapeError, IndexError):
    """An index out of range, or not an index at all: an IndexError, as torch raises."""


def _err(msg, op, shapes=()):
    return ShapeError(msg, op=op, shapes=shapes)


def _is_t(x):
    return isinstance(x, Tensor)


def _zeros(shape, like):
    z = np.zeros(shape, dtype=like.dtype)
    return Tensor(z) if _is_t(like) else z


# -- select / slice and their scatters ---------------------------------------------------------


def _key(part, ndim, a):
    """The numpy index of a select ({dim, index}) or slice ({dim, start, end, step})."""
    ax = S.norm_dim(a["dim"], ndim, part)
    item = a["index"] if part == "select" else slice(a["start"], a["end"], a["step"])
    return (slice(None),) * ax + (item,)


def _take(g, part, a):
    """The part of g (the gradient of a scatter's src)."""
    return apply(OPS[part], (g,), a) if _is_t(g) else g[_key(part, g.ndim, a)]


def _embed(g, shape, part, a):
    """zeros(shape) with g as the part (the gradient of select / slice)."""
    if _is_t(g):
        return apply(OPS[part + "_scatter"], (_zeros(shape, g), g), a)
    return _scatter(np.zeros(shape, dtype=g.dtype), g, part, a)


def _blank(g, src_shape, part, a):
    """g with the part zeroed (the gradient of a scatter's base)."""
    if _is_t(g):
        return apply(OPS[part + "_scatter"], (g, _zeros(src_shape, g)), a)
    return _scatter(g.copy(), 0, part, a)


def _scatter(out, src, part, a):
    out[_key(part, out.ndim, a)] = src
    return out


def _select_shape(shape, *, dim, index):
    ax = S.norm_dim(dim, len(shape), "select")
    if not -shape[ax] <= index < shape[ax]:
        raise IndexingError(
            f"select(): index {index} out of range for tensor of size {list(shape)} at "
            f"dimension {dim}",
            op="select",
            shapes=[shape],
        )
    return tuple(shape[:ax]) + tuple(shape[ax + 1 :])


def _slice_shape(shape, *, dim, start, end, step=1):
    ax = S.norm_dim(dim, len(shape), "slice")
    n = len(range(*slice(start, end, step).indices(shape[ax])))
    return tuple(shape[:ax]) + (n,) + tuple(shape[ax + 1 :])


@defop(
    "select",
    method=True,
    shape=_select_shape,
    vjp=lambda g, input_shape, dim, index: _embed(
        g, input_shape, "select", {"dim": dim, "index": index}
    ),
)
def select(input, *, dim, index):
    """The slice at `index` along `dim` (that dim removed)."""
    _select_shape(input.shape, dim=dim, index=index)
    return input[_key("select", input.ndim, {"dim": dim, "index": index})]


@defop(
    "slice",
    public=False,
    shape=_slice_shape,
    vjp=lambda g, input_shape, dim, start, end, step: _embed(
        g, input_shape, "slice", {"dim": dim, "start": start, "end": end, "step": step}
    ),
)
def _slice(input, *, dim, start, end, step=1):
    """Elements start:end:step along dim (a view)."""
    return input[_key("slice", input.ndim, {"dim": dim, "start": start, "end": end, "step": step})]


def _check_src(shape, src_shape, want):
    if tuple(src_shape) != tuple(want):
        raise ShapeError(
            "expected src to have a size equal to the slice of self. src size = "
            f"{list(src_shape)}, slice size = {list(want)}",
            op="scatter",
            shapes=[src_shape, want],
        )
    return tuple(shape)


def _slice_scatter_shape(shape, src_shape, *, dim=0, start=None, end=None, step=1):
    return _check_src(
        shape, src_shape, _slice_shape(shape, dim=dim, start=start, end=end, step=step)
    )


def _select_scatter_shape(shape, src_shape, *, dim, index):
    return _check_src(shape, src_shape, _select_shape(shape, dim=dim, index=index))


def _slice_attrs(dim, start, end, step):
    return {"dim": dim, "start": start, "end": end, "step": step}


@defop(
    "slice_scatter",
    method=True,
    shape=_slice_scatter_shape,
    vjp=(
        lambda g, src_shape, dim, start, end, step: _blank(
            g, src_shape, "slice", _slice_attrs(dim, start, end, step)
        ),
        lambda g, dim, start, end, step: _take(g, "slice", _slice_attrs(dim, start, end, step)),
    ),
)
def slice_scatter(input, src, *, dim=0, start=None, end=None, step=1):
    """input with src written into input[start:end:step] along dim."""
    _slice_scatter_shape(input.shape, src.shape, dim=dim, start=start, end=end, step=step)
    return _scatter(input.copy(), src, "slice", _slice_attrs(dim, start, end, step))


@defop(
    "select_scatter",
    method=True,
    shape=_select_scatter_shape,
    vjp=(
        lambda g, src_shape, dim, index: _blank(
            g, src_shape, "select", {"dim": dim, "index": index}
        ),
        lambda g, dim, index: _take(g, "select", {"dim": dim, "index": index}),
    ),
)
def select_scatter(input, src, *, dim, index):
    """input with src written into the slice at index along dim."""
    _select_scatter_shape(input.shape, src.shape, dim=dim, index=index)
    return _scatter(input.copy(), src, "select", {"dim": dim, "index": index})


def _narrow_shape(shape, *, dim, start, length):
    return _slice_shape(shape, **_narrow_args(shape, dim, start, length))


def _narrow_args(shape, dim, start, length):
    ax = S.norm_dim(dim, len(shape), "narrow")
    n = shape[ax]
    if not -n <= start <= n:
        raise IndexingError(
            f"start out of range (expected to be in range of [{-n}, {n}], but got {start})",
            op="narrow",
            shapes=[shape],
        )
    if length < 0:
        raise ShapeError("narrow(): length must be non-negative.", op="narrow", shapes=[shape])
    start = start % n if start < 0 else start
    if start + length > n:
        raise ShapeError(
            f"start ({start}) + length ({length}) exceeds dimension size ({n}).",
            op="narrow",
            shapes=[shape],
        )
    return {"dim": ax, "start": start, "end": start + length, "step": 1}


@deffn("narrow", op="slice", method=True, shape=_narrow_shape)
def narrow(input, dim, start, length):
    """length elements from start along dim (SliceBackward0)."""
    return apply(OPS["slice"], (input,), _narrow_args(input.shape, dim, int(start), length))
