"""A session's weights as a safetensors file torch loads (`GET .../state_dict`), and loading
one into it (`PUT .../state_dict`, as `model.load_state_dict`)."""

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from service.http.deps import SettingsDep
from service.http.negotiation import OCTET_STREAM as OCTET
from service.http.negotiation import media_type
from service.http.session_routes import WRITE, CallDep, SessionRoute, octet_body
from service.http.session_routes import mutate as _mutate
from service.http.sessions import etag
from service.problems import PROBLEM_TYPES, problem_responses
from service.schemas.sessions import StateDictLoaded
from service.sessions import model_calls
from service.store import SessionRecord

router = APIRouter(prefix="/v1/sessions", tags=["sessions"], route_class=SessionRoute)


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
