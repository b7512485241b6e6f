"""Ops that reorder, tile or cast elements: permute, transpose, t, movedim, repeat, to.

Their VJPs undo the move on the gradient (inverse permutation, sum of the tiles, a cast
back by the backward loop), with the functions of dual.py so create_graph works."""

from __future__ import annotations

import numpy as np

from .. import dtypes as _dt
from .. import shapes as S
from ..dispatch import apply
from ..errors import ShapeError
from ..registry import OPS, deffn, defop
from . import dual as d
from .shape import _shape_arg, missing


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


def _move_perm(ndim, source, destination):
    src = (source,) if isinstance(source, int) else tuple(source)
    dst = (destination,) if isinstance(destination, int) else tuple(destination)
    if len(src) != len(dst):
        raise ShapeError(
            f"movedim: Invalid source or destination dims: source ({list(src)} dims) should "
            f"contain the same number of dims as destination ({list(dst)} dims)",
            op="movedim",
            shapes=[],
        )
    src = [S.norm_dim(i, ndim, "movedim") for i in src]
    dst = [S.norm_dim(i, ndim, "movedim") for i in dst]
    for name, ds, raw in (("source", src, source), ("destination", dst, destination)):
        if len(set(ds)) != len(ds):
            raise ShapeError(
                f"movedim: repeated dim in `{name}` ({list(raw)})", op="movedim", shapes=[]
            )
    perm = [-1] * ndim
    for s_, t_ in zip(src, dst, strict=True):
        perm[t_] = s_
    rest = iter(i for i in range(ndim) if i not in src)
    return tuple(p if p != -1 else next(rest) for p in perm)


@deffn(
    "movedim",
    op="permute",
    method=True,
    shape=lambda s, *, source, destination: tuple(
        s[i] for i in _move_perm(len(s), source, destination)
    ),
)
def movedim(input, source, destination):
    """Move dims source to positions destination (a permute)."""
    return permute(input, *_move_perm(input.ndim, source, destination))


# -- repeat ----------------------------------------------------------------------------------


def _repeat_shape(shape, *, repeats):
    if len(repeats) < len(shape):
        raise ShapeError(
            "Number of dimensions of repeat dims can not be smaller than number of dimensions "
            "of tensor",
            op="repeat",
            shapes=[shape],
        )
    padded = (1,) * (len(repeats) - len(shape)) + tuple(shape)
    out = [r * n for r, n in zip(repeats, padded, strict=True)]
    if any(n < 0 for n in out):
        bad = next(n for n in out if n < 0)
        raise ShapeError(
            f"Trying to create tensor with negative dimension {bad}: {out}", op="repeat"
        )
    return tuple(out)


def _repeat_vjp(g, input_shape, repeats):
    padded = (1,) * (len(repeats) - len(input_shape)) + tuple(input_shape)
    inter = [n for pair in zip(repeats, padded, strict=True) for n in pair]
    summed = d.sum(d.reshape(g, inter), axis=tuple(range(0, len(inter), 2)))
    return d.reshape(summed, input_shape)


@defop("repeat", public=False, shape=_repeat_shape, vjp=_repeat_vjp)
def _repeat(input, *, repeats):
    """Tile the tensor repeats[i] times along each dim (leading dims added)."""
    _repeat_shape(input.shape, repeats=repeats)
    return np.tile(input, repeats) if repeats else input.copy()


def _repeat_fn_shape(shape, *, repeats=None):
    if repeats is None:
        raise missing("repeat", "repeats")
    return _repeat_shape(shape, repeats=repeats)


@deffn("repeat", op="repeat", method=True, shape=_repeat_fn_shape)
def repeat(input, *repeats):
    """x.repeat(2, 1, 3): tile along each dim."""
    if not repeats:
        raise missing("repeat", "repeats")
    return apply(OPS["repeat"], (input,), {"repeats": _shape_arg(repeats)})


# -- casts -------------------------------------------------------------------------------------


def _to_shape(shape, *, dtype):
    return tuple(shape)


@defop(
    "_to_copy", public=False, shape=_to_shape, vjp=lambda g: g
)  # the backward loop casts g back to the input's dtype
def _to_copy(input, *, dtype):
    """Cast to dtype."""
    return input.astype(dtype)


def _to_dtype(input, *, dtype=None, copy=False):
    if dtype is None or isinstance(dtype, str) and dtype == "cpu":
        return input
    return _dt.canonical(dtype)


@deffn("to", op="_to_copy", method=True, dtype=_to_dtype)
def to(input, dtype=None, *, copy=False):
    """x.to(engine.float64): cast (a no-op when the dtype already matches)."""
    if dtype is None or isinstance(dtype, str) and dtype == "cpu":
        return input
    dt = _dt.canonical(dtype)
    if input.dtype == dt and not copy:
        return input
    return apply(OPS["_to_copy"], (input,), {"dtype": dt})
