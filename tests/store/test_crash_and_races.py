"""The guarantees that need several processes: no lost update under racing commits, and
nothing half-applied when a process dies inside a commit."""

import multiprocessing
import os
import signal
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from service.store import Changes
from tests.store.test_store import record
from tests.store.workers import commit_then_die, increment

WORKERS, TIMES = 8, 25


def test_racing_commits_from_processes_lose_no_update(backend):
    store = backend.make()
    store.create(record(w=np.zeros((), dtype=np.float64)))
    ctx = multiprocessing.get_context("spawn")  # fresh processes, their own connections
    start = ctx.Manager().Event()
    with ctx.Pool(WORKERS) as pool:
        args = [(backend.kind, backend.location, "s1", TIMES, start)] * WORKERS
        pending = pool.starmap_async(increment, args)
        time.sleep(0.5)  # let every worker open its store before releasing them together
        start.set()
        conflicts = pending.get(timeout=300)
    got = store.get("s1")
    assert (got.version, got.step_count) == (WORKERS * TIMES, WORKERS * TIMES)
    assert got.parameters["w"] == WORKERS * TIMES
    print(f"{backend.kind}: {sum(conflicts)} conflicts retried")


def test_racing_commits_from_threads_sharing_one_store_lose_no_update(backend):
    """Threads of one worker (FastAPI runs sync routes in a thread pool) share a store."""
    store = backend.make()
    store.create(record(w=np.zeros((), dtype=np.float64)))
    start = threading.Event()
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = [
            pool.submit(increment, backend.kind, backend.location, "s1", TIMES, start)
            for _ in range(WORKERS)
        ]
        start.set()
        conflicts = [f.result(timeout=300) for f in futures]
    got = store.get("s1")
    assert got.version == WORKERS * TIMES and got.parameters["w"] == WORKERS * TIMES
    print(f"{backend.kind}: {sum(conflicts)} conflicts retried")


def test_a_process_killed_inside_a_commit_leaves_the_previous_version_whole(backend, tmp_path):
    store = backend.make()
    store.create(record(w=np.zeros(1000)))
    signal_path = str(tmp_path / "signal")
    ctx = multiprocessing.get_context("spawn")
    child = ctx.Process(
        target=commit_then_die, args=(backend.kind, backend.location, "s1", signal_path)
    )
    child.start()
    deadline = time.monotonic() + 60
    while not os.path.exists(signal_path):
        assert child.is_alive() and time.monotonic() < deadline, "child never reached the commit"
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    assert os.path.exists(signal_path + ".acked")

    got = store.get("s1")  # the acknowledged commit, all of it, and nothing of the next
    assert (got.version, got.step_count) == (1, 1)
    assert got.parameters.keys() == {"w"} and got.grads == {}
    assert np.array_equal(got.parameters["w"], np.full(1000, 1.0))
    assert store.commit("s1", 1, Changes(parameters={"w": np.zeros(1000)}, steps=1)) == 2
    if backend.kind == "sqlite":
        with sqlite3.connect(backend.location) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
