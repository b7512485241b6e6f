"""Indexing: `x[...]` as torch's applySlicing decomposes it, and index / index_put.

Basic indices become views, one op each (slicing.py): an int is `select`, a slice is `slice`
(omitted when it keeps everything), None is `unsqueeze`, `...` skips dims. Integer-array,
list, int64-tensor and bool-mask indices are then gathered by one `index` (IndexBackward0),
whose gradient scatters back with duplicates accumulated: `index_put(accumulate=True)`,
whose own gradient is `index` again, so create_graph works."""

from __future__ import annotations

import numpy as np

from .. import shapes as S
from ..dispatch import apply
from ..errors import DTypeError, ShapeError
from ..registry import OPS, deffn, defop
from ..tensor import Tensor
from .slicing import IndexingError, _is_t, _zeros


@defop("alias", public=False, shape=S.same, vjp=lambda g: g)
def _alias(input):
    """The same tensor under a new autograd identity (x[...], x[:, :])."""
    return input.view()


# -- index / index_put: integer-array and mask indices ------------------------------------------


def _np_key(indices):
    return tuple(slice(None) if i is None else i for i in indices)


def _index_shape(shape, *, indices):
    if len(indices) > len(shape):
        raise IndexingError(
            f"too many indices for tensor of dimension {len(shape)}", op="index", shapes=[shape]
        )
    pos = [k for k, i in enumerate(indices) if i is not None]
    if not pos:
        return tuple(shape)
    try:
        b = np.broadcast_shapes(*(np.shape(indices[k]) for k in pos))
    except ValueError:
        shapes = ", ".join(str(list(np.shape(indices[k]))) for k in pos)
        raise IndexingError(
            f"shape mismatch: indexing tensors could not be broadcast together with shapes "
            f"{shapes}",
            op="index",
            shapes=[shape],
        ) from None
    if pos == list(range(pos[0], pos[-1] + 1)):
        return tuple(shape[: pos[0]]) + b + tuple(shape[pos[-1] + 1 :])
    return b + tuple(n for k, n in enumerate(shape) if k >= len(indices) or indices[k] is None)


def _scatter_add(g, shape, indices):
    """zeros(shape) with g added at indices, duplicates accumulated: index's VJP."""
    if _is_t(g):
        return index_put(_zeros(shape, g), indices, g, accumulate=True)
    z = np.zeros(shape, dtype=g.dtype)
    np.add.at(z, _np_key(indices), g)
    return z


@defop(
    "index",
    public=False,
    shape=_index_shape,
    vjp=lambda g, input_shape, indices: _scatter_add(g, input_shape, indices),
)
def _index(input, *, indices):
    """Gather with integer index arrays (None: the whole dim)."""
    return input[_np_key(indices)]


def _index_put_shape(shape, values_shape, *, indices, accumulate=False):
    target = _index_shape(shape, indices=indices)
    try:
        ok = np.broadcast_shapes(tuple(values_shape), target) == target
    except ValueError:
        ok = False
    if not ok:
        raise ShapeError(
            f"shape mismatch: value tensor of shape {list(values_shape)} cannot be broadcast to "
            f"indexing result of shape {list(target)}",
            op="index_put",
            shapes=[shape, values_shape],
        )
    return tuple(shape)


def _put_input_vjp(g, indices, accumulate):
    if accumulate:
        return g
    if _is_t(g):
        return index_put(g, indices, _zeros((), g))
    out = g.copy()
    out[_np_key(indices)] = 0
    return out


@defop(
    "index_put",
    public=False,
    shape=_index_put_shape,
    vjp=(
        _put_input_vjp,
        lambda g, indices: apply(OPS["index"], (g,), {"indices": indices})
        if _is_t(g) else g[_np_key(indices)],
    ),
)  # fmt: skip
def _index_put(input, values, *, indices, accumulate=False):
    """input with values written (or added, with accumulate) at indices."""
    _index_put_shape(input.shape, np.shape(values), indices=indices)
    if np.asarray(values).dtype != input.dtype:
        names = [_TORCH_NAMES.get(str(t), str(t)) for t in (input.dtype, np.asarray(values).dtype)]
        raise DTypeError(
            "Index put requires the source and destination dtypes match, got "
            f"{names[0]} for the destination and {names[1]} for the source."
        )
    out = input.copy()
    if accumulate:
        np.add.at(out, _np_key(indices), values)
    else:
        out[_np_key(indices)] = values
    return out


