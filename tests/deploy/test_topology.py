"""docker-compose.yml's topology without Docker, on loopback: deploy/nginx.conf in a local nginx
in front of two service processes (`python -m service serve`, one worker each, as the image
runs them) sharing a redis-server started with the compose file's own persistence settings.

A session made through one replica trains through the other and through the balancer;
`kill -9` of a replica in the middle of a stream of steps loses no acknowledged step and the
balancer routes around it; a crash and restart of Redis keeps every session."""

import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import numpy as np
import pytest

from tests.deploy import compose
from tests.deploy.nginx import Nginx
from tests.service.conftest import free_port
from tests.sessions.conftest import start_server
from tests.sessions.helpers import (
    Session,
    TrainStream,
    batch_inputs,
    batches,
    mlp_parameters,
    post_json,
    problem,
    session_body,
)
from tests.store.redis_server import RedisServer

CONFIG = {"type": "adam", "lr": 0.01}
KILL_AFTER = 12  # acknowledged steps before the kill


@dataclass
class Topology:
    redis: RedisServer
    replicas: list[str]  # base URLs
    procs: list
    nginx: Nginx
    logs: list = field(default_factory=list)

    @property
    def lb(self) -> str:
        return self.nginx.url


@pytest.fixture
def topology(tmp_path) -> Iterator[Topology]:
    redis = RedisServer(tmp_path / "redis", extra_args=compose.redis_args()).start()
    env = {**compose.api_environment(), "AUTOGRAD_STORE": redis.url, "AUTOGRAD_LOG_LEVEL": "info"}
    assert compose.api_environment()["AUTOGRAD_STORE"] == "redis://redis:6379/0"
    procs, replicas, logs, nginx = [], [], [], None
    try:
        for i in range(2):
            port = free_port()
            procs.append(start_server(port, tmp_path / f"replica{i}" / "data", **env))
            replicas.append(f"http://127.0.0.1:{port}")
            logs.append(tmp_path / f"replica{i}" / f"server-{port}.log")
        upstreams = [url.removeprefix("http://") for url in replicas]
        nginx = Nginx(tmp_path / "nginx", upstreams, free_port()).start()
        yield Topology(redis, replicas, procs, nginx, logs)
    finally:
        if nginx is not None:
            nginx.stop()
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except Exception:
                    proc.kill()
                    proc.wait()
        redis.stop()


def _state(base: str, session: Session) -> dict:
    with httpx.Client(base_url=base, timeout=30) as http:
        response = http.get(f"{session.path}/state?format=json&binary=true",
                            headers=session.headers())  # fmt: skip
        assert response.status_code == 200, response.text
        return response.json()


def test_replicas_share_sessions_behind_the_balancer(topology):
    ((x, y),) = batches(1, seed=41)
    a, b = topology.replicas
    with httpx.Client(base_url=a, timeout=30) as http:
        session = Session.create(http, session_body(mlp_parameters(41), CONFIG))
    with httpx.Client(base_url=b, timeout=30) as http:
        session.http = http
        assert session.train(x, y)["step_count"] == 1  # made on A, trained on B
    with httpx.Client(base_url=topology.lb, timeout=30) as http:
        session.http = http
        counts = [session.train(x, y)["step_count"] for _ in range(6)]
        assert counts == [2, 3, 4, 5, 6, 7]
    assert _state(a, session) == _state(b, session) == _state(topology.lb, session)

    # The balancer spreads requests over both replicas and passes the request id through.
    with httpx.Client(base_url=topology.lb, timeout=30) as http:
        for i in range(8):
            response = http.get("/livez", headers={"X-Request-ID": f"lb-{i}"})
            assert response.status_code == 200
            assert response.headers["x-request-id"] == f"lb-{i}"
        made = http.get("/no/such/path")  # no id given: nginx's own, echoed by the service
        assert made.status_code == 404
        assert made.json()["request_id"] == made.headers["x-request-id"]
        # No 1 MB cap in front of the service's own limits (nginx's default is 1 MB).
        big = {"expr": "y = x.sum()", "inputs": {"x": np.arange(300_000).tolist()}}
        response = post_json(http, "/v1/evaluate", big)
        assert response.status_code == 200, response.text[:300]
        assert len(response.request.content) > 1 << 20
    served = [log.read_text() for log in topology.logs]
    for text in served:
        assert any(f'"request_id": "lb-{i}"' in text for i in range(8)), "a replica got none"
    for i in range(8):
        assert sum(f'"request_id": "lb-{i}"' in text for text in served) == 1


