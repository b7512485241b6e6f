import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from service.settings import Settings
from tests.service.echo_app import create_echo_app

REPO = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 30
SERVER_PROCESSES: dict[str, subprocess.Popen] = {}
"""The process behind each running server's base URL (to read its memory use, say)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def run_server(command: list[str], port: int, data_dir: Path, **env: str) -> Iterator[str]:
    """Start a real uvicorn process on 127.0.0.1:`port`; yield its base URL once /livez answers."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AUTOGRAD_")}
    environ.update({"AUTOGRAD_DATA_DIR": str(data_dir), **env})
    log_path = data_dir.parent / f"server-{port}.log"
    base = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(command, cwd=REPO, env=environ, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}:\n{log_path.read_text()}")
            try:
                if httpx.get(f"{base}/livez", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"server not live after {STARTUP_SECONDS}s:\n{log_path.read_text()}"
                )
            time.sleep(0.05)
        SERVER_PROCESSES[base] = proc
        yield base
    finally:
        SERVER_PROCESSES.pop(base, None)
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory) -> Iterator[str]:
    """The real service, started as its users start it: `python -m service serve`."""
    port = free_port()
    data_dir = tmp_path_factory.mktemp("live") / "data"
    command = [sys.executable, "-m", "service", "serve", "--port", str(port)]
    with run_server(command, port, data_dir) as base:
        yield base


ECHO_MAX_BODY_BYTES = 8 * 1024 * 1024


@pytest.fixture(scope="session")
def echo_server(tmp_path_factory) -> Iterator[str]:
    """The service plus the test-only /echo route, via uvicorn --factory; 8 MiB body limit."""
    port = free_port()
    data_dir = tmp_path_factory.mktemp("echo") / "data"
    command = [
        sys.executable, "-m", "uvicorn", "tests.service.echo_app:create_echo_app",
        "--factory", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip
    with run_server(
        command, port, data_dir, AUTOGRAD_MAX_BODY_BYTES=str(ECHO_MAX_BODY_BYTES)
    ) as base:
        yield base


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "data", max_body_bytes=4096, max_tensor_elements=1000)


@pytest.fixture
def client(settings) -> Iterator[TestClient]:
    """In-process app with the /echo route; the context manager runs the lifespan."""
    with TestClient(create_echo_app(settings)) as test_client:
        yield test_client
