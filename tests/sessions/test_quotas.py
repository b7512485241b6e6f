"""Clients and quotas over real servers (issue #12 item 5): the attack of the issue (one
client's many anonymous creates made everyone else's fail) no longer works, per address with
the service open and per API key, on SQLite shared by two workers and on Redis shared by two
replicas; the whole store being full is 507 with Retry-After, never a bare 409; a client
sending too fast gets 429 with Retry-After and the RateLimit fields, and is served again
once it waited that long.

Addresses: uvicorn takes the client's address from X-Forwarded-For when the peer is a
trusted proxy (loopback by default), as nginx sends it, so one test client plays several."""

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest

from service.clients import keys as api_keys
from service.wire import jsonio
from tests.service.conftest import free_port, run_server
from tests.sessions.conftest import serve_command
from tests.sessions.helpers import post_json, problem, session_body, tensor

CONFIG = {"type": "sgd", "lr": 0.1}
SMALL = session_body({"W1": np.ones((2, 2), np.float32)}, CONFIG, expr="loss = (x @ W1).sum()")
BIG = session_body({"W1": np.ones((1000,), np.float32)}, CONFIG, expr="loss = (x * W1).sum()")
TTL = 600.0


def create(base: str, body=SMALL, **headers: str) -> httpx.Response:
    """A create on a connection of its own: with two workers, either may answer it."""
    with httpx.Client(base_url=base, timeout=30) as http:
        return post_json(http, "/v1/sessions", body, **headers)


