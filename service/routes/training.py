"""A session's training calls (`forward`, `backward`, `step`, `zero_grad`, `train`): the hot
path of the service. Each reads the protocol headers, runs `service.sessions` off the event
loop as one compare-and-set commit whose journal entry is the request itself, and documents
it."""

from typing import Annotated

from fastapi import APIRouter, Body, Response
from starlette.concurrency import run_in_threadpool

from service.examples import sessions as examples
from service.http.deps import SettingsDep
from service.http.session_routes import BINARY_BODY, WRITE, CallDep, SessionRoute, replayable
from service.http.session_routes import ok as _ok
from service.http.sessions import JSON, etag
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
from service.sessions import actions
from service.store import SessionRecord
from service.wire import jsonio

router = APIRouter(prefix="/v1/sessions", tags=["sessions"], route_class=SessionRoute)


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
