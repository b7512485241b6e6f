"""The problem a request is refused with, as an exception the domain raises without knowing
HTTP: plain Python, so the session domain and the wire formats can raise it while the HTTP
layer (`service.http.problems`) alone turns it into an RFC 9457 answer."""

from collections.abc import Iterable, Mapping
from typing import Any

STANDARD_MEMBERS = frozenset(
    {"type", "title", "status", "detail", "instance", "errors", "request_id"}
)


class ProblemError(Exception):
    """Raise from anywhere in a request to answer with a problem document.

    `status_code`, `detail` and `headers` are spelled as Starlette's HTTPException spells them,
    so the handlers read either the same way.
    """

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        type: str = "about:blank",
        errors: list[dict[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        clash = STANDARD_MEMBERS & extensions.keys()
        if clash:
            raise ValueError(f"extension members shadow standard ones: {sorted(clash)}")
        super().__init__(detail)
        self.status_code = status
        self.detail = detail
        self.headers = dict(headers) if headers is not None else None
        self.title = title
        self.type = type
        self.errors = errors
        self.extensions = extensions

    def __str__(self) -> str:
        return f"{self.status_code}: {self.detail}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status_code={self.status_code!r}, detail={self.detail!r})"

    def document(self, instance: str | None = None) -> dict[str, Any]:
        """The problem document, without `request_id` (the HTTP layer adds the request's)."""
        doc: dict[str, Any] = {
            "type": self.type,
            "title": self.title,
            "status": self.status_code,
            "detail": self.detail,
        }
        if instance is not None:
            doc["instance"] = instance
        if self.errors:
            doc["errors"] = self.errors
        doc.update(self.extensions)
        return doc


def json_pointer(parts: Iterable[str | int]) -> str:
    """RFC 6901 pointer to the value reached by following `parts` from the root."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)
