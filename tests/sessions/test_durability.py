"""`kill -9` the server while a client streams steps: after a restart every acknowledged step
is there, nothing is half-applied (the state is exactly that of some number of whole steps),
and the session trains on."""

import os
import signal

import httpx

from tests.service.conftest import free_port
from tests.sessions.conftest import start_server
from tests.sessions.helpers import (
    Session,
    TrainStream,
    batch_inputs,
    batches,
    mlp_parameters,
    session_body,
)

CONFIG = {"type": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}
KILL_AFTER = 15  # acknowledged steps before the kill


def test_acknowledged_steps_survive_kill_9_and_the_session_trains_on(tmp_path):
    data_dir = tmp_path / "data"
    ((x, y),) = batches(1, seed=31)
    inputs = batch_inputs(x, y)
    params = mlp_parameters(31)
    port = free_port()
    proc = start_server(port, data_dir)
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=30) as http:
            session = Session.create(http, session_body(params, CONFIG))
        stream = TrainStream(base, session, inputs, enough_after=KILL_AFTER).start()
        assert stream.enough.wait(60), "the client did not get its steps acknowledged"
        os.kill(proc.pid, signal.SIGKILL)  # mid-stream: a step is most likely in flight
        proc.wait()
        stream.join(30)
        acknowledged = stream.acknowledged
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    port = free_port()
    proc = start_server(port, data_dir)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            session.http = http
            info = session.info()
            last = acknowledged[-1]
            assert acknowledged == list(range(1, last + 1))
            # Every acknowledged step is there; at most the one in flight also committed.
            assert last <= info["step_count"] <= last + 1
            assert info["version"] == info["step_count"]

            reference = Session.create(http, session_body(params, CONFIG))
            reference.ok("POST", "/train", {"batches": [{"inputs": inputs}] * info["step_count"]})
            restored = session.state()
            assert restored["parameters"] == reference.state()["parameters"]
            assert restored["optimizer_state"] == reference.state()["optimizer_state"]

            answer = session.train(x, y)  # it trains on
            assert answer["step_count"] == info["step_count"] + 1
            reference.train(x, y)
            assert session.state()["parameters"] == reference.state()["parameters"]
    finally:
        proc.terminate()
        proc.wait(10)
