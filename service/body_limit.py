"""Request body size limit as a pure ASGI middleware, answering 413 problem documents.

Both the declared `Content-Length` and the bytes actually streamed are checked, so a chunked
body (no length declared) cannot slip past. The check happens when the app reads the body:
routes without a body are never refused, and a body over the limit is never buffered.
Starlette's own `RequestBodyLimitMiddleware` answers text/plain, hence this one.
"""

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.problems import PROBLEM_TYPES, ProblemError


def _too_large(size: int, limit: int, declared: bool) -> ProblemError:
    what = "declares" if declared else "has at least"
    return PROBLEM_TYPES["body-too-large"].error(
        f"The request body {what} {size} bytes; the limit is {limit}.",
        limit="max_body_bytes",
        value=size,
        maximum=limit,
    )


def _content_length(scope: Scope) -> int | None:
    value = Headers(scope=scope).get("content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        declared = _content_length(scope)
        received = 0
        refusal: ProblemError | None = None
        started = replaced = False

        async def limited_receive() -> Message:
            nonlocal received, refusal
            if declared is not None and declared > limit:
                refusal = _too_large(declared, limit, declared=True)
                raise refusal
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refusal = _too_large(received, limit, declared=False)
                    raise refusal
            return message

        async def refuse() -> None:
            assert refusal is not None
            await refusal.response(scope["path"])(scope, receive, send)

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
