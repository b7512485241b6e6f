"""The body limit as a bare ASGI middleware: what it reads, what it refuses, what it lets by."""

import asyncio
import contextlib
import json

from starlette.responses import PlainTextResponse

from service.http.body_limit import BodyLimitMiddleware
from service.problems import ProblemError

LIMIT = 10


def scope(headers: dict[str, str] | None = None) -> dict:
    raw = [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    return {"type": "http", "method": "POST", "path": "/x", "headers": raw}


async def read_all(receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def reader_app(scope, receive, send):
    body = await read_all(receive)
    await PlainTextResponse(f"read {len(body)}")(scope, receive, send)


async def swallowing_app(scope, receive, send):
    with contextlib.suppress(ProblemError):  # answering something else must not hide the 413
        await read_all(receive)
    await PlainTextResponse("parsed nothing", status_code=400)(scope, receive, send)


async def ignoring_app(scope, receive, send):
    await PlainTextResponse("never read the body")(scope, receive, send)


def run(app, chunks: list[bytes], headers: dict[str, str] | None = None):
    consumed: list[bytes] = []
    sent: list[dict] = []

    async def receive():
        chunk = chunks[len(consumed)]
        consumed.append(chunk)
        return {"type": "http.request", "body": chunk, "more_body": len(consumed) < len(chunks)}

    async def send(message):
        sent.append(message)

    asyncio.run(BodyLimitMiddleware(app, LIMIT)(scope(headers), receive, send))
    start = sent[0]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], dict(start["headers"]), body, consumed


def problem_of(body: bytes) -> dict:
    return json.loads(body)


def test_streamed_bytes_over_the_limit_stop_reading_at_the_offending_chunk():
    status, headers, body, consumed = run(reader_app, [b"12345", b"67890", b"X", b"never"])
    assert status == 413
    assert headers[b"content-type"] == b"application/problem+json"
    assert consumed == [b"12345", b"67890", b"X"]
    doc = problem_of(body)
    assert (doc["type"], doc["value"], doc["maximum"]) == ("/problems/body-too-large", 11, LIMIT)
    assert doc["detail"] == "The request body has at least 11 bytes; the limit is 10."


def test_declared_length_over_the_limit_reads_nothing():
    status, _, body, consumed = run(reader_app, [b"0" * 11], {"content-length": "11"})
    assert status == 413
    assert consumed == []
    assert problem_of(body)["detail"] == "The request body declares 11 bytes; the limit is 10."


def test_a_lying_content_length_is_caught_by_counting():
    status, _, _, consumed = run(reader_app, [b"0" * 6, b"0" * 6], {"content-length": "5"})
    assert status == 413
    assert len(consumed) == 2


def test_exactly_the_limit_passes():
    status, _, body, _ = run(reader_app, [b"12345", b"67890"], {"content-length": "10"})
    assert (status, body) == (200, b"read 10")


def test_an_app_that_swallows_the_refusal_still_answers_413():
    status, _, body, _ = run(swallowing_app, [b"0" * 20])
    assert status == 413
    assert problem_of(body)["status"] == 413


def test_a_route_that_never_reads_the_body_is_not_refused():
    status, _, body, consumed = run(ignoring_app, [b"0" * 100], {"content-length": "100"})
    assert (status, body, consumed) == (200, b"never read the body", [])


def test_non_http_scopes_pass_through():
    seen = []

    async def app(scope, receive, send):
        seen.append(scope["type"])

    asyncio.run(BodyLimitMiddleware(app, 0)({"type": "lifespan"}, None, None))
    assert seen == ["lifespan"]
