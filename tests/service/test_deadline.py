"""AUTOGRAD_MAX_REQUEST_SECONDS: a computation past the limit is stopped between two steps and
answered 503 /problems/deadline-exceeded with Retry-After, leaving a session exactly as it
was (#12). Each request here would run for many seconds without the limit."""

from __future__ import annotations

import time

import numpy as np
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.sessions.helpers import Session, batch_inputs, batches, mlp_parameters, session_body
from tests.sessions.test_journal import MOMENTUM, everything, worker

LIMIT = 0.3
SLOW = "y = x @ x / 100\n" + "y = y @ x / 100\n" * 3000  # ~3,000 matmuls of 200x200: ~8 s
X = {"data": np.full((200, 200), 0.01).tolist()}
XG = {**X, "requires_grad": True}


def _client(tmp_path, **settings) -> TestClient:
    settings.setdefault("max_request_seconds", LIMIT)
    # the cost checks would refuse these first
    settings.update(max_flops=10**14, max_total_elements=10**12, max_request_bytes=1 << 40)
    return TestClient(create_app(Settings(data_dir=tmp_path / "data", **settings)))


def _stopped(response, started: float) -> dict:
    took = time.perf_counter() - started
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "1"
    problem = response.json()
    assert problem["type"].endswith("/problems/deadline-exceeded")
    assert problem["limit"] == "max_request_seconds" and problem["maximum"] == LIMIT
    assert f"{LIMIT:g} s" in problem["detail"]
    assert took < LIMIT + 2.0, f"answered after {took:.1f} s"
    return problem


def test_a_long_program_is_stopped_at_the_limit(tmp_path):
    with _client(tmp_path) as client:
        started = time.perf_counter()
        answer = client.post("/v1/evaluate", json={"expr": SLOW, "inputs": {"x": X}})
        _stopped(answer, started)
        quick = client.post("/v1/evaluate", json={"expr": "y = x * 2", "inputs": {"x": [1.0]}})
        assert quick.status_code == 200 and quick.json()["outputs"]["y"]["data"] == [2.0]


def test_derivatives_are_stopped_at_the_limit(tmp_path):
    program = "y = x @ x / 100\n" + "y = y @ x / 100\n" * 50 + "z = y.sum(0)"
    body = {"expr": program, "inputs": {"x": XG}, "output": "z", "wrt": ["x"]}
    with _client(tmp_path) as client:
        started = time.perf_counter()
        _stopped(
            client.post("/v1/jacobian", json=body), started
        )  # 200 backward passes, ~0.1 s each


def test_a_train_call_is_bounded_in_total_and_changes_nothing(tmp_path):
    with _client(tmp_path) as client:
        session = Session.create(client, session_body(mlp_parameters(), MOMENTUM))
        session.train(*batches(1)[0])
        before, version = everything(session), session.info()["version"]
        body = {"batches": [{"inputs": batch_inputs(x, y)} for x, y in batches(1000, size=256)]}
        started = time.perf_counter()
        _stopped(session.request("POST", "/train", body), started)
        assert session.info()["version"] == version
        after = everything(session)
        assert after.keys() == before.keys()
        for name in before:
            np.testing.assert_array_equal(after[name], before[name], err_msg=name)
        session.train(*batches(1)[0])  # and the session goes on from where it was
        assert session.info()["version"] == version + 1


def test_replaying_a_journal_does_not_count_against_the_limit(tmp_path):
    """Worker b's limit is far below the replay of a's steps: the replay runs apart, under
    its own limit, and b answers."""
    data_dir = tmp_path / "data"
    with worker(data_dir) as a, worker(data_dir, max_request_seconds=0.0005) as b:
        session = Session.create(a, session_body(mlp_parameters(), MOMENTUM))
        for x, y in batches(30):
            session.train(x, y)
        on_b = Session(b, session.id, session.token)
        assert on_b.info()["step_count"] == 30  # replays 30 journal entries
