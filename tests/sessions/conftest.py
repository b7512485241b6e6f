"""Real servers for the session tests: `python -m service serve` subprocesses on loopback
ports, with SQLite in a temporary data directory or a real redis-server."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.service.conftest import REPO, STARTUP_SECONDS, free_port, run_server
from tests.store.redis_server import RedisServer


def serve_command(port: int, workers: int = 1) -> list[str]:
    return [sys.executable, "-m", "service", "serve", "--port", str(port),
            "--workers", str(workers)]  # fmt: skip


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Iterator[str]:
    """One SQLite-backed server shared by the tests that need no special settings. They are
    many clients behind one address, so the per-address caps are off (tests/sessions/
    test_quotas.py tests them)."""
    port = free_port()
    data_dir = tmp_path_factory.mktemp("sessions") / "data"
    with run_server(serve_command(port), port, data_dir, **SHARED) as base:
        yield base


SHARED = {"AUTOGRAD_LOG_LEVEL": "warning", "AUTOGRAD_MAX_CLIENT_SESSIONS": "0",
          "AUTOGRAD_MAX_CLIENT_BYTES": "0"}  # fmt: skip


@pytest.fixture(scope="module")
def http(server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=60) as client:
        yield client


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


def start_server(port: int, data_dir, **env: str) -> subprocess.Popen:
    """A server process the test may kill itself (run_server only ever terminates it)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AUTOGRAD_")}
    environ.update({"AUTOGRAD_DATA_DIR": str(data_dir), "AUTOGRAD_LOG_LEVEL": "warning", **env})
    data_dir.mkdir(parents=True, exist_ok=True)
    log = open(data_dir.parent / f"server-{port}.log", "ab")  # noqa: SIM115 - the process's
    proc = subprocess.Popen(serve_command(port), cwd=REPO, env=environ, stdout=log, stderr=log)
    log.close()
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/livez", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"server not live after {STARTUP_SECONDS}s")
        time.sleep(0.05)
