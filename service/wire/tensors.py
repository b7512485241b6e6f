"""Tensors on the wire: the JSON forms of `schemas.TensorWire` to numpy and back.

Decoding runs in two steps so that limits hold before memory is spent: `_plan` reads only the
envelope (shape, dtype, element count), `_hold` holds it to the limits (an empty tensor by what
its dimensions span: `extent`) and `_materialize` builds the array with one vectorised numpy
call. Decoded arrays are read-only: they are the client's values, and an
engine that mutated one would corrupt an input it might read again.

Non-finite floats are the strings "NaN", "Infinity" and "-Infinity" in `data`, and plain IEEE
754 bit patterns in `b64`. `encode_tensor` leaves writing them to `service.wire.jsonio`.
"""

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.shapes import extent
from service.problems import PROBLEM_TYPES, ProblemError, json_pointer
from service.wire import b64
from service.wire.dtypes import DTYPES, NATIVE, wire_dtype
from service.wire.jsonio import NON_FINITE

_INFERRED = {"b": "bool", "i": "int64"}  # array kinds torch.tensor keeps; floats: float32
NUMPY_MAX_NDIM = 64
_DATA_KEYS = frozenset({"data", "shape", "dtype", "requires_grad"})
_B64_KEYS = frozenset({"b64", "shape", "dtype", "requires_grad"})
_INT64_BOUND = 2.0**63
# numpy refuses a shape whose non-zero dimensions times the item size pass the largest intp,
# even when the array is empty ("array is too big"); 8 bytes is the widest wire dtype.
MAX_EXTENT = np.iinfo(np.intp).max // 8


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs several times more
class _Plan:
    pointer: str
    payload_pointer: str  # where `payload` is: the tensor itself, its /data or its /b64
    payload: Any  # `data` value, or the base64 text
    binary: bool
    shape: tuple[int, ...] | None  # declared; None for data without `shape`
    nested: tuple[int, ...]  # shape the nesting of `data` shows
    count: int
    dtype: str | None
    requires_grad: bool


def _invalid(pointer: str, detail: str, **extensions: Any) -> ProblemError:
    return PROBLEM_TYPES["invalid-tensor"].at(
        pointer, detail, summary=f"{detail} (at {pointer or '/'})", **extensions
    )


def _over_limit(pointer: str, what: str, limit: str, value: int, maximum: int) -> ProblemError:
    detail = f"{what} has {value} elements; the limit is {maximum}"
    return PROBLEM_TYPES["limit-exceeded"].at(
        pointer,
        detail,
        summary=f"{detail} (at {pointer or '/'})",
        limit=limit,
        value=value,
        maximum=maximum,
    )


def _too_wide(pointer: str, shape: tuple[int, ...], span: int, maximum: int) -> ProblemError:
    detail = (
        f"tensor of shape {list(shape)} is empty, but its non-zero dimensions span {span} "
        f"elements; the limit is {maximum}"
    )
    extensions = {"shape": list(shape), "value": span, "maximum": maximum}
    if maximum == MAX_EXTENT:  # no array of this shape exists, whatever the settings
        return _invalid(pointer, f"{detail}, the most numpy can shape", **extensions)
    return PROBLEM_TYPES["limit-exceeded"].at(
        pointer,
        detail,
        summary=f"{detail} (at {pointer or '/'})",
        limit="max_tensor_elements",
        **extensions,
    )


def _hold(plan: _Plan, max_elements: int | None) -> None:
    """Refuse a tensor over the element limit before numpy allocates it; an empty one by its
    `extent`. Reads the envelope only: the hot path is a comparison."""
    count = plan.count
    if count:
        if max_elements is not None and count > max_elements:
            raise _over_limit(plan.pointer, "tensor", "max_tensor_elements", count, max_elements)
        return
    shape = plan.shape if plan.shape is not None else plan.nested
    span = extent(shape)
    for maximum in (max_elements, MAX_EXTENT):
        if maximum is not None and span > maximum:
            raise _too_wide(plan.pointer, shape, span, maximum)


