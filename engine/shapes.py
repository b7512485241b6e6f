"""Shape rules shared by op families. They raise ShapeError with torch's wording and are
also what the service runs to check a whole graph before any numpy work."""

from __future__ import annotations

import math

from .errors import ArgumentError, ShapeError


def broadcast(*shapes, op: str = "") -> tuple[int, ...]:
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(ndim):
        size = 1
        for _k, s in enumerate(shapes):
            j = i - ndim + len(s)
            if j < 0:
                continue
            n = s[j]
            if n == 1 or n == size:
                continue
            if size == 1:
                size = n
                continue
            raise ShapeError(
                f"{op}(): the size of tensor a ({size}) must match the size of tensor b ({n}) "
                f"at non-singleton dimension {i}; shapes {[tuple(x) for x in shapes]} do not "
                "broadcast",
                op=op,
                shapes=shapes,
            )
        out.append(size)
    return tuple(out)


def elementwise(*shapes, **_):
    return broadcast(*shapes)


def same(shape, *_, **__):
    return tuple(shape)


def norm_dim(dim: int, ndim: int, op: str = "") -> int:
    """Wrap a negative dim, with torch's message when it is out of range."""
    lo, hi = (-1, 0) if ndim == 0 else (-ndim, ndim - 1)
    if not isinstance(dim, int) or isinstance(dim, bool):
        raise ArgumentError(f"{op}(): dim must be an int, got {type(dim).__name__}")
    if dim < lo or dim > hi:
        raise ArgumentError(
            f"{op}(): Dimension out of range (expected to be in range of [{lo}, {hi}], but got "
            f"{dim})"
        )
    return dim % max(ndim, 1)


def norm_dims(dim, ndim: int, op: str = "") -> tuple[int, ...]:
    """dim as torch reductions take it: None (all), an int, or a tuple/list of ints."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    if not dims:
        return tuple(range(ndim))  # torch: an empty dim list reduces over everything
    out = tuple(norm_dim(d, ndim, op) for d in dims)
    if len(set(out)) != len(out):
        twice = next(d for i, d in enumerate(out) if d in out[:i])
        raise ArgumentError(f"{op}(): dim {twice} appears multiple times in the list of dims")
    return out


def reduced(shape, dim, keepdim: bool, op: str = "") -> tuple[int, ...]:
    dims = set(norm_dims(dim, len(shape), op))
    if keepdim:
        return tuple(1 if i in dims else n for i, n in enumerate(shape))
    return tuple(n for i, n in enumerate(shape) if i not in dims)


def numel(shape) -> int:
    return math.prod(shape)


def extent(shape) -> int:
    """What a tensor of `shape` is held to the element limit by: its element count, or for an
    empty tensor the product of its non-zero dimensions. An empty (2**31, 2**31, 0) holds
    nothing, yet numpy cannot shape it, and the nested JSON of an empty (2**31, 0) is 2**31
    `[]`: an empty tensor counts what it spans. O(ndim)."""
    n = 1
    for d in shape:
        if d:
            n *= d
    return n
