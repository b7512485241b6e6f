"""Tensor constructors with torch's names and dtype inference, and the seeded generator."""

from __future__ import annotations

import threading
from contextlib import contextmanager

import numpy as np

from . import dtypes as _dt
from .tensor import Tensor

_rng = np.random.default_rng()
_local = threading.local()  # a thread's own generator while `seeded` is active


def manual_seed(seed: int):
    """Seed the generator behind rand, randn, dropout and the initialisers."""
    global _rng
    _rng = np.random.default_rng(int(seed))
    return _rng


def generator() -> np.random.Generator:
    """The generator rand, randn, dropout and the initialisers draw from: this thread's
    `seeded` one if any, else the global one manual_seed seeds."""
    rng = getattr(_local, "rng", None)
    return _rng if rng is None else rng


@contextmanager
def seeded(seed: int | None):
    """Within the block, this thread draws from a fresh generator seeded with `seed` (None:
    from fresh OS entropy); the global generator and other threads are untouched. So a
    server can build `resnet18()` reproducibly from a seed while other requests draw."""
    previous = getattr(_local, "rng", None)
    _local.rng = np.random.default_rng(None if seed is None else int(seed))
    try:
        yield _local.rng
    finally:
        _local.rng = previous


def _infer(data):
    """torch.tensor's inference: Python floats → float32, ints → int64, bools → bool;
    numpy arrays and numpy scalars keep their dtype."""
    if isinstance(data, (np.ndarray, np.generic)):
        return _dt.canonical(data.dtype)
    arr = np.asarray(data)
    if arr.dtype.kind == "f":
        return _dt.default_float
    return _dt.canonical(arr.dtype) if arr.dtype.kind in "biu" else _dt.default_float


def tensor(data, dtype=None, requires_grad=False, device=None):
    """A new leaf tensor holding a copy of data."""
    if isinstance(data, Tensor):
        data = data._a
    elif isinstance(data, (list, tuple)) and any(isinstance(x, Tensor) for x in _flat(data)):
        data = np.asarray([x._a if isinstance(x, Tensor) else x for x in data])
    dt = _dt.canonical(dtype) if dtype is not None else _infer(data)
    arr = np.array(data, dtype=dt, copy=True)
    t = Tensor(arr)
    if requires_grad:
        t.requires_grad = True
    return t


def _flat(data):
    for x in data:
        if isinstance(x, (list, tuple)):
            yield from _flat(x)
        else:
            yield x


def as_tensor(data, dtype=None):
    if isinstance(data, Tensor) and (dtype is None or data.dtype == _dt.canonical(dtype)):
        return data
    return tensor(data, dtype)


def from_numpy(arr: np.ndarray) -> Tensor:
    """Shares memory with arr, as torch.from_numpy does."""
    return Tensor(arr if arr.dtype in _dt.DTYPES.values() else arr.astype(_dt.canonical(arr.dtype)))


def _size(size):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        return tuple(size[0])
    return tuple(size)


def _make(arr, requires_grad):
    t = Tensor(arr)
    if requires_grad:
        t.requires_grad = True
    return t


def zeros(*size, dtype=None, requires_grad=False):
    return _make(np.zeros(_size(size), _dt.canonical(dtype) or _dt.default_float), requires_grad)


def ones(*size, dtype=None, requires_grad=False):
    return _make(np.ones(_size(size), _dt.canonical(dtype) or _dt.default_float), requires_grad)


def full(size, fill_value, dtype=None, requires_grad=False):
    if dtype is None:
        dtype = (
            _dt.bool_
            if isinstance(fill_value, bool)
            else (_dt.int64 if isinstance(fill_value, int) else _dt.default_float)
        )
    return _make(np.full(tuple(size), fill_value, _dt.canonical(dtype)), requires_grad)


def empty(*size, dtype=None, requires_grad=False):
    return zeros(*size, dtype=dtype, requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None, requires_grad=False):
    if end is None:
        start, end = 0, start
    if dtype is None:
        ints = all(isinstance(v, int) for v in (start, end, step))
        dtype = _dt.int64 if ints else _dt.default_float
    return _make(np.arange(start, end, step).astype(_dt.canonical(dtype)), requires_grad)


def linspace(start, end, steps, dtype=None, requires_grad=False):
    dt = _dt.canonical(dtype) or _dt.default_float
    return _make(np.linspace(start, end, steps).astype(dt), requires_grad)


def eye(n, m=None, dtype=None, requires_grad=False):
    return _make(np.eye(n, m, dtype=_dt.canonical(dtype) or _dt.default_float), requires_grad)


def rand(*size, dtype=None, requires_grad=False):
    dt = _dt.canonical(dtype) or _dt.default_float
    return _make(generator().random(_size(size), dtype=np.float64).astype(dt), requires_grad)


def randn(*size, dtype=None, requires_grad=False):
    dt = _dt.canonical(dtype) or _dt.default_float
    return _make(generator().standard_normal(_size(size)).astype(dt), requires_grad)


def randint(low, high=None, size=(), dtype=None):
    if high is None:
        low, high = 0, low
    return Tensor(
        generator().integers(low, high, size=tuple(size)).astype(_dt.canonical(dtype) or _dt.int64)
    )


def _like(fn):
    def like(input, dtype=None, requires_grad=False):
        return fn(*input.shape, dtype=dtype or input.dtype, requires_grad=requires_grad)

    like.__name__ = fn.__name__ + "_like"
    return like


zeros_like = _like(zeros)
ones_like = _like(ones)
rand_like = _like(rand)
randn_like = _like(randn)
empty_like = _like(empty)


def full_like(input, fill_value, dtype=None, requires_grad=False):
    return full(input.shape, fill_value, dtype=dtype or input.dtype, requires_grad=requires_grad)
