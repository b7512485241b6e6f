"""Joining and splitting: cat, stack, split/chunk, unbind. Each one's VJP is the other
(split what was joined, join what was split), through dual.py so create_graph works."""

from __future__ import annotations

import numpy as np

from .. import shapes as S
from ..dispatch import apply
from ..errors import ShapeError
from ..registry import OPS, deffn, defop
from . import dual as d


def _err(msg, op, shapes=()):
    return ShapeError(msg, op=op, shapes=shapes)


# -- joining: cat, stack ---------------------------------------------------------------------


def _err(msg, op, shapes=()):
    return ShapeError(msg, op=op, shapes=shapes)


def _cat_parts(shapes):
    """The operands torch concatenates: 1-D empty tensors are skipped (legacy behaviour)."""
    keep = [i for i, s in enumerate(shapes) if tuple(s) != (0,)]
    return keep or list(range(len(shapes)))


def _cat_shape(*shapes, dim=0):
    if not shapes:
        raise _err("torch.cat(): expected a non-empty list of Tensors", "cat")
    for i, s in enumerate(shapes):
        if not len(s):
            raise _err(f"zero-dimensional tensor (at position {i}) cannot be concatenated", "cat")
    keep = _cat_parts(shapes)
    ref = tuple(shapes[keep[0]])
    ax = S.norm_dim(dim, len(ref), "cat")
    total = 0
    for i in keep:
        s = tuple(shapes[i])
        if len(s) != len(ref):
            raise _err(
                f"Tensors must have same number of dimensions: got {len(ref)} and {len(s)}",
                "cat",
                shapes,
            )
        for k, (a, b) in enumerate(zip(ref, s, strict=True)):
            if k != ax and a != b:
                raise _err(
                    f"Sizes of tensors must match except in dimension {ax}. Expected size {a} "
                    f"but got size {b} for tensor number {i} in the list.",
                    "cat",
                    shapes,
                )
        total += s[ax]
    return ref[:ax] + (total,) + ref[ax + 1 :]


def _cat_vjp(g, tensors_shape, dim):
    keep = _cat_parts(tensors_shape)
    ax = S.norm_dim(dim, len(tensors_shape[keep[0]]), "cat")
    pieces = iter(d.split(g, [tensors_shape[i][ax] for i in keep], ax))
    return tuple(next(pieces) if i in keep else np.zeros(s) for i, s in enumerate(tensors_shape))


@defop("cat", shape=_cat_shape, promote=True, vjp=_cat_vjp)
def cat(*tensors, dim=0):
    """Concatenate tensors along an existing dim."""
    parts = [tensors[i] for i in _cat_parts([np.shape(t) for t in tensors])]
    return np.concatenate(parts, axis=S.norm_dim(dim, np.ndim(parts[0]), "cat"))


def _stack_shape(*shapes, dim=0):
    if not shapes:
        raise _err("stack expects a non-empty TensorList", "stack")
    ref = tuple(shapes[0])
    for i, s in enumerate(shapes):
        if tuple(s) != ref:
            raise _err(
                f"stack expects each tensor to be equal size, but got {list(ref)} at entry 0 "
                f"and {list(s)} at entry {i}",
                "stack",
                shapes,
            )
    ax = S.norm_dim(dim, len(ref) + 1, "stack")
    return ref[:ax] + (len(shapes),) + ref[ax:]


@defop(
    "stack",
    shape=_stack_shape,
    promote=True,
    vjp=lambda g, tensors_shape, dim: d.unbind(
        g, S.norm_dim(dim, len(tensors_shape[0]) + 1, "stack")
    ),
)
def stack(*tensors, dim=0):
    """Join equal-shaped tensors along a new dim."""
    _stack_shape(*[np.shape(t) for t in tensors], dim=dim)
    return np.stack(tensors, axis=S.norm_dim(dim, np.ndim(tensors[0]) + 1, "stack"))


# -- splitting: split, chunk, unbind (ops with several outputs) -------------------------------
# A multi-output VJP receives the tuple of output gradients, None where an output was unused;
# nothing is saved (as in torch, a second backward through them needs no retain_graph).


def _filled(g, shapes):
    """The output gradients with zeros for the unused outputs."""
    like = next(x for x in g if x is not None)
    return [np.zeros(s, like.dtype) if x is None else x for x, s in zip(g, shapes, strict=True)]


def _axis(shape, dim, op):
    if not len(shape):
        raise _err(f"{op} expects at least a 1-dimensional tensor", op, [shape])
    return S.norm_dim(dim, len(shape), op)


def _even_sizes(n, split_size):
    if split_size < 0 or (split_size == 0 and n != 0):
        raise _err(
            f"split_size can only be 0 if dimension size is 0, but got dimension size of {n}"
            if split_size == 0
            else f"split expects split_size be non-negative, but got split_size={split_size}",
            "split",
        )
    return [min(split_size, n - i) for i in range(0, n, split_size)] if n else [0]