def at(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def retry_after(response: httpx.Response) -> int:
    seconds = int(response.headers["retry-after"])
    assert 1 <= seconds <= TTL
    return seconds


def delete(base: str, created: httpx.Response, **headers: str) -> None:
    body = created.json()
    with httpx.Client(base_url=base, timeout=30) as http:
        auth = {"Authorization": f"Bearer {body['token']}", **headers}
        assert http.delete(f"/v1/sessions/{body['id']}", headers=auth).status_code == 204


@contextmanager
def serving(tmp_path: Path, workers: int = 2, **env: str) -> Iterator[str]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    port = free_port()
    settings = {"AUTOGRAD_LOG_LEVEL": "warning", "AUTOGRAD_SESSION_TTL_SECONDS": str(TTL), **env}
    with run_server(serve_command(port, workers), port, tmp_path / "data", **settings) as base:
        yield base


@pytest.fixture
def open_sqlite(tmp_path) -> Iterator[str]:
    """Open (no keys), SQLite shared by two workers; 3 sessions per address, 6 in all."""
    with serving(tmp_path, AUTOGRAD_MAX_CLIENT_SESSIONS="3", AUTOGRAD_MAX_SESSIONS="6",
                 AUTOGRAD_MAX_CLIENT_BYTES="10000") as base:  # fmt: skip
        yield base


def test_one_address_flooding_creates_leaves_the_others_able_to_create(open_sqlite):
    flood = [create(open_sqlite, **at("203.0.113.7")) for _ in range(12)]
    assert [r.status_code for r in flood].count(201) == 3
    for refused in (r for r in flood if r.status_code != 201):
        doc = problem(refused, 429, "quota-exceeded")
        assert (doc["limit"], doc["maximum"], doc["client"]) == (
            "max_client_sessions", 3, "addr:203.0.113.7",
        )  # fmt: skip
        retry_after(refused)
    assert create(open_sqlite, **at("198.51.100.2")).status_code == 201  # the others create
    delete(open_sqlite, flood[0])  # and the flooder, once it deleted one
    assert create(open_sqlite, **at("203.0.113.7")).status_code == 201

    # The whole store (6) full: 507 with when to retry, never a bare 409.
    assert create(open_sqlite, **at("192.0.2.1")).status_code == 201
    assert create(open_sqlite, **at("192.0.2.2")).status_code == 201
    full = create(open_sqlite, **at("192.0.2.3"))
    doc = problem(full, 507, "store-full")
    assert (doc["limit"], doc["maximum"], doc["value"]) == ("max_sessions", 6, 7)
    assert TTL - 60 <= retry_after(full) <= TTL  # the earliest session was made just now


def test_an_addresss_stored_bytes_are_capped_on_create_and_on_growth(open_sqlite):
    first = create(open_sqlite, BIG, **at("203.0.113.8"))
    assert first.status_code == 201 and first.json()["stored_bytes"] > 4000
    assert create(open_sqlite, BIG, **at("203.0.113.8")).status_code == 201
    refused = create(open_sqlite, BIG, **at("203.0.113.8"))
    doc = problem(refused, 429, "quota-exceeded")
    assert (doc["limit"], doc["maximum"]) == ("max_client_bytes", 10000)
    retry_after(refused)
    assert create(open_sqlite, BIG, **at("203.0.113.9")).status_code == 201
    # Growing a session past its owner's bytes is refused the same way, nothing applied.
    sid, token = first.json()["id"], first.json()["token"]
    with httpx.Client(base_url=open_sqlite, timeout=30) as http:
        grown = http.put(f"/v1/sessions/{sid}/parameters/W2", content=_json(tensor(np.ones(
            1000, np.float32))), headers={"Authorization": f"Bearer {token}",
            "content-type": "application/json", **at("203.0.113.8")})  # fmt: skip
        problem(grown, 429, "quota-exceeded")
        info = http.get(f"/v1/sessions/{sid}", headers={"Authorization": f"Bearer {token}"})
        assert info.json()["version"] == 0 and list(info.json()["parameters"]) == ["W1"]


def _json(value) -> bytes:
    return jsonio.dumps(value)


@pytest.fixture
def keyed_sqlite(tmp_path) -> Iterator[tuple[str, str, str]]:
    path = tmp_path / "keys.json"
    alice, bob = api_keys.add(path, "alice", max_sessions=2), api_keys.add(path, "bob")
    with serving(tmp_path, AUTOGRAD_API_KEYS_FILE=str(path),
                 AUTOGRAD_MAX_CLIENT_SESSIONS="4") as base:  # fmt: skip
        yield base, alice, bob


def test_each_api_key_has_its_own_caps_across_two_workers(keyed_sqlite):
    base, alice, bob = keyed_sqlite
    problem(create(base), 401, "api-key-required")
    assert [create(base, **{"X-API-Key": alice}).status_code for _ in range(2)] == [201, 201]
    refused = create(base, **{"Authorization": f"Bearer {alice}"})
    doc = problem(refused, 429, "quota-exceeded")
    assert (doc["maximum"], doc["client"]) == (2, "key:alice")  # the key's own cap
    retry_after(refused)
    made = [create(base, **{"X-API-Key": bob}).status_code for _ in range(5)]
    assert made == [201] * 4 + [429]  # bob's: the setting's


@pytest.fixture
def two_replicas(tmp_path, redis_server) -> Iterator[list[str]]:
    import redis

    with redis.Redis.from_url(redis_server.url) as client:
        client.flushdb()
    env = {"AUTOGRAD_STORE": redis_server.url, "AUTOGRAD_MAX_CLIENT_SESSIONS": "2",
           "AUTOGRAD_MAX_SESSIONS": "4"}  # fmt: skip
    with ExitStack() as stack:
        yield [stack.enter_context(serving(tmp_path / f"r{i}", 1, **env)) for i in range(2)]


def test_the_caps_hold_across_two_replicas_on_one_redis(two_replicas):
    one, two = two_replicas
    assert create(one, **at("203.0.113.7")).status_code == 201
    assert create(two, **at("203.0.113.7")).status_code == 201
    for base in (one, two):
        problem(create(base, **at("203.0.113.7")), 429, "quota-exceeded")
    assert create(two, **at("198.51.100.2")).status_code == 201
    assert create(one, **at("198.51.100.3")).status_code == 201
    full = create(two, **at("198.51.100.4"))
    assert problem(full, 507, "store-full")["limit"] == "max_sessions"
    retry_after(full)


@pytest.fixture
def rate_limited(tmp_path) -> Iterator[str]:
    with serving(tmp_path, 1, AUTOGRAD_RATE_LIMIT="2", AUTOGRAD_RATE_BURST="3") as base:
        yield base


def test_a_client_over_its_rate_gets_429_and_is_served_again_after_retry_after(rate_limited):
    with httpx.Client(base_url=rate_limited, timeout=30) as http:
        answers = [http.get("/v1/ops") for _ in range(6)]
        statuses = [r.status_code for r in answers]
        assert statuses[:3] == [200, 200, 200] and 429 in statuses
        assert answers[0].headers["ratelimit-policy"] == '"client";q=3;w=2'
        assert answers[0].headers["ratelimit"].startswith('"client";r=2;t=')
        refused = next(r for r in answers if r.status_code == 429)
        problem(refused, 429, "rate-limited")
        assert refused.headers["ratelimit"].startswith('"client";r=0;')
        assert http.get("/v1/ops", headers=at("198.51.100.2")).status_code == 200  # another
        time.sleep(int(refused.headers["retry-after"]))
        assert http.get("/v1/ops").status_code == 200
        assert http.get("/livez").status_code == 200
