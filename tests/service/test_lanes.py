"""The heavy lane (service/programs/lanes.py): computations declared expensive take a slot,
cheap ones never wait, and a request that finds no slot before its time limit is a 503
server-busy with Retry-After, having run nothing."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from fastapi.testclient import TestClient

from engine.deadline import deadline
from service.app import create_app
from service.problems import ProblemError
from service.programs.lanes import Lane
from service.settings import Settings


def test_a_heavy_computation_waits_for_a_slot_and_a_cheap_one_never_does(tmp_path):
    lane = Lane()
    lane.configure(heavy_flops=1000, slots=1, directory=tmp_path)
    held, release = threading.Event(), threading.Event()

    def holder():
        with lane.admitted(10_000):
            held.set()
            release.wait(5)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(5)
    with lane.admitted(1000):  # at the threshold: cheap
        pass
    with lane.admitted(10_000):  # the main thread is the event loop's, which never waits
        pass

    def heavy():
        with deadline(0.2), lane.admitted(10_000):
            raise AssertionError("ran without a slot")

    started = time.perf_counter()
    with pytest.raises(ProblemError) as refused:
        ThreadPoolExecutor(1).submit(heavy).result()
    assert 0.15 < time.perf_counter() - started < 1.0
    assert refused.value.status_code == 503
    assert refused.value.document()["type"].endswith("/server-busy")
    assert refused.value.headers["Retry-After"] == "1"
    release.set()
    thread.join()

    def free_again():
        with deadline(0.2), lane.admitted(10_000):
            return True

    assert ThreadPoolExecutor(1).submit(free_again).result()


def test_no_slots_means_no_lane(tmp_path):
    lane = Lane()
    lane.configure(heavy_flops=0, slots=0, directory=tmp_path)
    with lane.admitted(10**15):
        pass


def test_over_http_a_heavy_evaluate_finds_the_lane_full_and_a_cheap_one_is_answered(tmp_path):
    """The slot is held by another process, as another worker would hold it."""
    settings = Settings(data_dir=tmp_path / "data", heavy_flops=1_000_000, heavy_slots=1,
                        max_request_seconds=0.3)  # fmt: skip
    x = np.full((200, 200), 0.01).tolist()
    heavy = {"expr": "y = x @ x", "inputs": {"x": x}}  # 16 million operations
    with TestClient(create_app(settings)) as client:
        assert client.post("/v1/evaluate", json=heavy).status_code == 200  # a free slot
        slot = tmp_path / "data" / "heavy-0.lock"
        holder = subprocess.Popen([sys.executable, "-c", HOLD, str(slot)], stdout=subprocess.PIPE)
        try:
            assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
            busy = client.post("/v1/evaluate", json=heavy)
            cheap = client.post("/v1/evaluate", json={"expr": "y = x * 2", "inputs": {"x": [1.0]}})
        finally:
            holder.kill()
            holder.wait()
        again = client.post("/v1/evaluate", json=heavy)  # the dead holder's lock is gone
    assert busy.status_code == 503, busy.text
    assert busy.json()["type"].endswith("/server-busy")
    assert busy.json()["flops"] > 1_000_000 and busy.headers["retry-after"] == "1"
    assert cheap.status_code == 200
    assert again.status_code == 200, again.text


HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(60)
"""


def test_a_heavy_session_step_waits_its_turn_too_and_changes_nothing_when_refused(tmp_path):
    from tests.sessions.helpers import (
        Session,
        batch_inputs,
        batches,
        mlp_parameters,
        session_body,
    )

    settings = Settings(data_dir=tmp_path / "data", heavy_flops=1_000, heavy_slots=1,
                        max_request_seconds=0.3)  # fmt: skip
    with TestClient(create_app(settings)) as client:
        session = Session.create(client, session_body(mlp_parameters(), {"type": "sgd", "lr": 0.1}))
        session.train(*batches(1)[0])  # a free slot
        slot = str(tmp_path / "data" / "heavy-0.lock")
        holder = subprocess.Popen([sys.executable, "-c", HOLD, slot], stdout=subprocess.PIPE)
        try:
            assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
            x, y = batches(1)[0]
            busy = session.request("POST", "/train", {"inputs": batch_inputs(x, y)})
        finally:
            holder.kill()
            holder.wait()
        assert busy.status_code == 503, busy.text
        assert busy.json()["type"].endswith("/server-busy")
        assert session.info()["version"] == 1
        session.train(x, y)
        assert session.info()["version"] == 2
