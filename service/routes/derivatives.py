"""`POST /v1/jacobian`, `/v1/hessian`, `/v1/gradcheck`: whole derivative matrices of one
output of a program, and backward's gradients checked against finite differences."""

from typing import Annotated, Any

from fastapi import APIRouter, Body

from engine.deadline import deadline
from service.examples import programs as examples
from service.http.deps import SettingsDep
from service.http.responses import ORJSONResponse
from service.http.routing import ORJSONRoute
from service.problems import PROGRAM_422, PROGRAM_501, PROGRAM_503, problem_responses
from service.programs import derivatives
from service.schemas.derivatives import (
    GradcheckCreate,
    GradcheckPublic,
    HessianCreate,
    HessianPublic,
    JacobianCreate,
    JacobianPublic,
)

router = APIRouter(prefix="/v1", tags=["derivatives"], route_class=ORJSONRoute)
JSON = "application/json"


def _responses(path: str, answer: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    ok = {"description": "Successful Response", "content": {JSON: {"examples": {"seed": answer}}}}
    return {200: ok} | problem_responses(
        400,
        413,
        415,
        422,
        500,
        501,
        503,
        descriptions={422: PROGRAM_422, 501: PROGRAM_501, 503: PROGRAM_503},
        examples=examples.derivative_problems(path),
    )


@router.post(
    "/jacobian",
    summary="Jacobian of an output with respect to inputs",
    response_model=JacobianPublic,
    responses=_responses("/v1/jacobian", examples.JACOBIAN_ANSWER),
)
def jacobian(
    body: Annotated[JacobianCreate, Body(openapi_examples=examples.JACOBIAN)],
    settings: SettingsDep,
) -> ORJSONResponse:
    """Every entry of d output / d input for each input of `wrt`, as
    `torch.autograd.functional.jacobian`: one block per input, of shape output shape + input
    shape, and the full matrix [output elements, input elements summed] with the blocks side
    by side. Inputs not in `wrt` are constants."""
    with deadline(settings.max_request_seconds):  # (a plain def: this is a worker thread)
        return ORJSONResponse(derivatives.jacobian(body, settings))


@router.post(
    "/hessian",
    summary="Hessian of a scalar output with respect to inputs",
    response_model=HessianPublic,
    responses=_responses("/v1/hessian", examples.HESSIAN_ANSWER),
)
def hessian(
    body: Annotated[HessianCreate, Body(openapi_examples=examples.HESSIAN)],
    settings: SettingsDep,
) -> ORJSONResponse:
    """Second derivatives of a one-element output, as `torch.autograd.functional.hessian`:
    block `hessian[x][y]` of shape x.shape + y.shape for each pair of `wrt` inputs, and the
    full symmetric matrix over all of them flattened in order."""
    with deadline(settings.max_request_seconds):  # (a plain def: this is a worker thread)
        return ORJSONResponse(derivatives.hessian(body, settings))


@router.post(
    "/gradcheck",
    summary="Check gradients against finite differences",
    response_model=GradcheckPublic,
    responses=_responses("/v1/gradcheck", examples.GRADCHECK_ANSWER),
)
def gradcheck(
    body: Annotated[GradcheckCreate, Body(openapi_examples=examples.GRADCHECK)],
    settings: SettingsDep,
) -> ORJSONResponse:
    """The Jacobian from backward beside the one from central finite differences (in
    float64, step `eps`), per input: both matrices, the largest difference, and whether
    every entry is within `atol + rtol * |numerical|`, as `torch.autograd.gradcheck`
    decides. The answer is 200 whether or not the check passes: read `passed`."""
    with deadline(settings.max_request_seconds):  # (a plain def: this is a worker thread)
        return ORJSONResponse(derivatives.gradcheck(body, settings))
