"""The outermost layer of every HTTP request: its id, its access log line and its metrics.

It wraps Starlette's error middleware too (`ServiceApp.build_middleware_stack`), so a 500 is
counted, logged and given the request id like any other answer.
"""

import logging
import time

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import metrics
from service.http import request_id
from service.http.logs import ACCESS_LOGGER

access_log = logging.getLogger(ACCESS_LOGGER)

_HEADER = request_id.HEADER.lower().encode()


def route_template(scope: Scope) -> str | None:
    """The path pattern of the route that served the request (`/v1/sessions/{session_id}`);
    None when no route matched."""
    route = scope.get("route")
    return getattr(route, "path_format", None) or getattr(route, "path", None)


class RequestContextMiddleware:
    """Takes `X-Request-ID` (when safe) or makes one, makes it current for the request and
    echoes it in the answer; after the answer, counts it and writes one access log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        given = next((v for k, v in scope["headers"] if k == _HEADER), None)
        rid = request_id.from_header(given)
        echo = (_HEADER, rid.encode())
        status = 500  # if the app fails before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), echo]
            await send(message)

        token = request_id.bind(rid)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.unbind(token)
            seconds = time.perf_counter() - start
            method, route = scope["method"], route_template(scope)
            metrics.observe_request(method, route, status, seconds)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "%s %s %d %.1f ms",
                    method,
                    route or scope["path"][:200],
                    status,
                    seconds * 1000,
                    extra={
                        "method": method,
                        "route": route,
                        "status": status,
                        "duration_ms": round(seconds * 1000, 3),
                        "request_id": rid,
                    },
                )


class ServiceApp(FastAPI):
    """FastAPI with `RequestContextMiddleware` outside even Starlette's error middleware,
    which `add_middleware` cannot reach."""

    def build_middleware_stack(self) -> ASGIApp:
        return RequestContextMiddleware(super().build_middleware_stack())
