"""`/v1/sessions`: a model's parameters, gradients and optimizer state kept on the server
between training steps. The work is in `service.sessions`; these routes read the protocol
headers, run it off the event loop, and document it."""

import dataclasses
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from engine.deadline import deadline
from service.examples import sessions as examples
from service.http.clients import owner_of
from service.http.deps import SettingsDep, StoreDep
from service.http.negotiation import OCTET_STREAM, media_type, negotiate
from service.http.routing import ORJSONRoute
from service.http.session_routes import (
    READ,
    CallDep,
    SessionRoute,
    octet_body,
)
from service.http.session_routes import ok as _ok
from service.http.sessions import (
    JSON,
    Call,
    etag,
    public,
    quota,
    unavailable,
)
from service.problems import PROBLEM_TYPES, problem_responses
from service.programs import models
from service.schemas.sessions import (
    SessionCreate,
    SessionCreated,
    SessionPublic,
    SessionStatePublic,
)
from service.sessions import state
from service.sessions.build import record_from
from service.settings import Settings
from service.store import (
    QuotaExceeded,
    SessionMeta,
    SessionRecord,
    SessionStore,
    StoreUnavailable,
    new_session_id,
    new_token,
)
from service.store import hash_token as hash_
from service.wire import jsonio

OCTET = OCTET_STREAM