def test_killing_a_replica_mid_stream_loses_no_acknowledged_step(topology):
    ((x, y),) = batches(1, seed=43)
    inputs = batch_inputs(x, y)
    params = mlp_parameters(43)
    a, b = topology.replicas
    with httpx.Client(base_url=topology.lb, timeout=30) as http:
        session = Session.create(http, session_body(params, CONFIG))

    stream = TrainStream(a, session, inputs, enough_after=KILL_AFTER).start()
    assert stream.enough.wait(60), "the client did not get its steps acknowledged"
    os.kill(topology.procs[0].pid, signal.SIGKILL)  # mid-stream: a step is most likely in flight
    topology.procs[0].wait()
    stream.join(30)
    acknowledged = stream.acknowledged
    last = acknowledged[-1]
    assert acknowledged == list(range(1, last + 1))

    with httpx.Client(base_url=b, timeout=30) as http:
        session.http = http
        info = session.info()
        # Every acknowledged step is there; at most the one in flight also committed.
        assert last <= info["step_count"] <= last + 1
        assert info["version"] == info["step_count"]
        reference = Session.create(http, session_body(params, CONFIG))
        reference.ok("POST", "/train", {"batches": [{"inputs": inputs}] * info["step_count"]})
        ours, theirs = session.state(), reference.state()
        assert ours["parameters"] == theirs["parameters"]
        assert ours["optimizer_state"] == theirs["optimizer_state"]

    # Through the balancer the stream goes on, on the replica that is left.
    with httpx.Client(base_url=topology.lb, timeout=30) as http:
        session.http = http
        counts = [session.train(x, y)["step_count"] for _ in range(4)]
        assert counts == list(range(info["step_count"] + 1, info["step_count"] + 5))


def test_a_crash_and_restart_of_redis_keeps_the_sessions(topology):
    data = batches(2, seed=47)
    sessions = []
    with httpx.Client(base_url=topology.lb, timeout=30) as http:
        for seed, (x, y) in zip((47, 48), data, strict=True):
            session = Session.create(http, session_body(mlp_parameters(seed), CONFIG))
            for _ in range(3):
                session.train(x, y)
            sessions.append(session)
    before = [_state(topology.lb, s) for s in sessions]

    topology.redis.kill()  # SIGKILL: no shutdown save, the append-only file is all there is
    for base in topology.replicas:
        with httpx.Client(base_url=base, timeout=30) as http:
            assert http.get("/livez").status_code == 200  # alive: no restart wanted
            body = problem(http.get("/readyz"), 503, "not-ready")
            assert body["checks"]["store"].startswith("unavailable")
            x, y = data[0]
            sessions[0].http = http
            refused = sessions[0].request("POST", "/train", {"inputs": batch_inputs(x, y)})
            assert problem(refused, 503, "not-ready")["request_id"]

    topology.redis.start()  # same port and directory: it replays its append-only file
    for base in topology.replicas:
        with httpx.Client(base_url=base, timeout=30) as http:
            assert http.get("/readyz").status_code == 200
    assert [_state(base, s) for s in sessions for base in topology.replicas] == [
        state for state in before for _ in topology.replicas
    ]
    for i, (session, (x, y)) in enumerate(zip(sessions, data, strict=True)):
        with httpx.Client(base_url=topology.replicas[i], timeout=30) as http:
            session.http = http
            assert session.train(x, y)["step_count"] == 4
