"""`/v1/sessions`: a model's parameters, gradients and optimizer state kept on the server
between training steps. The work is in `service.sessions`; these routes read the protocol
headers, run it off the event loop, and document it."""

import dataclasses
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from service.examples import sessions as examples
from service.http.deps import SettingsDep, StoreDep
from service.http.negotiation import OCTET_STREAM, media_type, negotiate
from service.http.routing import ORJSONRoute
from service.http.session_routes import (
    BINARY_BODY,
    READ,
    WRITE,
    CallDep,
    SessionRoute,
    octet_body,
    replayable,
)
from service.http.session_routes import mutate as _mutate
from service.http.session_routes import ok as _ok
from service.http.sessions import (
    JSON,
    etag,
    public,
    quota,
    unavailable,
)
from service.problems import PROBLEM_TYPES, problem_responses
from service.programs import models
from service.schemas.session_calls import (
    SessionBackwardCreate,
    SessionBackwardPublic,
    SessionForwardCreate,
    SessionForwardPublic,
    SessionStepCreate,
    SessionStepPublic,
    SessionTrainCreate,
    SessionTrainPublic,
    SessionZeroGradCreate,
    SessionZeroGradPublic,
)
from service.schemas.sessions import (
    SessionCreate,
    SessionCreated,
    SessionPublic,
    SessionStatePublic,
    StateDictLoaded,
)
from service.sessions import actions, model_calls, state
from service.sessions.build import record_from
from service.settings import Settings
from service.store import (
    QuotaExceeded,
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
    store: SessionStore, record: SessionRecord, token: str, settings: Settings
) -> Response:
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

    def work() -> Response:
        record, token = state.record_from_safetensors(data, settings)
        return _created(store, record, token, settings)

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

    def work() -> Response:
        record, token = record_from(body, raw, settings)
        return _created(store, record, token, settings)

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
        **problem_responses(400, 409, 413, 415, 422, 500, 503),
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
    meta = await run_in_threadpool(call.read_meta)
    content = public(meta, settings.session_ttl_seconds)
    spec = meta.program.get("model")
    if include == "program" and spec is not None:
        described = await run_in_threadpool(models.describe, models.parse_spec(spec), "train")
        content["program"]["model_program"] = {
            k: described[k] for k in ("inputs", "outputs", "nodes", "layers", "counters")
        }
    return Response(jsonio.dumps(content), headers={"ETag": etag(meta.version)}, media_type=JSON)


@router.delete("/{session_id}", summary="Delete a session", status_code=204,
               responses=problem_responses(401, 404, 412, 500, 503))  # fmt: skip
async def delete_session(call: CallDep) -> Response:
    """Removes the session, its tensors and its recorded answers."""
    await run_in_threadpool(call.delete)
    return Response(status_code=204)


@router.post("/{session_id}/fork", summary="Copy a session", status_code=201,
             response_model=SessionCreated, responses=READ | problem_responses(409))  # fmt: skip
async def fork_session(call: CallDep, store: StoreDep, settings: SettingsDep) -> Response:
    """A new session with this one's parameters, gradients, buffers, optimizer state, program
    and step count, and its own token. The original is unchanged."""

    def fork(record: SessionRecord) -> Response:
        token = new_token()
        copied = dataclasses.replace(record, id=new_session_id(), token_hash=hash_(token))
        return _created(store, copied, token, settings)

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


# -- training ---------------------------------------------------------------------------------


@router.post("/{session_id}/forward", summary="Run the model on a batch (no_grad)",
             response_model=SessionForwardPublic,
             responses=_ok(examples.FORWARDED) | WRITE, openapi_extra=BINARY_BODY)  # fmt: skip
async def session_forward(
    body: Annotated[SessionForwardCreate, Body(openapi_examples=examples.FORWARD)],
    call: CallDep,
    settings: SettingsDep,
) -> Response:
    """Runs the program on the batch without recording gradients, as inference under
    `torch.no_grad()`, and answers the outputs. Changes nothing, except with `"mode":
    "train"` on a model session: then, as `model.train()`, the batch norms use the batch's
    statistics and their updated running statistics are committed (a new version)."""
    if body.mode == "train":
        return await replayable(call, "forward", body, settings)

    def work(record: SessionRecord) -> Response:
        content = actions.forward(record, body, settings)
        body_bytes = jsonio.dumps({**content, "version": record.version})
        return Response(body_bytes, headers={"ETag": etag(record.version)}, media_type=JSON)

    return await run_in_threadpool(call.read, work)


@router.post("/{session_id}/backward", summary="Forward and loss.backward(): accumulate grads",
             response_model=SessionBackwardPublic,
             responses=_ok(examples.BACKWARDED) | WRITE, openapi_extra=BINARY_BODY)  # fmt: skip
