"""Safetensors files: the one reader and writer of the format in the service (`read`, `write`),
and request bodies as such files (`document`, `encode`).

A request body as a file (`application/octet-stream`) holds the request's tensors as raw
bytes, the rest of it as JSON in the file's metadata.

A batch in base64 JSON costs a third more bytes, a JSON parse of the text and a base64
decode; a safetensors body costs a header parse. The file's `__metadata__["request"]` is
the request's JSON without its tensors (`{}` when absent); each tensor in the file is
named by the JSON pointer (RFC 6901) of the place it takes in that document:
`/inputs/x`, `/batches/0/y`. Missing objects on the way are created; an index one past the
end of a list appends. Where the document already holds an object (say `{"requires_grad":
true}`), the tensor becomes its `data`. The document then goes through the same
validation as a JSON body; its tensors reach `wire.decode_tensor` as numpy arrays.
"""

import json
import re
import struct
from collections.abc import Callable
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load, save

from service.problems import PROBLEM_TYPES, ProblemError
from service.wire import jsonio

MEDIA = "application/octet-stream"
REQUEST_KEY = "request"
MAX_DEPTH = 16  # levels of a tensor's pointer: /batches/7/inputs/x/data is 5
_INDEX = re.compile(r"0|[1-9][0-9]{0,8}")
# The wire's dtypes (wire.DTYPES), as safetensors spells them.
_DTYPES = {"F32": "float32", "F64": "float64", "I64": "int64", "BOOL": "bool"}


def malformed(detail: str, pointer: str = "") -> ProblemError:
    return PROBLEM_TYPES["invalid-safetensors"].at(pointer, detail)


def header(data: bytes) -> dict[str, Any]:
    """The file's JSON header (tensor entries and `__metadata__`), checked to be one."""
    if len(data) < 8:
        raise malformed("not a safetensors file: shorter than its 8-byte header length")
    (size,) = struct.unpack("<Q", data[:8])
    if size > len(data) - 8:
        raise malformed(f"not a safetensors file: its header claims {size} bytes")
    try:  # orjson: a nesting too deep is a decode error, not a RecursionError
        parsed = jsonio.loads(data[8 : 8 + size])
    except jsonio.JSONDecodeError:
        raise malformed("not a safetensors file: its header is not JSON") from None
    if not isinstance(parsed, dict):
        raise malformed("not a safetensors file: its header is not a JSON object")
    return parsed


def read(
    data: bytes,
    check: Callable[[dict[str, Any]], None] | None = None,
    refused_as: str = "invalid-safetensors",
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(header, tensors by name) of a safetensors file. `check` sees the header before any
    tensor's bytes are read, so that limits hold before memory is spent. A file whose tensors
    cannot be read is a `refused_as` problem (a session's files: invalid-session)."""
    parsed = header(data)
    if check is not None:
        check(parsed)
    try:
        tensors = load(data)
    except (SafetensorError, ValueError, TypeError) as exc:
        raise PROBLEM_TYPES[refused_as].at("", f"not a readable safetensors file: {exc}") from None
    return parsed, tensors


def write(tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> bytes:
    """A safetensors file of C-contiguous `tensors`, with string `metadata`."""
    return save(tensors, metadata=metadata)


def _shown(name: str) -> str:
    return name if len(name) <= 100 else f"{name[:97]}..."


def _tokens(name: str) -> list[str]:
    if not name.startswith("/"):
        raise malformed(
            f"tensor {_shown(name)!r}: tensors are named by the JSON pointer of their place in the "
            'request, such as "/inputs/x"'
        )
    tokens = name[1:].split("/")
    if len(tokens) > MAX_DEPTH:
        raise malformed(
            f"tensor {_shown(name)!r}: its pointer is {len(tokens)} levels deep; no request "
            f"has a place deeper than {MAX_DEPTH}"
        )
    return [t.replace("~1", "/").replace("~0", "~") for t in tokens]


def _index(token: str) -> int | None:
    """The list index `token` spells (RFC 6901: ASCII digits, no leading zero), or None."""
    if _INDEX.fullmatch(token) is None:
        return None
    return int(token)


def _order(name: str) -> tuple[tuple[int, int | str], ...]:
    """Pointers in document order: /batches/2 before /batches/10."""
    return tuple((1, t) if (i := _index(t)) is None else (0, i) for t in name.split("/"))


def _child(container: Any, token: str, name: str, create: bool) -> tuple[Any, Any]:
    """(the container, the key) under which `token` is in `container`, created if asked."""
    if isinstance(container, dict):
        if create and token not in container:
            container[token] = {}
        return container, token
    if isinstance(container, list):
        index = _index(token)
        if index is None or index > len(container):
            raise malformed(
                f"tensor {_shown(name)!r}: {_shown(token)!r} is not an index of a list of "
                f"{len(container)}"
            )
        if index == len(container):
            container.append({} if create else None)
        return container, index
    raise malformed(f"tensor {_shown(name)!r}: its place is inside a value that is not a container")


def _place(document: dict[str, Any], name: str, array: np.ndarray) -> None:
    tokens = _tokens(name)
    node: Any = document
    for token in tokens[:-1]:
        container, key = _child(node, token, name, create=True)
        node = container[key]
    container, key = _child(node, tokens[-1], name, create=False)
    existing = container[key] if isinstance(container, list) else container.get(key)
    if isinstance(existing, dict) and "data" not in existing and "b64" not in existing:
        existing["data"] = array  # {"requires_grad": true} and the like
    elif existing is not None:
        raise malformed(f"tensor {_shown(name)!r}: the request already has a value there", name)
    else:
        container[key] = array


def _request(parsed: dict[str, Any]) -> dict[str, Any]:
    """The request the header's metadata holds, every tensor's dtype checked on the way."""
    metadata = parsed.get("__metadata__") or {}
    for name, info in parsed.items():
        dtype = info.get("dtype") if isinstance(info, dict) else info
        if name != "__metadata__" and not (isinstance(dtype, str) and dtype in _DTYPES):
            raise malformed(
                f"tensor {_shown(name)!r} is {dtype}; tensors are {', '.join(_DTYPES)} "
                f"({', '.join(_DTYPES.values())})",
                name if name.startswith("/") else "",
            )
    text = metadata.get(REQUEST_KEY, "{}") if isinstance(metadata, dict) else None
    try:
        request = jsonio.loads(text) if isinstance(text, str) else None
    except jsonio.JSONDecodeError as exc:
        raise malformed(f'the metadata\'s "request" is not JSON: {exc}') from None
    if not isinstance(request, dict):
        raise malformed('the metadata\'s "request" must be the JSON text of an object')
    return request


def document(data: bytes) -> dict[str, Any]:
    """The request a safetensors body stands for, its tensors as read-only numpy arrays."""
    request: dict[str, Any] = {}
    # the request is read (and refused) from the header before any tensor's bytes
    _, tensors = read(data, lambda parsed: request.update(_request(parsed)))
    for name in sorted(tensors, key=_order):
        array = tensors[name]
        if array.dtype == np.bool_ and array.size and array.view(np.uint8).max() > 1:
            raise malformed(f"tensor {_shown(name)!r}: bool bytes must be 0 or 1", name)
        array.flags.writeable = False
        _place(request, name, array)
    return request


def encode(request: dict[str, Any], tensors: dict[str, np.ndarray]) -> bytes:
    """A safetensors body: `request` (JSON without its tensors) and the tensors by pointer."""
    return write(
        {name: np.ascontiguousarray(a) for name, a in tensors.items()},
        metadata={REQUEST_KEY: json.dumps(request)},
    )
