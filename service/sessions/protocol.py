"""The request protocol every session route shares: the path parameters and headers
(If-Match, Idempotency-Key), the bearer-token `Call` dependency, the documented answers, and
running a mutation off the event loop as one compare-and-set commit."""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Header, Path, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from service.deps import StoreDep
from service.problems import problem_responses
from service.sessions import journal
from service.sessions.http import JSON, Call, Outcome
from service.sessions.http import bearer as parse_bearer
from service.settings import Settings
from service.store import SessionRecord

_bearer_scheme = HTTPBearer(
    auto_error=False,
    description="The token answered by `POST /v1/sessions` (and `fork`) for that session.",
)

SessionId = Annotated[str, Path(max_length=64, description="The session's id.")]
ParameterName = Annotated[
    str, Path(max_length=128, description="The parameter's name.", examples=["W1"])
]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description='Apply only if the session\'s ETag is still this one (`"7"`); else 412.',
    ),
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="A retry with the same key and the same request answers the first "
        "answer again instead of applying twice (header `Idempotent-Replayed: true`); the "
        "same key with another request is 422. Keys are kept AUTOGRAD_IDEMPOTENCY_TTL_SECONDS.",
    ),
]

READ = problem_responses(401, 404, 422, 500, 503)


def ok(example: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    return {200: {"description": "Successful Response",
                  "content": {JSON: {"examples": {"example": example}}}}}  # fmt: skip


WRITE = problem_responses(400, 401, 404, 409, 412, 413, 415, 422, 500, 503)


async def call_for(
    request: Request,
    session_id: SessionId,
    store: StoreDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer_scheme)],
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Call:
    """The protocol side of a session request; 401 at once without a bearer token."""
    token = parse_bearer(request.headers.get("authorization"))
    del credentials  # declared for the OpenAPI security scheme; parsed above
    return Call(
        store,
        session_id,
        token,
        method=request.method,
        path=request.url.path,
        body=await request.body(),
        if_match=if_match,
        key=idempotency_key,
    )


CallDep = Annotated[Call, Depends(call_for)]


def mutate(call: Call, compute: Callable[[SessionRecord], Outcome]) -> Any:
    """Run a mutating call whose change is stored as the arrays it changes."""
    return run_in_threadpool(call.mutate, compute, None)


def replayable(call: Call, action: str, body: Any, settings: Settings) -> Any:
    """Run journal.REPLAYABLE[action] on the session — the very function its replay runs —
    and let the store keep the request (the body) as the change instead of the arrays."""
    _, run = journal.REPLAYABLE[action]
    replay = journal.encode(action, call.body)
    return run_in_threadpool(call.mutate, lambda record: run(record, body, settings), replay)