def _is_element(value: Any) -> bool:
    return isinstance(value, bool | int | float) or (isinstance(value, str) and value in NON_FINITE)


def _shape(value: Any, pointer: str, max_ndim: int) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value
    ):
        raise _invalid(pointer, "shape must be a list of non-negative integers")
    if len(value) > max_ndim:
        raise _invalid(pointer, f"shape has {len(value)} dimensions; at most {max_ndim}")
    return tuple(value)


def _nested_shape(data: Any, pointer: str, max_ndim: int) -> tuple[int, ...]:
    # Follows first elements only; raggedness elsewhere is found by numpy while it copies.
    dims = []
    while isinstance(data, list):
        if len(dims) == max_ndim:
            raise _invalid(pointer, f"data is nested deeper than {max_ndim} dimensions")
        dims.append(len(data))
        if not data:
            break
        data = data[0]
    return tuple(dims)


def _array_plan(
    array: np.ndarray, pointer: str, payload_pointer: str, max_ndim: int, requires_grad: bool
) -> _Plan:
    """A tensor that came as raw bytes (service.wire.safetensors): its own shape and dtype."""
    if array.ndim > max_ndim:
        raise _invalid(payload_pointer, f"shape has {array.ndim} dimensions; at most {max_ndim}")
    shape, dtype = array.shape, wire_dtype(array.dtype)
    return _Plan(
        pointer, payload_pointer, array, False, shape, shape, array.size, dtype, requires_grad
    )


def _plan(obj: Any, pointer: str, max_ndim: int) -> _Plan:
    if isinstance(obj, np.ndarray):
        return _array_plan(obj, pointer, pointer, max_ndim, False)
    if not isinstance(obj, dict):
        if not (isinstance(obj, list) or _is_element(obj)):
            raise _invalid(
                pointer,
                'a tensor is a number, a boolean, a nested list, or an object with "data" or "b64"',
            )
        nested = _nested_shape(obj, pointer, max_ndim)
        return _Plan(pointer, pointer, obj, False, None, nested, math.prod(nested), None, False)

    binary = "b64" in obj
    allowed = _B64_KEYS if binary else _DATA_KEYS
    for key in obj:
        if key not in allowed:
            hint = '; "data" and "b64" exclude each other' if key in ("data", "b64") else ""
            raise _invalid(json_pointer([*_split(pointer), key]), f"unknown member {key!r}{hint}")
    if not binary and "data" not in obj:
        raise _invalid(pointer, 'a tensor object needs "data" or "b64"')

    dtype = obj.get("dtype")
    if dtype is not None and (not isinstance(dtype, str) or dtype not in DTYPES):
        raise _invalid(f"{pointer}/dtype", f"dtype must be one of {', '.join(DTYPES)}")
    requires_grad = obj.get("requires_grad", False)
    if not isinstance(requires_grad, bool):
        raise _invalid(f"{pointer}/requires_grad", "requires_grad must be true or false")
    if requires_grad and dtype in ("int64", "bool"):
        raise _invalid(
            f"{pointer}/requires_grad", "only floating-point tensors can require gradients"
        )
    shape = obj.get("shape")
    if shape is not None:
        shape = _shape(shape, f"{pointer}/shape", max_ndim)

    if binary:
        if shape is None or dtype is None:
            raise _invalid(pointer, 'the "b64" form needs "shape" and "dtype"')
        if not isinstance(obj["b64"], str):
            raise _invalid(f"{pointer}/b64", "b64 must be a base64 string")
        count = math.prod(shape)
        b64 = obj["b64"]
        return _Plan(
            pointer, f"{pointer}/b64", b64, True, shape, shape, count, dtype, requires_grad
        )

    data = obj["data"]
    if isinstance(data, np.ndarray):  # {"requires_grad": true} and a tensor of the file
        if shape is not None or dtype is not None:
            raise _invalid(pointer, "a tensor sent as raw bytes has its own shape and dtype")
        return _array_plan(data, pointer, f"{pointer}/data", max_ndim, requires_grad)
    if not (isinstance(data, list) or _is_element(data)):
        raise _invalid(f"{pointer}/data", "data must be a number, a boolean or a nested list")
    nested = _nested_shape(data, f"{pointer}/data", max_ndim)
    count = math.prod(shape) if shape is not None else math.prod(nested)
    if shape is not None and nested != shape and nested != (count,):
        raise _invalid(
            f"{pointer}/data",
            f"data of shape {list(nested)} fits neither shape {list(shape)} nor its "
            f"flat form of {count} elements",
            shape=list(shape),
            data_shape=list(nested),
        )
    return _Plan(
        pointer, f"{pointer}/data", data, False, shape, nested, count, dtype, requires_grad
    )


