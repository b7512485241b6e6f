"""The route class every router uses: JSON bodies parsed by orjson, and only JSON bodies.

Starlette parses with the stdlib, which is several times slower on big number lists and
accepts bare `NaN`/`Infinity`, which are not JSON; the wire format spells them as strings.
"""

import inspect
from collections.abc import Callable, Coroutine
from email.message import Message
from functools import lru_cache
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from service import jsonio
from service.problems import PROBLEM_TYPES, json_pointer


class ORJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            self._json = jsonio.loads(body)
            if b"null" in body:  # a byte search first: the walk is for the rare body with one
                _refuse_nested_null(self._json)
        return self._json


def _first_null_member(document: Any) -> list[str | int] | None:
    """The path to the first object member whose value is null, depth first; None if none."""
    stack: list[tuple[Any, list[str | int]]] = [(document, [])]
    while stack:
        value, path = stack.pop()
        if isinstance(value, dict):
            items = list(value.items())
        elif isinstance(value, list):
            items = list(enumerate(value))
        else:
            continue
        for key, item in reversed(items):
            if item is None and isinstance(value, dict):
                return [*path, key]
            if isinstance(item, dict | list):
                stack.append((item, [*path, key]))
    return None


def _refuse_nested_null(document: Any) -> None:
    """No request schema admits a null member (optional members are left out), so one is
    refused where it is, before validation would read it as "absent" or trip over it. A
    null array element is left to validation, which names it (a tensor's is invalid-tensor)."""
    path = _first_null_member(document)
    if path is not None:
        pointer = json_pointer(path)
        detail = "null is not a value here: leave the member out for its default"
        raise PROBLEM_TYPES["validation-error"].error(
            f"{pointer}: {detail}", errors=[{"pointer": pointer, "detail": detail}]
        )


@lru_cache(maxsize=64)
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


class BodyFastRoute(ORJSONRoute):
    """An `ORJSONRoute` for an `async` endpoint taking only its JSON body model and the
    `Request`: a body that parses and validates goes to the endpoint directly, without
    FastAPI's per-request dependency resolution (a sizeable share of a small request's
    time). Anything else (invalid JSON, a body that does not validate, an empty body) takes
    FastAPI's own path, so errors and their problem documents are exactly FastAPI's. The
    OpenAPI description is FastAPI's, from the same signature."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        dependant, field, endpoint = self.dependant, self.body_field, self.endpoint
        fast = (
            field is not None
            and inspect.iscoroutinefunction(endpoint)
            and not dependant.dependencies  # the router's own included
            and dependant.request_param_name is not None
            and set(inspect.signature(endpoint).parameters)
            == {field.name, dependant.request_param_name}
        )
        if not fast:
            return super().get_route_handler()
        assert field is not None and dependant.request_param_name is not None
        fastapi_handler = APIRoute.get_route_handler(self)
        body_name, request_name = field.name, dependant.request_param_name

        async def route_handler(request: Request) -> Response:
            request = ORJSONRequest(request.scope, request.receive)
            await _require_json(request)
            if await request.body():
                try:
                    data = await request.json()
                except jsonio.JSONDecodeError:
                    pass  # FastAPI's path reports it
                else:
                    value, errors = field.validate(data, {}, loc=("body",))
                    if not errors:
                        return await endpoint(**{body_name: value, request_name: request})
            return await fastapi_handler(request)  # FastAPI's own path, and its errors

        return route_handler