_TORCH_NAMES = {"float64": "Double", "float32": "Float", "int64": "Long", "bool": "Bool"}


def _index_array(i, shape, dim):
    """One tensor-like index as int64 arrays (a bool mask gives one array per dim it spans),
    bounds-checked with torch's message, for dim `dim` of a tensor of `shape`."""
    a = i._a if _is_t(i) else np.asarray(i)
    if a.dtype == np.bool_ or a.dtype == np.uint8 and _is_t(i):
        for k, n in enumerate(a.shape):
            if dim + k >= len(shape) or n != shape[dim + k]:
                raise IndexingError(
                    f"The shape of the mask {list(a.shape)} at index {k} does not match the "
                    f"shape of the indexed tensor {list(shape)} at index {dim + k}",
                    op="index",
                )
        return list(np.nonzero(a))
    if a.dtype.kind not in "iu":
        if a.size == 0 and not _is_t(i):
            return [a.astype(np.int64)]  # x[[]]: an empty list is an empty index
        raise IndexingError(
            "tensors used as indices must be long, int, byte or bool tensors", op="index"
        )
    a = a.astype(np.int64, copy=False)
    n = shape[dim]
    bad = a[(a >= n) | (a < -n)]
    if bad.size:
        raise IndexingError(
            f"index {bad.flat[0]} is out of bounds for dimension {dim} with size {n}", op="index"
        )
    return [a]


def _indices_arg(input, indices):
    out = []
    for i in indices:
        out += [None] if i is None else _index_array(i, input.shape, len(out))
    return tuple(out)


@deffn(
    "index_put",
    op="index_put",
    method=True,
    shape=lambda s, v, *, indices, accumulate=False: _index_put_shape(
        s, v, indices=tuple(None if i is None else np.asarray(i) for i in indices)
    ),
)
def index_put(input, indices, values, accumulate=False):
    """torch.index_put: write (or, with accumulate, add) values at the tensor indices."""
    values = values if _is_t(values) else Tensor(np.asarray(values, dtype=input.dtype))
    attrs = {"indices": _indices_arg(input, indices), "accumulate": bool(accumulate)}
    return apply(OPS["index_put"], (input, values), attrs)


# -- getitem: torch's applySlicing ---------------------------------------------------------------

_BAD_INDEX = (
    "only integers, slices (`:`), ellipsis (`...`), None and long or byte Variables are valid "
    "indices (got {})"
)


class _Meta:
    """A shape standing in for a tensor, so the shape rule runs the very same parser."""

    def __init__(self, shape):
        self.shape = tuple(shape)
        self.ndim = len(self.shape)


def _run(x, name, **attrs):
    if isinstance(x, _Meta):
        return _Meta(OPS[name].shape(x.shape, **attrs))
    return apply(OPS[name], (x,), attrs)


def _as_int(i):
    """i as a Python int when it is an integer index (bools are not), else None."""
    if isinstance(i, (int, np.integer)) and not isinstance(i, (bool, np.bool_)):
        return int(i)
    return int(i._a) if _is_t(i) and i.ndim == 0 and i.dtype.kind in "iu" else None


def _as_bool(i):
    """A Python bool or a 0-d bool tensor, which index like None plus a tensor index."""
    if isinstance(i, (bool, np.bool_)) or _is_t(i) and i.ndim == 0 and i.dtype == np.bool_:
        return bool(i._a if _is_t(i) else i)
    return None


def _is_mask(o):
    a = o._a if _is_t(o) else np.asarray(o)
    return a.dtype == np.bool_ or (_is_t(o) and a.dtype == np.uint8)


