"""ETags and If-Match, Idempotency-Key replays and their expiry, idle expiry and the caps."""

import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from service.wire import jsonio
from tests.service.conftest import free_port, run_server
from tests.sessions.conftest import serve_command
from tests.sessions.helpers import (
    Session,
    batch_inputs,
    batches,
    mlp_parameters,
    post_json,
    problem,
    session_body,
    tensor,
)

CONFIG = {"type": "sgd", "lr": 0.1, "momentum": 0.9}
((X, Y),) = batches(1, seed=61)
TRAIN = {"inputs": batch_inputs(X, Y)}


@pytest.fixture
def session(http):
    return Session.create(http, session_body(mlp_parameters(), CONFIG))


def test_the_etag_is_the_version_and_every_change_moves_it(session):
    created = session.http.get(session.path, headers=session.headers())
    assert created.headers["etag"] == '"0"'
    trained = session.request("POST", "/train", TRAIN)
    assert trained.headers["etag"] == '"1"' and trained.json()["version"] == 1
    frozen = session.request("PATCH", "/parameters/b1", {"requires_grad": False})
    assert frozen.headers["etag"] == '"2"'
    read = session.request("GET", "/parameters/b1")
    assert read.headers["etag"] == '"2"' and read.json()["version"] == 2
    forward = session.request("POST", "/forward", {"inputs": {"x": TRAIN["inputs"]["x"]},
                                                   "outputs": ["logits"]})  # fmt: skip
    assert forward.headers["etag"] == '"2"'  # reading changes nothing


def test_if_match_applies_only_to_the_version_it_names(session):
    session.train(X, Y)
    before = session.state()
    stale = problem(session.request("POST", "/train", TRAIN, **{"If-Match": '"0"'}), 412,
                    "precondition-failed")  # fmt: skip
    assert stale["etag"] == '"1"' and stale["version"] == 1
    assert session.state() == before
    for tag in ('"1"', '"7", "2"', "*"):  # the current one, one of a list, any
        assert session.request("POST", "/train", TRAIN, **{"If-Match": tag}).status_code == 200
    assert session.info()["version"] == 4
    problem(session.request("PUT", "/parameters/b2", tensor(mlp_parameters()["b2"]),
                            **{"If-Match": 'W/"4"'}), 412)  # weak tags never match  # fmt: skip
    problem(session.request("DELETE", "", None, **{"If-Match": '"3"'}), 412)
    assert session.info()["version"] == 4


def test_the_same_train_request_twice_with_one_key_steps_once(session):
    key = {"Idempotency-Key": "step-0001"}
    first = session.request("POST", "/train", TRAIN, **key)
    after_first = session.state()
    again = session.request("POST", "/train", TRAIN, **key)
    assert first.status_code == again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert again.content == first.content and again.headers["etag"] == first.headers["etag"]
    assert session.info()["step_count"] == 1 and session.state() == after_first
    # A retry is replayed even when the client's If-Match is now stale.
    late = session.request("POST", "/train", TRAIN, **key, **{"If-Match": '"0"'})
    assert late.status_code == 200 and late.content == first.content
    # The same key with another body or on another endpoint is refused.
    other = {"inputs": batch_inputs(X * 2, Y)}
    problem(session.request("POST", "/train", other, **key), 422, "idempotency-key-reused")
    problem(session.request("POST", "/backward", TRAIN, **key), 422, "idempotency-key-reused")
    assert session.info()["step_count"] == 1 and session.state() == after_first


def test_racing_retries_with_one_key_step_once(session):
    answers = []

    def send() -> None:
        with httpx.Client(base_url=session.http.base_url, timeout=60) as http:
            body = jsonio.dumps(TRAIN)
            headers = {**session.headers(), "Idempotency-Key": "race",
                       "content-type": "application/json"}  # fmt: skip
            answers.append(http.post(f"{session.path}/train", content=body, headers=headers))

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(a.status_code == 200 for a in answers)
    assert len({a.content for a in answers}) == 1
    assert session.info()["step_count"] == 1


def test_keys_belong_to_one_session(http, session):
    other = Session.create(http, session_body(mlp_parameters(), CONFIG))
    key = {"Idempotency-Key": "shared"}
    assert session.request("POST", "/train", TRAIN, **key).status_code == 200
    assert other.request("POST", "/train", TRAIN, **key).status_code == 200
    assert session.info()["step_count"] == other.info()["step_count"] == 1


