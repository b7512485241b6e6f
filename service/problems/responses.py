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
    503: "Not ready (/problems/not-ready), or the session store's storage failed "
    "(/problems/storage-failed).",
    507: "The session store is out of space (/problems/storage-full); nothing was applied.",
    401: "No bearer token (/problems/unauthorized).",
    409: "The store is full (/problems/store-full) or the session kept changing "
    "(/problems/session-conflict).",
    412: "If-Match does not match the session's ETag (/problems/precondition-failed).",
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
PROGRAM_503 = "The server ran out of memory (/problems/insufficient-memory), or is not ready."


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
    return responses


PROBLEM_RESPONSES = problem_responses(400, 413, 415, 422, 500)
"""The errors any route taking a JSON body can answer with."""