def _taken(o):
    """How many dims of the tensor an index entry consumes (torch's count)."""
    if o is None or o is Ellipsis or _as_bool(o) is not None:
        return 0
    if isinstance(o, (Tensor, list, tuple, np.ndarray)) and _is_mask(o):
        return np.ndim(o._a if _is_t(o) else o)
    return 1


def _as_tuple(index):
    """torch's treatSequenceAsTuple (numpy's legacy rule for non-tuple sequences)."""
    if isinstance(index, tuple):
        return True
    if not isinstance(index, (list, np.ndarray)) or np.ndim(index) == 0 or len(index) >= 32:
        return False
    return any(
        o is None or o is Ellipsis or isinstance(o, (Tensor, list, tuple, np.ndarray, slice))
        for o in index
    )


def _select_at(x, dim, i, real):
    if x.ndim == 0:
        raise IndexingError(
            "invalid index of a 0-dim tensor. Use `tensor.item()` in Python or "
            "`tensor.item<T>()` in C++ to convert a 0-dim tensor to a number",
            op="select",
        )
    n = x.shape[dim]
    if not -n <= i < n:
        raise IndexingError(
            f"index {i} is out of bounds for dimension {real} with size {n}", op="select"
        )
    return _run(x, "select", dim=dim, index=i)


def _slice_at(x, dim, sl, always):
    step = 1 if sl.step is None else int(sl.step)
    if step == 0:
        raise ValueError("slice step cannot be zero")
    if step < 0:
        raise ValueError("step must be greater than zero")
    n = x.shape[dim] if x.ndim else 1
    start = None if sl.start is None else int(sl.start)
    stop = None if sl.stop is None else int(sl.stop)
    if not always and start in (None, 0) and (stop is None or stop >= n) and step == 1:
        return x  # torch skips a slice that keeps the whole dim (inside a tuple)
    s, e, _ = slice(start, stop, step).indices(n)
    return _run(x, "slice", dim=dim, start=s, end=max(e, s), step=step)


def _parse(x, index):
    if index is None:
        return _run(x, "unsqueeze", dim=0)
    if index is Ellipsis:
        return _run(x, "alias")
    if (i := _as_int(index)) is not None:
        return _select_at(x, 0, i, 0)
    if isinstance(index, slice):
        return _slice_at(x, 0, index, always=True)
    items = tuple(index) if _as_tuple(index) else (index,)
    specified = sum(_taken(o) for o in items)
    if specified > x.ndim:
        raise IndexingError(f"too many indices for tensor of dimension {x.ndim}", op="getitem")
    result, dim, real, tensors = x, 0, 0, []
    for o in items:
        if (i := _as_int(o)) is not None:
            result = _select_at(result, dim, i, real)
            real += 1
        elif isinstance(o, slice):
            result = _slice_at(result, dim, o, always=False)
            dim, real = dim + 1, real + 1
        elif o is Ellipsis:
            dim, real = dim + x.ndim - specified, real + x.ndim - specified
        elif o is None:
            result = _run(result, "unsqueeze", dim=dim)
            dim += 1
        elif (b := _as_bool(o)) is not None:
            result = _run(result, "unsqueeze", dim=dim)
            tensors.append((dim, np.zeros(1 if b else 0, dtype=np.int64)))
            dim += 1
        elif isinstance(o, (Tensor, list, tuple, np.ndarray)):
            tensors.append((dim, o))
            dim, real = dim + _taken(o), real + _taken(o)
        else:
            raise IndexingError(_BAD_INDEX.format(type(o).__name__), op="getitem")
    if tensors:
        indices = []
        for at, o in tensors:
            indices += [None] * (at - len(indices))
            indices += _index_array(o, result.shape, at)
        return _run(result, "index", indices=tuple(indices))
    return _run(x, "alias") if result is x else result


@deffn("getitem", shape=lambda s, *, index: _parse(_Meta(s), index).shape)
def getitem(input, index):
    """x[index] as torch decomposes it: select / slice / unsqueeze views, then one gather by
    the tensor indices (IndexBackward0)."""
    return _parse(input, index)
