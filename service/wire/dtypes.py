"""The wire's dtypes: the four a tensor may have, little-endian whatever the host's."""

import numpy as np

DTYPES: dict[str, np.dtype] = {
    "float32": np.dtype("<f4"),
    "float64": np.dtype("<f8"),
    "int64": np.dtype("<i8"),
    "bool": np.dtype("?"),
}
NATIVE = {name: dtype.newbyteorder("=") for name, dtype in DTYPES.items()}


def wire_dtype(dtype: np.dtype) -> str:
    """The wire name an array of `dtype` is sent as; TypeError when none holds it exactly."""
    kind, size = dtype.kind, dtype.itemsize
    if kind == "b":
        return "bool"
    if kind == "i" or (kind == "u" and size < 8):
        return "int64"
    if kind == "f" and size <= 8:
        return "float32" if size <= 4 else "float64"
    raise TypeError(f"no wire dtype holds {dtype} exactly")
