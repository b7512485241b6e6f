"""The route class every router uses: JSON bodies parsed by orjson, and only JSON bodies.

Starlette parses with the stdlib, which is several times slower on big number lists and
accepts bare `NaN`/`Infinity`, which are not JSON; the wire format spells them as strings.
"""

from collections.abc import Callable, Coroutine
from email.message import Message
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from service import jsonio
from service.problems import PROBLEM_TYPES


class ORJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = jsonio.loads(await self.body())
        return self._json


def _is_json(content_type: str) -> bool:
    message = Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


async def _require_json(request: Request) -> None:
    content_type = request.headers.get("content-type")
    if content_type is None and not await request.body():
        return  # no body at all: validation reports what is missing
    if content_type is None or not _is_json(content_type):
        raise PROBLEM_TYPES["unsupported-media-type"].error(
            f"Content-Type {content_type or '(none)'} is not JSON; send application/json.",
            content_type=content_type,
        )


class ORJSONRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        takes_json = self.body_field is not None

        async def route_handler(request: Request) -> Response:
            request = ORJSONRequest(request.scope, request.receive)
            if takes_json:
                await _require_json(request)
            return await handler(request)

        return route_handler
