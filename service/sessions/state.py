"""A session's whole state as one file: safetensors (the format torch and Hugging Face use for
weights: a JSON header, then raw little-endian bytes; never pickle) or JSON.

Tensor names in the file: `param/<name>`, `grad/<name>`, `buffer/<name>` and
`state/<name>/<slot>` (the optimizer's buffers in torch's names). The header's
`__metadata__` holds the rest as JSON text: `program` (expr or nodes/outputs, loss),
`optimizer`, `requires_grad` and `step_count`. `POST /v1/sessions` with such a file
(`application/octet-stream`) restores the session.
"""

import json
import math
import re
from typing import Any

import numpy as np
from pydantic import ValidationError

from service.schemas.sessions import SessionCreate
from service.sessions.build import assemble, invalid
from service.settings import Settings
from service.store import SessionRecord
from service.wire import encode_tensor, jsonio, safetensors

FORMAT = "autograd-session"
FORMAT_VERSION = "1"
_PREFIXES = ("param", "grad", "buffer", "state")
_COUNT = re.compile(r"[0-9]{1,18}")  # ASCII digits that int() reads; str.isdigit takes "²"
_DTYPES = {"F64", "F32", "F16", "I64", "I32", "I16", "I8", "U8", "BOOL"}


def _metadata(record: SessionRecord) -> dict[str, str]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "program": json.dumps(record.program, sort_keys=True),
        "optimizer": json.dumps(record.optimizer, sort_keys=True),
        "requires_grad": json.dumps(record.requires_grad, sort_keys=True),
        "step_count": str(record.step_count),
    }


def _tensors(record: SessionRecord) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for prefix, group in (("param", record.parameters), ("grad", record.grads),
                          ("buffer", record.buffers)):  # fmt: skip
        out.update({f"{prefix}/{name}": array for name, array in group.items()})
    for name, slots in record.optimizer_state.items():
        out.update({f"state/{name}/{slot}": array for slot, array in slots.items()})
    # (not np.ascontiguousarray: it makes a 0-d array, as Adam's `step`, 1-d)
    return {k: np.require(v, requirements="C") for k, v in sorted(out.items())}


def to_safetensors(record: SessionRecord) -> bytes:
    return safetensors.write(_tensors(record), _metadata(record))


def to_json(record: SessionRecord, binary: bool = False) -> dict[str, Any]:
    """The state as a `SessionCreate` document: posting it back restores the session."""

    def enc(array: np.ndarray) -> dict[str, Any]:
        return encode_tensor(array, binary)

    program = dict(record.program)
    loss = program.pop("loss", None)
    content: dict[str, Any] = {
        **{k: v for k, v in program.items() if v is not None},
        "parameters": {
            name: {**enc(array), "requires_grad": record.requires_grad.get(name, True)}
            for name, array in sorted(record.parameters.items())
        },
        "buffers": {name: enc(a) for name, a in sorted(record.buffers.items())},
        "grads": {name: enc(a) for name, a in sorted(record.grads.items())},
        "optimizer_state": {
            name: {slot: enc(a) for slot, a in sorted(slots.items())}
            for name, slots in sorted(record.optimizer_state.items())
        },
        "optimizer": record.optimizer,
        "step_count": record.step_count,
    }
    if loss is not None:
        content["loss"] = loss
    return content


def check_sizes(header: dict[str, Any], settings: Settings) -> None:
    """A session file's tensors: the wire's dtypes, within the element limits."""
    total = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if (
            not isinstance(info, dict)
            or not isinstance(info.get("dtype"), str)
            or (info["dtype"] not in _DTYPES)
        ):
            raise invalid("", f"tensor {name!r}: unsupported dtype {info!r}")
        count = math.prod(info.get("shape") or [])
        if count > settings.max_tensor_elements:
            raise invalid(
                "", f"tensor {name!r} has {count} elements; the limit is "
                f"{settings.max_tensor_elements}", slug="limit-exceeded",
                limit="max_tensor_elements", value=count, maximum=settings.max_tensor_elements,
            )  # fmt: skip
        total += count
    if total > settings.max_total_elements:
        raise invalid(
            "", f"the file holds {total} elements; the limit is {settings.max_total_elements}",
            slug="limit-exceeded", limit="max_total_elements", value=total,
            maximum=settings.max_total_elements,
        )  # fmt: skip


def _meta_json(meta: dict[str, str], key: str) -> Any:
    try:
        return jsonio.loads(meta[key])  # orjson: too deep is an error, not a RecursionError
    except (KeyError, ValueError, TypeError):
        raise invalid("", f"the file's metadata has no valid {key!r}") from None


def record_from_safetensors(data: bytes, settings: Settings) -> tuple[SessionRecord, str]:
    """A new session restored from a file made by `to_safetensors`, and its token."""

    def check(header: dict[str, Any]) -> None:
        meta = header.get("__metadata__") or {}
        if not isinstance(meta, dict):
            raise invalid("", "the file's __metadata__ is not an object of strings")
        if meta.get("format") != FORMAT:
            raise invalid("", f"the file's metadata does not say format {FORMAT!r}")
        check_sizes(header, settings)

    header, tensors = safetensors.read(data, check, refused_as="invalid-session")
    meta = header.get("__metadata__") or {}

    groups: dict[str, dict[str, np.ndarray]] = {p: {} for p in _PREFIXES}
    state: dict[str, dict[str, np.ndarray]] = {}
    for key, array in tensors.items():
        prefix, _, rest = key.partition("/")
        if prefix == "state" and "/" in rest:
            name, _, slot = rest.partition("/")
            state.setdefault(name, {})[slot] = array.copy()
        elif prefix in groups and rest and prefix != "state":
            groups[prefix][rest] = array.copy()
        else:
            raise invalid("", f"unexpected tensor {key!r} (param/, grad/, buffer/, state/)")
    program = _meta_json(meta, "program")
    requires_grad = _meta_json(meta, "requires_grad")
    step_count = meta.get("step_count", "0")
    document = {
        **(program if isinstance(program, dict) else {}),
        "optimizer": _meta_json(meta, "optimizer"),
        "parameters": dict.fromkeys(groups["param"], 0),
        "step_count": int(step_count) if _COUNT.fullmatch(str(step_count)) else -1,
    }
    try:
        body = SessionCreate.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "/".join(str(p) for p in first["loc"])
        raise invalid("", f"the file's metadata is invalid: {where}: {first['msg']}") from None
    if not isinstance(requires_grad, dict):
        raise invalid("", "the file's metadata 'requires_grad' is not an object")
    for name, array in groups["param"].items():
        if array.dtype not in (np.float32, np.float64):
            raise invalid("", f"parameter {name!r} is {array.dtype}, not float32 or float64")
    flags = {name: bool(requires_grad.get(name, True)) for name in groups["param"]}
    return assemble(body, groups["param"], flags, groups["buffer"], groups["grad"], state, settings)
