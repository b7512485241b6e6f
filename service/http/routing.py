"""The route class every router uses: JSON bodies parsed by orjson, and only JSON bodies.

Starlette parses with the stdlib, which is several times slower on big number lists and
accepts bare `NaN`/`Infinity`, which are not JSON; the wire format spells them as strings.
"""

import inspect
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect

from service.http.negotiation import is_json, media_type
from service.http.problems import HTTPProblem
from service.problems import PROBLEM_TYPES, json_pointer
from service.wire import jsonio, safetensors
from service.wire.safetensors import MEDIA


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
    null array element is left to validation, which names it (a tensor's is invalid-tensor).
    Raised while FastAPI reads the body, so as an HTTPException, which it passes through."""
    path = _first_null_member(document)
    if path is not None:
        pointer = json_pointer(path)
        detail = "null is not a value here: leave the member out for its default"
        problem = PROBLEM_TYPES["validation-error"].at(
            pointer, detail, summary=f"{pointer}: {detail}"
        )
        raise HTTPProblem.of(problem)


async def _require_json(request: Request, or_safetensors: bool = False) -> None:
    content_type = request.headers.get("content-type")
    if content_type is None and not await request.body():
        return  # no body at all: validation reports what is missing
    if content_type is None or not is_json(content_type):
        also = f", or {MEDIA} (a safetensors file)" if or_safetensors else ""
        raise PROBLEM_TYPES["unsupported-media-type"].error(
            f"Content-Type {content_type or '(none)'} is not JSON; send application/json{also}.",
            content_type=content_type,
        )


@contextmanager
def _incomplete_body_refused() -> Iterator[None]:
    """A client that hangs up mid-body gets (if anyone is listening) a 400, not a 500."""
    try:
        yield
    except ClientDisconnect:
        raise PROBLEM_TYPES["incomplete-body"].error(
            "The connection closed before the whole request body arrived."
        ) from None


class ORJSONRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        takes_json = self.body_field is not None

        async def route_handler(request: Request) -> Response:
            request = ORJSONRequest(request.scope, request.receive)
            with _incomplete_body_refused():
                if takes_json:
                    await _require_json(request)
                return await handler(request)

        return route_handler


class FastPathDeclined(Exception):
    """A resolver's way to hand the request to FastAPI's own path (and its errors)."""


Resolver = Callable[[Request], Awaitable[Any]]


class BodyFastRoute(ORJSONRoute):
    """An `ORJSONRoute` for an `async` endpoint taking its JSON body model, perhaps the
    `Request`, and dependencies this class has a `resolvers` entry for: a body that parses
    and validates goes to the endpoint directly, without FastAPI's per-request dependency
    resolution (a sizeable share of a small request's time). Anything else (invalid JSON, a
    body that does not validate, an empty body, a resolver that declines) takes FastAPI's
    own path, so errors and their problem documents are exactly FastAPI's. The OpenAPI
    description is FastAPI's, from the same signature.

    With `accepts_binary`, the body may also be a safetensors file (`service.wire.safetensors`): the
    request it stands for takes the same path as a JSON one."""

    resolvers: ClassVar[Mapping[Callable[..., Any], Resolver]] = {}
    accepts_binary: ClassVar[bool] = False

    def _fast_dependencies(self) -> dict[str, Resolver] | None:
        """Parameter name -> resolver for every dependency, when all have one."""
        resolved = {}
        for dependency in self.dependant.dependencies:
            resolver = self.resolvers.get(dependency.call)  # type: ignore[arg-type]
            if resolver is None or dependency.name is None:
                return None
            resolved[dependency.name] = resolver
        return resolved

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        dependant, field, endpoint = self.dependant, self.body_field, self.endpoint
        dependencies = self._fast_dependencies()
        request_name = dependant.request_param_name
        fast = (
            field is not None
            and dependencies is not None
            and inspect.iscoroutinefunction(endpoint)
            and set(inspect.signature(endpoint).parameters)
            == {field.name, *dependencies, *([request_name] if request_name else [])}
        )
        if not fast and not self.accepts_binary:
            return super().get_route_handler()
        fastapi_handler = APIRoute.get_route_handler(self)
        accepts_binary = self.accepts_binary

        async def route_handler(request: Request) -> Response:
            with _incomplete_body_refused():
                return await fast_handler(ORJSONRequest(request.scope, request.receive))

        async def fast_handler(request: ORJSONRequest) -> Response:
            if accepts_binary and media_type(request.headers.get("content-type")) == MEDIA:
                request = await _as_json_request(request)
            else:
                await _require_json(request, or_safetensors=accepts_binary)
            arguments = await fast_arguments(request) if fast else None
            if arguments is not None:
                return await endpoint(**arguments)
            return await fastapi_handler(request)  # FastAPI's own path, and its errors

        async def fast_arguments(request: Request) -> dict[str, Any] | None:
            """The endpoint's arguments; None for FastAPI's path to answer the request."""
            assert field is not None and dependencies is not None
            if not await request.body():
                return None
            try:
                data = await request.json()
                value, errors = field.validate(data, {}, loc=("body",))
                if errors:
                    return None
                arguments = {field.name: value}
                for name, resolve in dependencies.items():
                    arguments[name] = await resolve(request)
            except (jsonio.JSONDecodeError, FastPathDeclined):
                return None
            if request_name:
                arguments[request_name] = request
            return arguments

        return route_handler


BODY_MEDIA = "service.body_media"  # the scope key saying a JSON request came as safetensors


async def _as_json_request(request: Request) -> Request:
    """The request a safetensors body stands for, as FastAPI's path reads a JSON one: the
    document parsed already, the content type JSON; `scope[BODY_MEDIA]` keeps what came."""
    body = await request.body()
    document = safetensors.document(body)
    _refuse_nested_null(document)  # as for a JSON body
    headers = [(k, v) for k, v in request.scope["headers"] if k != b"content-type"]
    scope = {**request.scope, "headers": [*headers, (b"content-type", b"application/json")]}
    scope[BODY_MEDIA] = safetensors.MEDIA
    converted = ORJSONRequest(scope, request.receive)
    converted._body = body
    converted._json = document
    return converted
