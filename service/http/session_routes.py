"""The request protocol every session route shares: the path parameters and headers
(If-Match, Idempotency-Key), the bearer-token `Call` dependency, the documented answers, and
running a mutation off the event loop as one compare-and-set commit."""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Header, Path, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from service.http.deps import StoreDep, get_settings, get_store
from service.http.routing import BODY_MEDIA, BodyFastRoute, FastPathDeclined
from service.http.sessions import JSON, Call
from service.http.sessions import bearer as parse_bearer
from service.problems import problem_responses
from service.sessions import journal
from service.sessions.outcome import Outcome
from service.settings import Settings
from service.store import SessionRecord
from service.wire.safetensors import MEDIA

_bearer_scheme = HTTPBearer(
    auto_error=False,
    description="The token answered by `POST /v1/sessions` (and `fork`) for that session.",
)

SESSION_ID_MAX_LENGTH, KEY_MAX_LENGTH = 64, 255
SessionId = Annotated[str, Path(max_length=SESSION_ID_MAX_LENGTH, description="The session's id.")]
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
        max_length=KEY_MAX_LENGTH,
        description="A retry with the same key and the same request answers the first "
        "answer again instead of applying twice (header `Idempotent-Replayed: true`); the "
        "same key with another request is 422. Keys are kept AUTOGRAD_IDEMPOTENCY_TTL_SECONDS.",
    ),
]

READ = problem_responses(401, 404, 422, 500, 503)


def ok(example: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    return {200: {"description": "Successful Response",
                  "content": {JSON: {"examples": {"example": example}}}}}  # fmt: skip


WRITE = problem_responses(400, 401, 404, 409, 412, 413, 415, 422, 500, 503, 507)


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
        path=request.scope["path"],  # request.url would build a URL object to read it
        body=await request.body(),
        safetensors=request.scope.get(BODY_MEDIA) == MEDIA,
        if_match=if_match,
        key=idempotency_key,
    )


CallDep = Annotated[Call, Depends(call_for)]


async def _resolve_call(request: Request) -> Call:
    """`call_for` without FastAPI's dependency solving; parameters FastAPI would refuse
    decline, so that its path answers them."""
    session_id = request.path_params["session_id"]
    key = request.headers.get("idempotency-key")
    if len(session_id) > SESSION_ID_MAX_LENGTH or (key and len(key) > KEY_MAX_LENGTH):
        raise FastPathDeclined
    store = await get_store(request)
    return await call_for(request, session_id, store, None, request.headers.get("if-match"), key)


class SessionRoute(BodyFastRoute):
    """Session calls with a body skip FastAPI's dependency solving (a third of a small
    training step's time in the framework). A route that documents an
    `application/octet-stream` body (`BINARY_BODY`) takes its request as safetensors too."""

    resolvers = {call_for: _resolve_call, get_settings: get_settings}

    @property
    def accepts_binary(self) -> bool:  # type: ignore[override]
        documented = (self.openapi_extra or {}).get("requestBody", {}).get("content", {})
        return self.body_field is not None and MEDIA in documented


def octet_body(description: str, required: bool = False) -> dict[str, Any]:
    """`openapi_extra` documenting an `application/octet-stream` (safetensors) request body."""
    content = {
        MEDIA: {"schema": {"type": "string", "format": "binary"}, "description": description}
    }
    return {
        "requestBody": {"required": True, "content": content} if required else {"content": content}
    }


BINARY_BODY = octet_body(
    "The same request as a safetensors file, its tensors as raw bytes: each tensor named by "
    "the JSON pointer of its place in the request (`/inputs/x`, `/batches/0/y`), the rest of "
    'the request as JSON text in the metadata under `"request"`. No base64, no JSON parse of '
    "the data."
)


def mutate(call: Call, compute: Callable[[SessionRecord], Outcome]) -> Any:
    """Run a mutating call whose change is stored as the arrays it changes."""
    return run_in_threadpool(call.mutate, compute, None)


def replayable(call: Call, action: str, body: Any, settings: Settings) -> Any:
    """Run journal.REPLAYABLE[action] on the session — the very function its replay runs —
    and let the store keep the request (the body) as the change instead of the arrays."""
    _, run = journal.REPLAYABLE[action]
    replay = journal.encode(action, call.body, call.safetensors)
    return run_in_threadpool(call.mutate, lambda record: run(record, body, settings), replay)
