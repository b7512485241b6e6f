"""`/v1/sessions/{id}/parameters/{name}`: one parameter of a session — read it (with its
gradient and optimizer state), add or replace it, freeze or overwrite it, remove it."""

import re
from typing import Annotated

from fastapi import APIRouter, Body, Query, Response
from starlette.concurrency import run_in_threadpool

from service.examples import sessions as examples
from service.http.deps import SettingsDep
from service.http.routing import ORJSONRoute
from service.http.session_routes import READ, WRITE, CallDep, ParameterName
from service.http.session_routes import mutate as _mutate
from service.http.session_routes import ok as _ok
from service.http.sessions import JSON, etag
from service.problems import PROBLEM_TYPES
from service.schemas.parameters import ParameterChanged, ParameterPatch, ParameterPublic
from service.schemas.sessions import NAME_PATTERN, ParameterWire
from service.sessions import actions
from service.store import SessionRecord
from service.wire import jsonio

router = APIRouter(prefix="/v1/sessions", tags=["sessions"], route_class=ORJSONRoute)

# -- parameters -------------------------------------------------------------------------------

_INCLUDE = {"grad", "optimizer_state"}


@router.get("/{session_id}/parameters/{name}", summary="Read a parameter",
            response_model=ParameterPublic,
            responses=_ok(examples.PARAMETER) | READ)  # fmt: skip
async def get_parameter(
    call: CallDep,
    name: ParameterName,
    include: Annotated[
        str | None,
        Query(
            description="Comma-separated: `grad` (`.grad`), `optimizer_state` (momentum, "
            "`exp_avg`... buffers).",
            examples=["grad,optimizer_state"],
        ),
    ] = None,
    binary: Annotated[bool, Query(description="Tensors in base64.")] = False,
) -> Response:
    """The parameter's value, and on request its gradient and optimizer state."""
    wanted = {part.strip() for part in (include or "").split(",") if part.strip()}
    unknown = wanted - _INCLUDE
    if unknown:
        raise PROBLEM_TYPES["validation-error"].error(
            f"include: unknown {sorted(unknown)}; allowed: grad, optimizer_state",
            errors=[{"parameter": "include", "detail": f"allowed: {sorted(_INCLUDE)}"}],
        )

    def work(record: SessionRecord) -> Response:
        content = actions.parameter_content(record, name, wanted | {"value"}, binary)
        content["version"] = record.version
        return Response(
            jsonio.dumps(content), headers={"ETag": etag(record.version)}, media_type=JSON
        )

    return await run_in_threadpool(call.read, work)


ADDED = {
    201: {
        "description": "The session had no parameter of that name: it was added.",
        "model": ParameterChanged,
        "headers": {"Location": {"description": "The new parameter's URL.",
                                 "schema": {"type": "string"}}},
    }
}  # fmt: skip


@router.put("/{session_id}/parameters/{name}", summary="Add or replace a parameter",
            response_model=ParameterChanged, responses={**ADDED, **WRITE})  # fmt: skip
async def put_parameter(
    call: CallDep,
    name: ParameterName,
    settings: SettingsDep,
    body: Annotated[ParameterWire, Body(openapi_examples=examples.PUT_PARAMETER)],
) -> Response:
    """Adds the parameter (201), or replaces it by a new one of any shape (200) whose
    gradient and optimizer state start afresh, as `model.fc = nn.Linear(512, 10)` does. The
    body is a tensor or an init spec, as in `POST /v1/sessions`."""
    _check_name(name)
    return await _mutate(
        call, lambda record: actions.put_parameter(record, name, body, body, settings)
    )


@router.patch("/{session_id}/parameters/{name}", summary="Freeze, unfreeze or overwrite",
              response_model=ParameterChanged, responses=WRITE)  # fmt: skip
async def patch_parameter(
    call: CallDep,
    name: ParameterName,
    settings: SettingsDep,
    body: Annotated[ParameterPatch, Body(openapi_examples=examples.PATCH_PARAMETER)],
) -> Response:
    """`{"requires_grad": false}` freezes it (backward leaves it alone, step skips it);
    `{"value": ...}` writes new values of the same shape, keeping gradient and state."""
    return await _mutate(call, lambda record: actions.patch_parameter(record, name, body, settings))


@router.delete("/{session_id}/parameters/{name}", summary="Remove a parameter",
               status_code=204, responses=WRITE)  # fmt: skip
async def delete_parameter(call: CallDep, name: ParameterName) -> Response:
    """Removes the parameter with its gradient and optimizer state."""
    return await _mutate(call, lambda record: actions.delete_parameter(record, name))


def _check_name(name: str) -> None:
    if not re.fullmatch(NAME_PATTERN, name):
        raise PROBLEM_TYPES["invalid-session"].error(
            f"{name!r} is not a valid parameter name: letters, digits and _, not starting "
            "with a digit (programs use it by name), or a state_dict key of such parts "
            "joined by dots (`fc.weight`, `layer1.0.conv1.weight`)",
            errors=[{"parameter": "name", "detail": "an identifier or a dotted state_dict key"}],
        )
