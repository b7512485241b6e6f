"""Request body size limit as a pure ASGI middleware, answering 413 problem documents.

Both the declared `Content-Length` and the bytes actually streamed are checked, so a chunked
body (no length declared) cannot slip past. The check happens when the app reads the body:
routes without a body are never refused, and a body over the limit is never buffered.
Starlette's own `RequestBodyLimitMiddleware` answers text/plain, hence this one.

Safetensors files (`application/octet-stream`) sent to the routes that take them — a session
state to restore, a state_dict to load (a ResNet-18's is 47 MB) — have their own, larger
limit: a file cannot usefully be larger than the session it fills.
"""

import re

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.http.negotiation import OCTET_STREAM, media_type
from service.http.problems import HTTPProblem, problem_response
from service.problems import PROBLEM_TYPES, ProblemError


def _too_large(size: int, limit: int, declared: bool, name: str) -> ProblemError:
    what = "declares" if declared else "has at least"
    # raised from `receive`, inside FastAPI's body reading: an HTTPException passes through
    return HTTPProblem.of(
        PROBLEM_TYPES["body-too-large"].error(
            f"The request body {what} {size} bytes; the limit is {limit}.",
            limit=name,
            value=size,
            maximum=limit,
        )
    )


def _content_length(scope: Scope) -> int | None:
    value = Headers(scope=scope).get("content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


# POST /v1/sessions (restore a state file), PUT /v1/sessions/{id}/state_dict.
UPLOAD_ROUTES = re.compile(r"POST /v1/sessions|PUT /v1/sessions/[^/]+/state_dict")


def _is_upload(scope: Scope) -> bool:
    if media_type(Headers(scope=scope).get("content-type")) != OCTET_STREAM:
        return False
    return UPLOAD_ROUTES.fullmatch(f"{scope.get('method')} {scope.get('path')}") is not None


class BodyLimitMiddleware:
    def __init__(
        self, app: ASGIApp, max_body_bytes: int, max_upload_bytes: int | None = None
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_body_bytes if max_upload_bytes is None else max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, name = self.max_body_bytes, "max_body_bytes"
        if self.max_upload_bytes > limit and _is_upload(scope):
            limit, name = self.max_upload_bytes, "max_session_bytes"
        declared = _content_length(scope)
        received = 0
        refusal: ProblemError | None = None
        started = replaced = False

        async def limited_receive() -> Message:
            nonlocal received, refusal
            if declared is not None and declared > limit:
                refusal = _too_large(declared, limit, declared=True, name=name)
                raise refusal
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refusal = _too_large(received, limit, declared=False, name=name)
                    raise refusal
            return message

        async def refuse() -> None:
            assert refusal is not None
            await problem_response(refusal, scope["path"])(scope, receive, send)

        async def guarded_send(message: Message) -> None:
            nonlocal started, replaced
            if replaced:
                return
            if message["type"] == "http.response.start":
                started = True
                # The app caught the refusal and answered something else: answer 413 anyway.
                if refusal is not None and message["status"] != 413:
                    replaced = True
                    await refuse()
                    return
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except ProblemError as exc:
            if exc is not refusal or started:
                raise
            await refuse()