def test_without_if_match_concurrent_calls_are_all_applied(session):
    def send() -> None:
        with httpx.Client(base_url=session.http.base_url, timeout=60) as http:
            for _ in range(3):
                r = http.post(
                    f"{session.path}/train",
                    content=jsonio.dumps(TRAIN),
                    headers={**session.headers(), "content-type": "application/json"},
                )
                assert r.status_code in (200, 409), r.text  # 409: kept losing, nothing applied

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    info = session.info()
    assert info["version"] == info["step_count"] <= 12


# -- expiry and caps, on servers configured for them ----------------------------------------


@pytest.fixture(scope="module")
def short_lived(tmp_path_factory) -> Iterator[httpx.Client]:
    port = free_port()
    data_dir = tmp_path_factory.mktemp("short") / "data"
    with run_server(serve_command(port), port, data_dir, AUTOGRAD_SESSION_TTL_SECONDS="2",
                    AUTOGRAD_IDEMPOTENCY_TTL_SECONDS="1", AUTOGRAD_LOG_LEVEL="warning",
                    ) as base, httpx.Client(base_url=base, timeout=30) as http:  # fmt: skip
        yield http


@pytest.fixture(scope="module")
def capped(tmp_path_factory) -> Iterator[httpx.Client]:
    port = free_port()
    data_dir = tmp_path_factory.mktemp("capped") / "data"
    with run_server(serve_command(port), port, data_dir, AUTOGRAD_MAX_SESSIONS="2",
                    AUTOGRAD_MAX_SESSION_BYTES="4000", AUTOGRAD_LOG_LEVEL="warning",
                    ) as base, httpx.Client(base_url=base, timeout=30) as http:  # fmt: skip
        yield http


def test_idempotency_keys_expire(short_lived):
    session = Session.create(short_lived, session_body(mlp_parameters(), CONFIG))
    key = {"Idempotency-Key": "k"}
    assert session.request("POST", "/train", TRAIN, **key).status_code == 200
    assert session.request("POST", "/train", TRAIN, **key).headers["idempotent-replayed"]
    time.sleep(1.2)
    again = session.request("POST", "/train", TRAIN, **key)
    assert again.status_code == 200 and "idempotent-replayed" not in again.headers
    assert session.info()["step_count"] == 2


def test_idle_sessions_expire_and_use_keeps_them(short_lived):
    idle = Session.create(short_lived, session_body(mlp_parameters(), CONFIG))
    used = Session.create(short_lived, session_body(mlp_parameters(), CONFIG))
    for _ in range(3):
        time.sleep(0.8)
        used.info()
    gone = problem(idle.request("GET"), 404, "session-not-found")
    assert "expired" in gone["detail"]
    assert used.info()["version"] == 0
    expires = used.info()["expires_at"]
    assert expires > used.info()["last_used_at"]


def test_the_session_count_cap(capped):
    small = {"W1": mlp_parameters()["W1"][:2, :2]}
    body = session_body(small, CONFIG, expr="loss = (x @ W1).sum()")
    first = Session.create(capped, body)
    second = Session.create(capped, body)
    full = post_json(capped, "/v1/sessions", body)
    doc = problem(full, 507, "store-full")  # 507 with when to retry, never a bare 409
    assert (doc["limit"], doc["maximum"], doc["value"]) == ("max_sessions", 2, 3)
    assert 1 <= int(full.headers["retry-after"]) <= 3600
    assert first.request("DELETE").status_code == 204
    third = Session.create(capped, body)
    for s in (second, third):
        assert s.request("DELETE").status_code == 204


def test_the_session_size_cap(capped):
    big = {"W1": mlp_parameters(n_in=200, hidden=8)["W1"]}  # 6400 bytes
    body = session_body(big, CONFIG, expr="loss = (x @ W1.T).sum()")
    doc = problem(post_json(capped, "/v1/sessions", body), 422, "limit-exceeded")
    assert doc["limit"] == "max_session_bytes" and doc["maximum"] == 4000
    small = session_body({"W1": big["W1"][:2]}, CONFIG, expr="loss = (x @ W1.T).sum()")
    session = Session.create(capped, small)
    before = session.state()
    problem(session.request("PUT", "/parameters/W2", tensor(big["W1"])), 422, "limit-exceeded")
    assert session.state() == before and session.info()["version"] == 0
    assert session.request("DELETE").status_code == 204
