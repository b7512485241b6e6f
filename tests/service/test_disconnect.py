"""A client that hangs up before its whole body arrived: driven through the app's ASGI
interface, since an HTTP client cannot send half a body and still read the answer."""

import asyncio

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/v1/evaluate", b"application/json"),  # BodyFastRoute
        ("/v1/sessions/abc/train", b"application/octet-stream"),  # a session call's file
        ("/v1/sessions", b"application/json"),  # ORJSONRoute, FastAPI's path
    ],
)
def test_a_client_that_hangs_up_mid_body_is_a_400_not_a_500(tmp_path, path, content_type):
    app = create_app(Settings(data_dir=tmp_path))
    sent: list[dict] = []
    messages = [{"type": "http.request", "body": b'{"expr": ', "more_body": True},
                {"type": "http.disconnect"}]  # fmt: skip

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    headers = [(b"content-type", content_type), (b"content-length", b"1000"),
               (b"authorization", b"Bearer x")]  # fmt: skip
    request = {"type": "http", "method": "POST", "path": path, "raw_path": path.encode(),
               "headers": headers, "query_string": b"", "root_path": "", "http_version": "1.1",
               "scheme": "http", "server": ("test", 80), "client": ("127.0.0.1", 1)}  # fmt: skip
    with TestClient(app):  # runs the lifespan: the store is open
        asyncio.run(app(request, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 400
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    if path != "/v1/sessions":  # there FastAPI reads the body: its own 400
        assert b"/problems/incomplete-body" in body
