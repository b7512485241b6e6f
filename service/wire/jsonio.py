"""JSON text in and out with orjson, and the one rule for numbers JSON cannot hold.

JSON has no NaN or infinities, and orjson writes them as `null`, which a client cannot tell
from a missing value. So every non-finite float leaving the service, inside a tensor or not,
is written as one of the strings in `NON_FINITE`, and `service.wire` reads the same strings
back. Numpy arrays are handed to orjson whole: it formats them in C, which is what keeps a
10^6-element answer in the tens of milliseconds.
"""

import json
import math
from typing import Any

import numpy as np
import orjson

NAN, POS_INF, NEG_INF = "NaN", "Infinity", "-Infinity"
NON_FINITE: dict[str, float] = {NAN: math.nan, POS_INF: math.inf, NEG_INF: -math.inf}

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS

JSONDecodeError = orjson.JSONDecodeError


def loads(text: bytes | str) -> Any:
    """Parse strict JSON (bare `NaN`/`Infinity` tokens are rejected, as the RFC says)."""
    return orjson.loads(text)


def dumps(content: Any) -> bytes:
    """Serialise `content`, writing non-finite floats as "NaN"/"Infinity"/"-Infinity"."""
    return orjson.dumps(json_safe(content), option=_OPTIONS)


def dumps_exact(content: Any) -> bytes:
    """`dumps` for content orjson refuses for an integer past 64 bits (the element count of a
    refused shape, say): the standard library writes any integer exactly, as JSON allows. Slow;
    only for what `dumps` refused."""
    text = json.dumps(json_safe(content), ensure_ascii=False, separators=(",", ":"), default=_plain)
    return text.encode("utf-8")


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON")


def dumps_safe(content: Any) -> bytes:
    """Serialise `content` already made safe, part by part, with `json_safe` and
    `safe_array`: the hot paths build answers so, and skip a walk over the whole envelope."""
    return orjson.dumps(content, option=_OPTIONS)


def float_token(value: float) -> float | str:
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return NAN
    return POS_INF if value > 0 else NEG_INF


def json_safe(value: Any) -> Any:
    """Return `value` with every non-finite float, and every array orjson cannot take, fixed.

    Walks the envelope only: arrays are checked with one vectorised `isfinite` and passed on
    unchanged when they are finite and C-contiguous, so big tensors cost nothing here.
    """
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:  # most of an envelope
        return value
    if kind is dict:
        return {k: json_safe(v) for k, v in value.items()}
    if kind is float:
        return value if math.isfinite(value) else float_token(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, float | np.floating):
        return float_token(float(value))
    if isinstance(value, np.ndarray):
        return _array_safe(value)
    return value


def safe_array(array: np.ndarray) -> Any:
    """An array as `json_safe` leaves it (orjson takes the result as it is)."""
    return _array_safe(array)


def _array_safe(array: np.ndarray) -> Any:
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        return _with_tokens(array)
    if array.ndim == 0:
        return array[()]  # orjson rejects 0-d arrays; a numpy scalar keeps float32's short form
    if not array.dtype.isnative or not array.flags.c_contiguous:
        array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("="))
    return array


def _with_tokens(array: np.ndarray) -> Any:
    # Elements stay numpy scalars so orjson prints float32 values in float32's shortest form.
    cells = np.empty(array.shape, dtype=object)
    cells.reshape(-1)[:] = list(array.reshape(-1))
    cells[np.isnan(array)] = NAN
    cells[array == np.inf] = POS_INF
    cells[array == -np.inf] = NEG_INF
    return cells.tolist()
