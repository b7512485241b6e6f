"""8 clients × 25 `train` calls on one session, each with If-Match and a retry on 412: the
session ends at version 200 with the parameters of 200 sequential steps. Against SQLite under
2 uvicorn workers, and 2 service processes sharing one redis-server."""

import threading
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest

from service.wire import jsonio
from tests.service.conftest import free_port, run_server
from tests.sessions.conftest import serve_command
from tests.sessions.helpers import Session, batch_inputs, batches, mlp_parameters, session_body

CLIENTS, CALLS = 8, 25
CONFIG = {"type": "adam", "lr": 0.01, "amsgrad": True}


def _client(base: str, session: Session, inputs: dict, results: list, errors: list) -> None:
    body = jsonio.dumps({"inputs": inputs})
    auth = {"Authorization": f"Bearer {session.token}"}
    post = {**auth, "content-type": "application/json"}
    conflicts = 0
    try:
        with httpx.Client(base_url=base, timeout=120) as http:
            tag = http.get(session.path, headers=auth).headers["etag"]
            done = 0
            while done < CALLS:
                headers = {**post, "If-Match": tag}
                r = http.post(f"{session.path}/train", content=body, headers=headers)
                if r.status_code == 412:
                    assert r.json()["type"] == "/problems/precondition-failed"
                    tag, conflicts = r.headers["etag"], conflicts + 1
                    continue
                assert r.status_code == 200, r.text
                assert r.headers["etag"] == f'"{r.json()["version"]}"'
                tag, done = r.headers["etag"], done + 1
        results.append(conflicts)
    except BaseException as exc:  # reported by the test thread
        errors.append(exc)


def _race(bases: list[str]) -> None:
    ((x, y),) = batches(1, seed=21)
    inputs = batch_inputs(x, y)
    params = mlp_parameters(21)
    with httpx.Client(base_url=bases[0], timeout=120) as http:
        session = Session.create(http, session_body(params, CONFIG))
        results: list[int] = []
        errors: list[BaseException] = []
        threads = [
            threading.Thread(
                target=_client, args=(bases[i % len(bases)], session, inputs, results, errors)
            )  # fmt: skip
            for i in range(CLIENTS)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        assert len(results) == CLIENTS
        info = session.info()
        assert (info["version"], info["step_count"]) == (CLIENTS * CALLS, CLIENTS * CALLS)

        sequential = Session.create(http, session_body(params, CONFIG))
        answer = sequential.ok("POST", "/train", {"batches": [{"inputs": inputs}] * 200})
        assert answer["step_count"] == 200
        ours, reference = session.state(), sequential.state()
        assert ours["parameters"] == reference["parameters"]  # bit for bit (base64)
        assert ours["optimizer_state"] == reference["optimizer_state"]
        assert ours["grads"] == reference["grads"]
        for other in bases[1:]:  # every process sees the same session
            with httpx.Client(base_url=other) as peer:
                seen = peer.get(f"{session.path}/state?format=json&binary=true",
                                headers=session.headers()).json()  # fmt: skip
                assert seen == ours


@pytest.fixture
def sqlite_two_workers(tmp_path) -> Iterator[str]:
    port = free_port()
    with run_server(serve_command(port, workers=2), port, tmp_path / "data",
                    AUTOGRAD_LOG_LEVEL="warning") as base:  # fmt: skip
        yield base


@pytest.fixture
def two_replicas_on_redis(tmp_path, redis_server) -> Iterator[list[str]]:
    import redis

    with redis.Redis.from_url(redis_server.url) as client:
        client.flushdb()
    with ExitStack() as stack:
        bases = []
        for i in range(2):
            port = free_port()
            bases.append(stack.enter_context(run_server(
                serve_command(port), port, tmp_path / f"data{i}",
                AUTOGRAD_STORE=redis_server.url, AUTOGRAD_LOG_LEVEL="warning",
            )))  # fmt: skip
        yield bases


def test_eight_racing_clients_lose_no_step_with_sqlite_and_two_workers(sqlite_two_workers):
    _race([sqlite_two_workers])


def test_eight_racing_clients_lose_no_step_with_two_replicas_on_one_redis(two_replicas_on_redis):
    _race(two_replicas_on_redis)
