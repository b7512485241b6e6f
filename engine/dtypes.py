"""The four dtypes we support and torch's promotion rules over them.

numpy would turn int64 * 2.5 into float64 and int / int into float64; torch gives float32
(its default dtype). Ops therefore ask `result_type` and cast before calling numpy."""

from collections import defaultdict

import numpy as np

float32 = np.dtype("float32")
float64 = np.dtype("float64")
int64 = np.dtype("int64")
bool_ = np.dtype("bool")
DTYPES = {"float32": float32, "float64": float64, "int64": int64, "bool": bool_}
default_float = float32

# bool < integer < floating: the category decides, width only breaks ties inside one.
_CATEGORY = {bool_: 0, int64: 1, float32: 2, float64: 2}


def canonical(dtype) -> np.dtype:
    """Map any accepted dtype spelling (np type, string, torch-style name) to one of ours."""
    if dtype is None:
        return None
    if isinstance(dtype, str):
        name = dtype.removeprefix("torch.").removeprefix("engine.")
        name = {"float": "float32", "double": "float64", "long": "int64", "int": "int64"}.get(
            name, name
        )
        if name in DTYPES:
            return DTYPES[name]
        raise TypeError(f"unsupported dtype {dtype!r}; use one of {sorted(DTYPES)}")
    d = np.dtype(dtype)
    if d in _CATEGORY:
        return d
    if d.kind == "f":
        return float64 if d.itemsize > 4 else float32
    if d.kind in "iu":
        return int64
    raise TypeError(f"unsupported dtype {d}; use one of {sorted(DTYPES)}")


def is_floating(dtype) -> bool:
    return dtype.kind == "f"


def scalar_category(x) -> int:
    if isinstance(x, bool):
        return 0
    if isinstance(x, int):
        return 1
    return 2


def result_type(tensors, scalars=()) -> np.dtype:
    """torch.result_type for tensors of our dtypes plus Python numbers.

    Dimensioned tensors win over zero-dim ones, which win over Python numbers, unless the
    lower group is of a higher category (float beats int beats bool)."""
    dims = [t.dtype for t in tensors if t.ndim]
    zero = [t.dtype for t in tensors if not t.ndim]
    best = None
    for group in (dims, zero):
        if not group:
            continue
        cat = max(_CATEGORY[d] for d in group)
        cand = _widest(group, cat)
        if best is None or cat > _CATEGORY[best]:
            best = cand
    if scalars:
        cat = max(scalar_category(s) for s in scalars)
        if best is None or cat > _CATEGORY[best]:
            best = _bump(cat)
    return best if best is not None else default_float


def _widest(group, cat):
    same = [d for d in group if _CATEGORY[d] == cat]
    return max(same, key=lambda d: d.itemsize)


def _bump(cat: int) -> np.dtype:
    return (bool_, int64, default_float)[cat]


SCALARS: defaultdict = defaultdict(dict)  # dtype -> {number: read-only 0-d array}


def scalar_array(value, dtype):
    """A Python number as a read-only 0-d array of floating `dtype`, for numpy arithmetic.

    numpy converts a Python operand on every call (a 2-element float32 array times 3.0 takes
    twice as long as times a 0-d float32 array); under numpy 2's weak-scalar rule both give
    the same result for a floating array. Cached per value in `SCALARS[dtype]` (a few
    hundred at most; hot paths read that dict first); zero (-0.0 == 0.0 as a key), NaN,
    infinities and values a float32 could not hold exactly enough stay Python numbers."""
    cache = SCALARS[dtype]
    c = cache.get(value)
    if c is None:
        if type(value) is int:
            if not 0 < abs(value) <= 1 << 24:
                return value
        elif not 1e-30 < abs(value) < 1e30:
            return value
        c = np.array(value, dtype)
        c.flags.writeable = False
        if len(cache) < 256:
            cache[value] = c
    return c
