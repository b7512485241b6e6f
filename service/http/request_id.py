"""The id of the request being served: taken from `X-Request-ID` when it is safe, else made.

Set by `service.http.observability` for the whole request, so that the access log line, every
other log line and every problem document of one request carry the same id, and a client or
the load balancer in front can quote it.
"""

import os
import re
from contextvars import ContextVar

HEADER = "X-Request-ID"
MAX_LENGTH = 128
# Enough for UUIDs, ULIDs, hex and base64 ids and tracing headers such as "Root=1-5759e988";
# nothing that could split a log line or a header, or grow without bound.
_SAFE = re.compile(rf"[A-Za-z0-9._:=+/@-]{{1,{MAX_LENGTH}}}")

_current: ContextVar[str | None] = ContextVar("request_id", default=None)


def is_valid(value: str) -> bool:
    return _SAFE.fullmatch(value) is not None


def new() -> str:
    """A fresh id: 32 hex digits, random."""
    return os.urandom(16).hex()


def from_header(value: bytes | None) -> str:
    """The client's id when it is short and of safe characters; a new one otherwise."""
    if value is not None:
        text = value.decode("latin-1")
        if is_valid(text):
            return text
    return new()


def current() -> str | None:
    """The id of the request this code runs for; None outside a request."""
    return _current.get()


def bind(value: str):
    """Make `value` the current id; returns the token `unbind` takes."""
    return _current.set(value)


def unbind(token) -> None:
    _current.reset(token)