def _check_sizes(n, sizes, dim):
    if any(s < 0 for s in sizes):
        raise _err(
            "split_with_sizes expects split_sizes have only non-negative entries, but got "
            f"split_sizes={list(sizes)}",
            "split_with_sizes",
        )
    if sum(sizes) != n:
        raise _err(
            f"split_with_sizes expects split_sizes to sum exactly to {n} (input tensor's size "
            f"at dimension {dim}), but got split_sizes={list(sizes)}",
            "split_with_sizes",
        )
    return list(sizes)


def _pieces(shape, ax, sizes):
    return tuple(tuple(shape[:ax]) + (n,) + tuple(shape[ax + 1 :]) for n in sizes)


def _split_shape(shape, *, split_size, dim=0):
    ax = _axis(shape, dim, "split")
    return _pieces(shape, ax, _even_sizes(shape[ax], split_size))


def _split_sizes_shape(shape, *, split_sizes, dim=0):
    ax = _axis(shape, dim, "split_with_sizes")
    return _pieces(shape, ax, _check_sizes(shape[ax], split_sizes, ax))


def _split_vjp(g, input_shape, dim, split_size):
    ax = S.norm_dim(dim, len(input_shape), "split")
    return d.cat(_filled(g, _split_shape(input_shape, split_size=split_size, dim=dim)), ax)


def _split_sizes_vjp(g, input_shape, dim, split_sizes):
    ax = S.norm_dim(dim, len(input_shape), "split")
    return d.cat(_filled(g, _split_sizes_shape(input_shape, split_sizes=split_sizes, dim=dim)), ax)


def _cut(x, ax, sizes):
    return tuple(np.split(x, np.cumsum(sizes)[:-1], axis=ax))


@defop("split", public=False, n_outputs=-1, shape=_split_shape, vjp=_split_vjp)
def _split(input, *, split_size, dim=0):
    """Pieces of split_size along dim (the last may be smaller)."""
    ax = _axis(input.shape, dim, "split")
    return _cut(input, ax, _even_sizes(input.shape[ax], split_size))


@defop(
    "split_with_sizes",
    public=False,
    n_outputs=-1,
    shape=_split_sizes_shape,
    vjp=_split_sizes_vjp,
)
def _split_with_sizes(input, *, split_sizes, dim=0):
    """Pieces of the given sizes along dim."""
    ax = _axis(input.shape, dim, "split_with_sizes")
    return _cut(input, ax, _check_sizes(input.shape[ax], split_sizes, ax))


def _split_fn_shape(shape, *, split_size_or_sections, dim=0):
    if isinstance(split_size_or_sections, int):
        return _split_shape(shape, split_size=split_size_or_sections, dim=dim)
    return _split_sizes_shape(shape, split_sizes=split_size_or_sections, dim=dim)


@deffn("split", op="split", method=True, shape=_split_fn_shape)
def split(tensor, split_size_or_sections, dim=0):
    """Split into pieces of one size (SplitBackward0) or of a list of sizes
    (SplitWithSizesBackward0)."""
    if isinstance(split_size_or_sections, int):
        return apply(OPS["split"], (tensor,), {"split_size": split_size_or_sections, "dim": dim})
    sizes = tuple(int(n) for n in split_size_or_sections)
    return apply(OPS["split_with_sizes"], (tensor,), {"split_sizes": sizes, "dim": dim})


def _chunk_size(shape, chunks, dim):
    if chunks <= 0:
        raise _err(f"chunk expects `chunks` to be greater than 0, got: {chunks}", "chunk")
    n = shape[_axis(shape, dim, "chunk")]
    return (n + chunks - 1) // chunks


@deffn(
    "chunk",
    op="split",
    method=True,
    shape=lambda s, *, chunks, dim=0: _split_shape(
        s, split_size=_chunk_size(s, chunks, dim), dim=dim
    ),
)
def chunk(input, chunks, dim=0):
    """At most `chunks` pieces of equal size (the last may be smaller): torch's split."""
    return split(input, _chunk_size(input.shape, chunks, dim), dim)


def _unbind_shape(shape, *, dim=0):
    ax = _axis(shape, dim, "unbind")
    rest = tuple(shape[:ax]) + tuple(shape[ax + 1 :])
    return (rest,) * shape[ax]


@defop(
    "unbind",
    n_outputs=-1,
    method=True,
    shape=_unbind_shape,
    vjp=lambda g, input_shape, dim: d.stack(
        _filled(g, _unbind_shape(input_shape, dim=dim)), S.norm_dim(dim, len(input_shape), "unbind")
    ),
)
def unbind(input, *, dim=0):
    """The slices along dim, as a tuple."""
    return tuple(np.moveaxis(input, _axis(input.shape, dim, "unbind"), 0))