def _child(pointer: str, name: str) -> str:
    """The pointer to member `name` of the value at `pointer`."""
    if "~" in name or "/" in name:
        return pointer + json_pointer((name,))
    return f"{pointer}/{name}"


def _split(pointer: str) -> list[str]:
    parts = pointer.split("/")[1:]
    return [p.replace("~1", "/").replace("~0", "~") for p in parts]


def _from_b64(plan: _Plan) -> np.ndarray:
    try:
        return b64.decode(plan.payload, plan.dtype or "", plan.shape or (), plan.count)
    except b64.Refused as exc:
        raise _invalid(plan.payload_pointer, exc.detail, **exc.extensions) from None


def _ragged(plan: _Plan) -> ProblemError:
    return _invalid(
        plan.payload_pointer,
        "ragged nested list: sublists at one depth differ in length or mix lists and numbers",
    )


_NUMBER, _BIG_INT, _OTHER = 0, 1, 2


def _classify(value: Any) -> int:
    if isinstance(value, bool | float):
        return _NUMBER
    if isinstance(value, int):
        return _NUMBER if -(2**63) <= value < 2**63 else _BIG_INT
    return _OTHER


def _from_tokens(plan: _Plan) -> np.ndarray:
    """The slow path, for data holding "NaN"/"Infinity"/"-Infinity" strings."""
    cells = np.array(plan.payload, dtype=object)
    if cells.shape != plan.nested:
        raise _ragged(plan)
    flat = cells.reshape(-1)
    out = np.empty(flat.shape, np.float64)
    tokens = np.zeros(flat.shape, bool)
    for token, value in NON_FINITE.items():
        hits = flat == token
        out[hits] = value
        tokens |= hits
    rest = flat[~tokens]
    kinds = np.frompyfunc(_classify, 1, 1)(rest).astype(np.int8)
    if (kinds == _OTHER).any():
        bad = rest[kinds == _OTHER][0]
        raise _invalid(
            plan.payload_pointer,
            f"elements must be numbers, booleans or one of {', '.join(NON_FINITE)}; found {bad!r}",
        )
    if (kinds == _BIG_INT).any() and plan.dtype not in ("float32", "float64"):
        raise _invalid(plan.payload_pointer, "an integer is outside the int64 range")
    try:
        out[~tokens] = rest.astype(np.float64)
    except OverflowError:
        raise _invalid(plan.payload_pointer, "an integer is too large for float64") from None
    return out.reshape(plan.nested)


