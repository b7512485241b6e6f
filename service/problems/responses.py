"""How routes document their problem answers in OpenAPI (`responses=`): each status a problem
document, with the route's own description and named examples when it gives them."""

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

PROBLEM_MEDIA_TYPE = "application/problem+json"

_STATUS_DESCRIPTIONS = {
    400: "Malformed JSON (problem type /problems/invalid-json).",
    404: "No such resource.",
    413: "Request body over the size limit (/problems/body-too-large).",
    415: "Body is not JSON (/problems/unsupported-media-type).",
    406: "The Accept header names no media type this operation answers (/problems/not-acceptable).",
    422: "Invalid request: a field (/problems/validation-error), a tensor "
    "(/problems/invalid-tensor) or a limit (/problems/limit-exceeded).",
    500: "Unexpected server error.",
    503: "Not ready (/problems/not-ready), the computation ran past the time limit "
    "(/problems/deadline-exceeded, with Retry-After), or the session store's storage failed "
    "(/problems/storage-failed).",
    401: "No bearer token (/problems/unauthorized).",
    409: "The session kept changing (/problems/session-conflict).",
    412: "If-Match does not match the session's ETag (/problems/precondition-failed).",
    429: "Too many requests from this client (/problems/rate-limited), or its share of the "
    "store is used up (/problems/quota-exceeded); `Retry-After` says when to retry.",
    507: "The whole session store is full (/problems/store-full; `Retry-After` says when room "
    "is expected), or its storage is out of space (/problems/storage-full). Nothing was "
    "applied.",
}
# Every /v1 operation can answer these when API keys or a rate limit are configured; the
# OpenAPI document lists them whatever the settings (http/openapi.py adds them).
CLIENT_401 = (
    "With API keys configured: no key (/problems/api-key-required) or an unknown one "
    "(/problems/api-key-invalid)."
)
RATE_429 = "Too many requests from this client (/problems/rate-limited); see `Retry-After`."


_RETRY_AFTER = {
    "description": "Seconds to wait before retrying (RFC 9110 §10.2.3).",
    "schema": {"type": "integer", "minimum": 1},
}
_RATE_FIELDS = {
    "RateLimit-Policy": {
        "description": "The client's quota, draft-ietf-httpapi-ratelimit-headers-09: "
        '`"client";q=<requests>;w=<seconds>` (with a rate limit only).',
        "schema": {"type": "string"},
    },
    "RateLimit": {
        "description": 'What is left of it: `"client";r=<requests left>;t=<seconds until '
        "full>` (with a rate limit only; successful answers carry it too).",
        "schema": {"type": "string"},
    },
}
_STATUS_HEADERS = {
    429: {"Retry-After": _RETRY_AFTER, **_RATE_FIELDS},
    507: {"Retry-After": _RETRY_AFTER},
}


PROGRAM_422 = (
    "The program or its request is invalid, found before any computation: its text or nodes "
    "(/problems/program-syntax, /problems/forbidden-construct, /problems/unknown-name, "
    "/problems/invalid-graph, /problems/invalid-arguments), its shapes and dtypes "
    "(/problems/shape-mismatch, /problems/dtype-mismatch), a limit "
    "(/problems/limit-exceeded), a tensor (/problems/invalid-tensor), a field "
    "(/problems/validation-error); or the engine refused a value while running "
    "(/problems/evaluation-error)."
)
PROGRAM_501 = (
    "The program calls a function the service cannot check (/problems/unsupported-function)."
)
PROGRAM_503 = (
    "The server ran out of memory (/problems/insufficient-memory), the computation ran past "
    "the time limit (/problems/deadline-exceeded), or the server is not ready; each with "
    "Retry-After."
)


def problem_responses(
    *statuses: int,
    descriptions: Mapping[int, str] | None = None,
    examples: Mapping[int, Mapping[str, Any]] | None = None,
) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status documented as a problem document, with the
    route's own description and named OpenAPI examples when given."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        media: dict[str, Any] = {"schema": {"$ref": "#/components/schemas/Problem"}}
        if examples and status in examples:
            media["examples"] = dict(examples[status])
        description = (descriptions or {}).get(status) or _STATUS_DESCRIPTIONS.get(
            status, HTTPStatus(status).phrase
        )
        responses[status] = {"description": description, "content": {PROBLEM_MEDIA_TYPE: media}}
        if status in _STATUS_HEADERS:
            responses[status]["headers"] = _STATUS_HEADERS[status]
    return responses


PROBLEM_RESPONSES = problem_responses(400, 413, 415, 422, 500)
"""The errors any route taking a JSON body can answer with."""
