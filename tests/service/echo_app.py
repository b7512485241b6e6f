"""A test-only route that decodes tensors and answers them encoded: the wire path end to end.

It is built the way the evaluate route should be: a pydantic envelope whose tensors pass
through unvalidated, `decode_tensors` with the configured limits, `encode_tensor` for the
answer and an `ORJSONResponse`, in a sync endpoint so numpy runs off the event loop.
"""

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel

from service.app import create_app
from service.http.deps import SettingsDep
from service.http.responses import ORJSONResponse
from service.http.routing import ORJSONRoute
from service.problems import PROBLEM_RESPONSES
from service.schemas.tensors import TensorWire
from service.settings import Settings
from service.wire import decode_tensors, encode_tensor


class EchoCreate(BaseModel):
    inputs: dict[str, TensorWire]
    binary: bool = False
    label: str = ""


router = APIRouter(route_class=ORJSONRoute)


@router.post("/echo", responses=PROBLEM_RESPONSES)
def echo(body: EchoCreate, settings: SettingsDep) -> ORJSONResponse:
    tensors = decode_tensors(
        body.inputs,
        pointer="/inputs",
        max_elements=settings.max_tensor_elements,
        max_total_elements=settings.max_total_elements,
        max_ndim=settings.max_ndim,
    )
    outputs = {
        name: {**encode_tensor(array, body.binary), "requires_grad": requires_grad}
        for name, (array, requires_grad) in tensors.items()
    }
    return ORJSONResponse({"label": body.label, "outputs": outputs})


def create_echo_app(settings: Settings | None = None) -> FastAPI:
    app = create_app(settings)
    app.include_router(router)
    return app
