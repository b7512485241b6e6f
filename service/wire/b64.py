"""The base64 form of a tensor (`{"b64", "shape", "dtype"}`): its raw little-endian bytes,
~3x smaller than JSON numbers and decoded without a parse. Non-finite floats are plain IEEE
754 bit patterns here. What is wrong with a text is a `Refused`, which `tensors` turns into
an invalid-tensor problem pointing at the field."""

import base64
import binascii
import math
from typing import Any

import numpy as np
import orjson

from service.wire.dtypes import DTYPES


class Refused(ValueError):
    """The text does not hold the tensor its envelope declares."""

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail, self.extensions = detail, extensions


def decode(text: str, name: str, shape: tuple[int, ...], count: int) -> np.ndarray:
    """The array `text` holds: `count` elements of the wire dtype `name`, as `shape`."""
    dtype = DTYPES[name]
    nbytes = count * dtype.itemsize
    chars = 4 * math.ceil(nbytes / 3)
    if len(text) != chars:  # checked on the text, before decoding anything
        raise Refused(
            f"b64 has {len(text)} characters; shape {list(shape)} of {name} is "
            f"{nbytes} bytes, which is {chars} base64 characters",
            expected_bytes=nbytes,
        )
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Refused(f"invalid base64: {exc}") from None
    if len(raw) != nbytes:
        raise Refused(f"b64 decodes to {len(raw)} bytes; {nbytes} needed")
    if dtype.kind == "b" and nbytes and np.frombuffer(raw, np.uint8).max() > 1:
        raise Refused("bool bytes must be 0 or 1")
    array = np.frombuffer(raw, dtype=dtype).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=False)


def encode(array: np.ndarray, name: str, fragment: bool = False) -> str | orjson.Fragment:
    """`array`'s bytes as the wire dtype `name`, in base64. With `fragment`, the quoted text as an
    `orjson.Fragment`, which orjson copies into the document as it is instead of scanning
    megabytes of text for escapes."""
    # b64encode reads the array's buffer directly: no intermediate bytes copy.
    raw = base64.b64encode(np.ascontiguousarray(array, dtype=DTYPES[name]))
    return orjson.Fragment(b'"' + raw + b'"') if fragment else raw.decode("ascii")