def _from_data(plan: _Plan) -> np.ndarray:
    try:
        array = np.array(plan.payload)
    except (ValueError, OverflowError):
        raise _ragged(plan) from None
    if array.shape != plan.nested:
        raise _ragged(plan)
    if array.dtype.kind not in "biuf":  # strings or other objects among the numbers
        array = _from_tokens(plan)
    elif array.dtype.kind == "u" and plan.dtype not in ("float32", "float64"):
        raise _invalid(plan.payload_pointer, "an integer is outside the int64 range")

    target = plan.dtype
    if target is None:  # torch.tensor's inference: any float makes the default float32
        target = _INFERRED.get(array.dtype.kind, "float32")
        if plan.requires_grad and target == "int64":
            # `{"data": [2, 3], "requires_grad": true}` means the seed's a = [2., 3.]: only
            # floats can require grad, and a client writing integers cannot mean int64 then.
            target = "float32"
    elif target in ("int64", "bool") and array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise _invalid(plan.payload_pointer, f"non-finite values cannot be {target}")
        if target == "int64" and (np.abs(array) >= _INT64_BOUND).any():
            raise _invalid(plan.payload_pointer, "a value is outside the int64 range")
    native = NATIVE[target]
    if array.dtype.kind == "f" and native.itemsize < array.dtype.itemsize:
        with warnings.catch_warnings(), np.errstate(over="ignore"):
            # float64 -> float32 overflows to +-inf, as torch.tensor does.
            warnings.simplefilter("ignore", RuntimeWarning)
            array = array.astype(native, copy=False)
    else:  # widening or exact casts: nothing to warn about
        array = array.astype(native, copy=False)
    return array.reshape(plan.shape) if plan.shape is not None else array


def _materialize(plan: _Plan) -> tuple[np.ndarray, bool]:
    if isinstance(plan.payload, np.ndarray):
        array = plan.payload
    else:
        array = _from_b64(plan) if plan.binary else _from_data(plan)
    if plan.requires_grad and array.dtype.kind != "f":
        raise _invalid(
            f"{plan.pointer}/requires_grad", "only floating-point tensors can require gradients"
        )
    array.flags.writeable = False
    return array, plan.requires_grad


def decode_tensor(
    obj: Any,
    *,
    pointer: str = "",
    max_elements: int | None = None,
    max_ndim: int = NUMPY_MAX_NDIM,
) -> tuple[np.ndarray, bool]:
    """(array, requires_grad) from any wire form; `ProblemError` 422 naming the bad field.

    `pointer` is where `obj` sits in the request body, so errors point into the body.
    """
    plan = _plan(obj, pointer, max_ndim)
    _hold(plan, max_elements)
    return _materialize(plan)


def decode_tensors(
    objs: Mapping[str, Any],
    *,
    pointer: str = "",
    max_elements: int | None = None,
    max_total_elements: int | None = None,
    max_ndim: int = NUMPY_MAX_NDIM,
) -> dict[str, tuple[np.ndarray, bool]]:
    """Decode a name -> tensor mapping, checking every limit before decoding any tensor."""
    plans = {name: _plan(obj, _child(pointer, name), max_ndim) for name, obj in objs.items()}
    for plan in plans.values():
        _hold(plan, max_elements)
    total = sum(plan.count for plan in plans.values())
    if max_total_elements is not None and total > max_total_elements:
        raise _over_limit(pointer, "all tensors", "max_total_elements", total, max_total_elements)
    return {name: _materialize(plan) for name, plan in plans.items()}


def encode_tensor(array: Any, binary: bool = False, *, fragment: bool = False) -> dict[str, Any]:
    """The wire form of `array`: `{"data" | "b64", "shape", "dtype"}`.

    `data` holds the numpy array itself: render with `service.wire.jsonio.dumps` (or return in an
    `ORJSONResponse`), which formats it in C and writes non-finite values as strings.
    With `fragment`, `b64` is the quoted base64 text as an `orjson.Fragment`, which orjson
    copies into the document as it is instead of scanning megabytes of text for escapes.
    """
    array = np.asarray(array)
    name = wire_dtype(array.dtype)
    shape = list(array.shape)
    if binary:
        return {"b64": b64.encode(array, name, fragment), "shape": shape, "dtype": name}
    native = array.astype(NATIVE[name], order="C", copy=False)
    return {"data": native, "shape": shape, "dtype": name}