async def session_backward(
    body: Annotated[SessionBackwardCreate, Body(openapi_examples=examples.BACKWARD)],
    call: CallDep,
    settings: SettingsDep,
) -> Response:
    """Runs the program on the batch and `loss.backward()`: the gradients add up in the
    stored `.grad`, so several calls and then one `step` accumulate gradients. Answers the
    loss, the outputs asked for, the gradient norms and (`include: ["grads"]`) the gradients.
    """
    return await replayable(call, "backward", body, settings)


@router.post("/{session_id}/step", summary="optimizer.step()", response_model=SessionStepPublic,
             responses=_ok(examples.STEPPED) | WRITE)  # fmt: skip
async def session_step(
    call: CallDep,
    settings: SettingsDep,
    body: Annotated[SessionStepCreate | None, Body(openapi_examples=examples.STEP)] = None,
) -> Response:
    """Updates every parameter that has a gradient with the optimizer's rule (torch's, exactly)
    and keeps the optimizer state. `dry_run: true` answers Δθ and changes nothing."""
    request = body or SessionStepCreate()
    return await replayable(call, "step", request, settings)


@router.post("/{session_id}/zero_grad", summary="optimizer.zero_grad()",
             response_model=SessionZeroGradPublic, responses=WRITE)  # fmt: skip
async def session_zero_grad(
    call: CallDep, settings: SettingsDep, body: SessionZeroGradCreate | None = None
) -> Response:
    """Drops every accumulated gradient (or, with `set_to_none: false`, zeroes it)."""
    request = body or SessionZeroGradCreate()
    return await replayable(call, "zero_grad", request, settings)


@router.post("/{session_id}/train", summary="zero_grad, forward, backward, step",
             response_model=SessionTrainPublic,
             responses=_ok(examples.TRAINED) | WRITE, openapi_extra=BINARY_BODY)  # fmt: skip
async def session_train(
    body: Annotated[SessionTrainCreate, Body(openapi_examples=examples.TRAIN)],
    call: CallDep,
    settings: SettingsDep,
) -> Response:
    """The usual iteration in one call, once on `inputs` or once per entry of `batches`, all
    committed together as one new version. Answers the losses (each before its step)."""
    return await replayable(call, "train", body, settings)


# -- state_dict --------------------------------------------------------------------------------


@router.get(
    "/{session_id}/state_dict",
    summary="model.state_dict() as a safetensors file",
    responses={
        200: {
            "description": "Parameters and buffers under their names (for a model session, "
            "torch's state_dict keys): `safetensors.torch.load` gives a dict that "
            "`model.load_state_dict` takes.",
            "content": {OCTET: {"schema": {"type": "string", "format": "binary"}}},
        },
        **problem_responses(401, 404, 500, 503),
    },
)
async def get_state_dict(call: CallDep) -> Response:
    """The session's parameters and buffers (no gradients or optimizer state: `GET
    .../state` has everything) in the format torch and Hugging Face save weights in."""

    def export(record: SessionRecord) -> Response:
        headers = {
            "ETag": etag(record.version),
            "Content-Disposition": f'attachment; filename="state_dict-{record.id}.safetensors"',
        }
        return Response(model_calls.state_dict(record), headers=headers, media_type=OCTET)

    return await run_in_threadpool(call.read, export)


@router.put(
    "/{session_id}/state_dict",
    summary="model.load_state_dict(file): load weights from a safetensors file",
    response_model=StateDictLoaded,
    responses=WRITE,
    openapi_extra=octet_body(
        "A state_dict saved with `safetensors.torch.save_file(model.state_dict(), path)` (or "
        "`GET .../state_dict`).",
        required=True,
    ),
)
async def put_state_dict(
    call: CallDep,
    request: Request,
    settings: SettingsDep,
    strict: Annotated[
        bool,
        Query(
            description="As torch: false tolerates missing and unexpected keys (never "
            "mis-shaped ones)."
        ),  # fmt: skip
    ] = True,
) -> Response:
    """Copies each tensor of the file into the session's parameter or buffer of the same
    name (cast to its dtype), as `model.load_state_dict(state_dict, strict)`: gradients and
    optimizer state are kept. A file with missing, unexpected (when strict) or mis-shaped
    tensors is refused as a whole, listing them with torch's message. The body may be as
    large as AUTOGRAD_MAX_SESSION_BYTES."""
    if media_type(request.headers.get("content-type")) != OCTET:
        raise PROBLEM_TYPES["unsupported-media-type"].error(
            "PUT .../state_dict takes the safetensors file itself: "
            "`Content-Type: application/octet-stream`."
        )
    data = call.body
    return await _mutate(
        call, lambda record: model_calls.load_state_dict(record, data, strict, settings)
    )
