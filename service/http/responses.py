"""Response classes that render through `service.wire.jsonio` (orjson, numpy-aware, NaN-safe).

FastAPI's own JSON path runs `jsonable_encoder` over every element and cannot take numpy
arrays; its `ORJSONResponse` is deprecated and writes NaN as `null`. Routes that return
tensors build one of these directly, so FastAPI hands the bytes out without re-encoding.
"""

from typing import Any

from starlette.responses import JSONResponse

from service.wire import jsonio


class ORJSONResponse(JSONResponse):
    """`application/json` rendered by orjson; numpy arrays and non-finite floats allowed."""

    def render(self, content: Any) -> bytes:
        try:
            return jsonio.dumps(content)
        except TypeError:  # orjson holds integers to 64 bits: a refused shape's count is not
            return jsonio.dumps_exact(content)


class ProblemResponse(ORJSONResponse):
    """An RFC 9457 problem document."""

    media_type = "application/problem+json"
