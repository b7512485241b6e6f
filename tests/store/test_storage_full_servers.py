"""Storage running out for real, with real servers: a redis-server at its `maxmemory`
(noeviction), and a SQLite data directory on a tiny tmpfs served by two workers. Each
answers 507 storage-full (not 503 "retry shortly"), /readyz answers 503 with the reason
whichever worker or replica answers, the session reads as it was, and all recovers once
space is freed (#12)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.service.conftest import free_port, run_server
from tests.store.redis_server import RedisServer
from tests.store.test_storage_faults import (
    W_SHAPE,
    megabytes,
    session_body,
    storage_problem,
    train_body,
)

pytestmark = pytest.mark.integration

REDIS_FULL = "full: command not allowed when used memory > 'maxmemory'."


@pytest.fixture
def capped_redis(tmp_path) -> Iterator[RedisServer]:
    server = RedisServer(
        tmp_path / "redis", extra_args=["--maxmemory", "8mb", "--maxmemory-policy", "noeviction"]
    ).start()
    yield server
    server.stop()


def _fill(make) -> tuple[list[dict], httpx.Response]:
    """Sessions made until one is refused; those made and the refusal."""
    made = []
    for seed in range(100):
        answer = make(seed)
        if answer.status_code != 201:
            return made, answer
        made.append(answer.json())
    raise AssertionError("the store never filled")


def _delete(client, session: dict) -> None:
    auth = {"Authorization": f"Bearer {session['token']}"}
    assert client.delete(f"/v1/sessions/{session['id']}", headers=auth).status_code == 204


def test_redis_at_maxmemory_answers_507_is_not_ready_and_recovers(tmp_path, capped_redis):
    settings = Settings(data_dir=tmp_path / "data", store=capped_redis.url, journal_max_entries=0)
    with TestClient(create_app(settings)) as client:
        made = client.post("/v1/sessions", json=session_body(megabytes(0.25).reshape(W_SHAPE)))
        session = made.json()
        auth = {"Authorization": f"Bearer {session['token']}"}
        url = f"/v1/sessions/{session['id']}"
        state = client.get(f"{url}/state?format=json", headers=auth).json()
        assert client.get("/readyz").status_code == 200

        # Small sessions, so that what is left when one is refused is less than the probe's
        # 1 MiB (a refusal counts the write's own arguments: a big one leaves more room).
        fillers, refused = _fill(lambda seed: client.post(
            "/v1/sessions", json=session_body(megabytes(0.25, seed).reshape(W_SHAPE))))  # fmt: skip
        assert storage_problem(refused, 507, "storage-full")["reason"] == REDIS_FULL
        trained = client.post(f"{url}/train", json=train_body(), headers=auth)
        assert storage_problem(trained, 507, "storage-full")["reason"] == REDIS_FULL
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert re.fullmatch(r"full: \d+ bytes used of maxmemory 8388608",
                            ready.json()["checks"]["store"])  # fmt: skip
        read = client.get(url, headers=auth)
        assert (read.status_code, read.headers["etag"]) == (200, '"0"')
        assert client.get(f"{url}/state?format=json", headers=auth).json() == state

        for filler in fillers:  # DEL is allowed over maxmemory: it frees memory
            _delete(client, filler)
        assert client.get("/readyz").status_code == 200
        trained = client.post(f"{url}/train", json=train_body(), headers=auth)
        assert (trained.status_code, trained.headers["etag"]) == (200, '"1"')


@pytest.fixture
def tiny_filesystem(tmp_path) -> Iterator[str]:
    """A 24 MiB tmpfs (root only: mount needs CAP_SYS_ADMIN)."""
    point = tmp_path / "tiny"
    point.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(point)],
                           capture_output=True, text=True)  # fmt: skip
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mount.stderr.strip()}")
    try:
        yield str(point)
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)


def _fill_disk(path: str) -> None:
    """Write a file until the filesystem refuses (ENOSPC): it is then full."""
    with open(path, "wb") as out:
        try:
            while True:
                out.write(b"\0" * (1 << 20))
                out.flush()
        except OSError:
            pass
    assert os.statvfs(path).f_bavail * os.statvfs(path).f_frsize < (1 << 20)


def test_a_full_disk_under_two_workers_is_507_and_not_ready_on_both(tiny_filesystem, tmp_path):
    port = free_port()
    command = [sys.executable, "-m", "service", "serve", "--port", str(port), "--workers", "2"]
    env = {"AUTOGRAD_DATA_DIR": f"{tiny_filesystem}/data", "AUTOGRAD_LOG_LEVEL": "warning",
           "AUTOGRAD_JOURNAL_MAX_ENTRIES": "0"}  # fmt: skip
    (tmp_path / "logs").mkdir()  # run_server's data_dir only places its log, off the tmpfs
    with (
        run_server(command, port, tmp_path / "logs" / "data", **env) as base,
        httpx.Client(base_url=base, timeout=30) as http,
    ):
        session = http.post("/v1/sessions", json=session_body(
            megabytes(0.25).reshape(W_SHAPE))).json()  # fmt: skip
        auth = {"Authorization": f"Bearer {session['token']}"}
        url = f"/v1/sessions/{session['id']}"
        state = http.get(f"{url}/state?format=json", headers=auth).json()
        filler = f"{tiny_filesystem}/filler"
        _fill_disk(filler)

        trained = http.post(f"{url}/train", json=train_body(), headers=auth)
        body = storage_problem(trained, 507, "storage-full")
        assert body["reason"] == "full: database or disk is full"
        # Each of the two workers answers some of these: every one is not ready.
        checks = [http.get("/readyz") for _ in range(8)]
        assert {c.status_code for c in checks} == {503}
        assert all(c.json()["checks"]["store"].startswith("full: ") for c in checks)
        assert http.get(f"{url}/state?format=json", headers=auth).json() == state

        os.remove(filler)
        assert {http.get("/readyz").status_code for _ in range(8)} == {200}
        trained = http.post(f"{url}/train", json=train_body(), headers=auth)
        assert (trained.status_code, trained.headers["etag"]) == (200, '"1"')
        assert np.isfinite(trained.json()["loss"])