class SessionCreateRoute(ORJSONRoute):
    """POST /v1/sessions takes JSON, or a safetensors file to restore (octet-stream)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        json_handler = super().get_route_handler()

        async def handler(request: Request) -> Response:
            if media_type(request.headers.get("content-type")) == OCTET:
                return await _restore(request)
            return await json_handler(request)

        return handler


router = APIRouter(prefix="/v1/sessions", tags=["sessions"], route_class=SessionRoute)


# -- the collection --------------------------------------------------------------------------


def _created(
    store: SessionStore, record: SessionRecord, token: str, settings: Settings, owner: str
) -> Response:
    """Store the new session as `owner`'s (the calling client's; its caps count it)."""
    record.owner = owner
    try:
        store.create(record)
        meta = store.get_meta(record.id)
    except QuotaExceeded as exc:
        raise quota(exc) from None
    except StoreUnavailable as exc:
        raise unavailable(exc) from exc
    assert meta is not None
    content = {**public(meta, settings.session_ttl_seconds), "token": token}
    headers = {
        "Location": f"/v1/sessions/{record.id}",
        "ETag": etag(meta.version),
        "Cache-Control": "no-store",  # the answer holds the token
    }
    return Response(jsonio.dumps(content), 201, headers=headers, media_type=JSON)


async def _restore(request: Request) -> Response:
    app = request.app
    settings, store = getattr(app.state, "settings", None), getattr(app.state, "store", None)
    if settings is None or store is None:
        raise PROBLEM_TYPES["not-ready"].error("The service has not finished starting.")
    data = await request.body()

    owner = owner_of(request)

    def work() -> Response:
        with deadline(settings.max_request_seconds):
            record, token = state.record_from_safetensors(data, settings)
        return _created(store, record, token, settings, owner)

    return await run_in_threadpool(work)


async def create_session(
    body: Annotated[SessionCreate, Body(openapi_examples=examples.CREATE)],
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
) -> Response:
    """Builds the parameters (uploaded, or with `torch.nn.init`'s formulas from an init
    spec), checks the program (it must use the parameters; `loss` must be one of its
    outputs) and the optimizer (as torch validates it), and stores the session at version 0.

    The answer carries the session's **token**: every later call must send
    `Authorization: Bearer <token>`. It is shown only once; the server keeps its hash.

    Posting the JSON of `GET .../state`, or its safetensors file as
    `application/octet-stream`, restores a session with its gradients, optimizer state and
    step count."""
    raw = await request.json()  # parsed once already; errors then point into it
    owner = owner_of(request)

    def work() -> Response:
        with deadline(settings.max_request_seconds):  # building the parameters
            record, token = record_from(body, raw, settings)
        return _created(store, record, token, settings, owner)

    return await run_in_threadpool(work)


router.add_api_route(
    "",
    create_session,
    methods=["POST"],
    route_class_override=SessionCreateRoute,
    summary="Create a session (or restore one from its state file)",
    status_code=201,
    response_model=SessionCreated,
    responses={
        201: {
            "description": "The session, its token (shown only here), `Location` and `ETag`.",
            "content": {JSON: {"examples": {"example": examples.CREATED}}},
        },
        **problem_responses(400, 413, 415, 422, 429, 500, 503, 507),
    },
    openapi_extra=octet_body(
        "A state file from `GET /v1/sessions/{id}/state` (safetensors): the session is "
        "restored from it."
    ),
)


# -- one session ------------------------------------------------------------------------------


@router.get("/{session_id}", summary="Describe a session", response_model=SessionPublic,
            responses=_ok(examples.SESSION) | READ)  # fmt: skip
async def get_session(
    call: CallDep,
    settings: SettingsDep,
    include: Annotated[
        Literal["program"] | None,
        Query(description="`program`: a model session's program too, as nodes (train mode)."),
    ] = None,
) -> Response:
    """Its parameters (shape, dtype, requires_grad, whether a gradient is accumulated, the
    optimizer's buffers), buffers, optimizer, program, step count, version and timestamps.
    The `ETag` header is the version, for `If-Match`."""
    # Off the event loop: reading and describing grow with the session's number of arrays.
    meta, content = await run_in_threadpool(_describe, call, settings)
    spec = meta.program.get("model")
    if include == "program" and spec is not None:
        described = await run_in_threadpool(models.describe, models.parse_spec(spec), "train")
        content["program"]["model_program"] = {
            k: described[k] for k in ("inputs", "outputs", "nodes", "layers", "counters")
        }
    return Response(jsonio.dumps(content), headers={"ETag": etag(meta.version)}, media_type=JSON)


def _describe(call: Call, settings: Settings) -> tuple[SessionMeta, dict[str, Any]]:
    meta = call.read_meta()
    return meta, public(meta, settings.session_ttl_seconds)


@router.delete("/{session_id}", summary="Delete a session", status_code=204,
               responses=problem_responses(401, 404, 412, 500, 503, 507))  # fmt: skip
async def delete_session(call: CallDep) -> Response:
    """Removes the session, its tensors and its recorded answers."""
    await run_in_threadpool(call.delete)
    return Response(status_code=204)


@router.post("/{session_id}/fork", summary="Copy a session", status_code=201,
             response_model=SessionCreated,
             responses=READ | problem_responses(429, 507))  # fmt: skip
async def fork_session(
    call: CallDep, store: StoreDep, settings: SettingsDep, request: Request
) -> Response:
    """A new session with this one's parameters, gradients, buffers, optimizer state, program
    and step count, and its own token. The original is unchanged. The copy counts against
    the caller's quota."""
    owner = owner_of(request)

    def fork(record: SessionRecord) -> Response:
        token = new_token()
        copied = dataclasses.replace(record, id=new_session_id(), token_hash=hash_(token))
        return _created(store, copied, token, settings, owner)

    return await run_in_threadpool(call.read, fork)


@router.get(
    "/{session_id}/state",
    summary="Export a session's state (safetensors or JSON)",
    response_model=SessionStatePublic,
    responses={
        200: {
            "description": "safetensors by default; JSON (a `SessionCreate` that restores "
            "the session) for `Accept: application/json` or `?format=json`.",
            "content": {OCTET: {"schema": {"type": "string", "format": "binary"}}},
        },
        **problem_responses(401, 404, 406, 500, 503),
    },
)
async def get_session_state(
    call: CallDep,
    request: Request,
    format_: Annotated[str | None, Query(alias="format", pattern="^(json|safetensors)$")] = None,
    binary: Annotated[bool, Query(description="JSON only: tensors in base64.")] = False,
) -> Response:
    """Parameters, buffers, gradients and optimizer state (tensors named `param/<name>`,
    `grad/<name>`, `buffer/<name>`, `state/<name>/<slot>`), with the program, optimizer and
    step count in the file's metadata. `POST /v1/sessions` with this file restores it."""
    media = {"json": JSON, "safetensors": OCTET}.get(format_ or "") or negotiate(
        request.headers.get("accept"), [OCTET, JSON]
    )

    def export(record: SessionRecord) -> Response:
        headers = {"ETag": etag(record.version)}
        if media == JSON:
            content = jsonio.dumps(state.to_json(record, binary))
            return Response(content, headers=headers, media_type=JSON)
        data = state.to_safetensors(record)
        headers["Content-Disposition"] = f'attachment; filename="session-{record.id}.safetensors"'
        return Response(data, headers=headers, media_type=OCTET)

    return await run_in_threadpool(call.read, export)
