"""Any failed start exits non-zero, with any number of workers: with --workers 2, uvicorn's
supervisor stopped when a worker failed to start and the process exited 0, so a restart
policy never reacted (#12). `serve` opens the store before any worker starts and says why it
cannot; a worker failing later still makes the whole process exit 1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.service.conftest import REPO, free_port


def serve(workers: int, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AUTOGRAD_")}
    command = [sys.executable, "-m", "service", "serve", "--port", str(free_port()),
               "--workers", str(workers)]  # fmt: skip
    return subprocess.run(command, cwd=REPO, env={**environ, **env}, capture_output=True,
                          text=True, timeout=60)  # fmt: skip


@pytest.mark.parametrize("workers", [1, 2])
def test_an_unreachable_redis_is_a_clear_line_and_exit_1(workers):
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    done = serve(workers, AUTOGRAD_STORE=url)
    assert done.returncode == 1, done.stderr[-2000:]
    assert f"cannot open the session store {url}: Error 111" in done.stderr


@pytest.mark.parametrize("workers", [1, 2])
def test_a_data_dir_that_cannot_be_made_is_a_clear_line_and_exit_1(tmp_path, workers):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    done = serve(workers, AUTOGRAD_DATA_DIR=str(blocker / "data"))
    assert done.returncode == 1, done.stderr[-2000:]
    assert "cannot open the session store" in done.stderr
    assert "Not a directory" in done.stderr


RUN_WORKERS = (
    "import sys; from service.cli import run_workers; "
    "sys.exit(run_workers('tests.store.failing_app:create_app', factory=True, "
    "host='127.0.0.1', port={port}, workers=2, log_level='warning'))"
)


def test_a_worker_that_fails_to_start_makes_several_workers_exit_1():
    command = [sys.executable, "-c", RUN_WORKERS.format(port=free_port())]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr[-2000:]
    assert "failed to start; stopped." in done.stderr


def test_several_workers_stopped_by_sigterm_exit_0(tmp_path):
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AUTOGRAD_")}
    environ.update(AUTOGRAD_DATA_DIR=str(tmp_path / "data"), AUTOGRAD_LOG_LEVEL="warning")
    command = [sys.executable, "-m", "service", "serve", "--port", str(port), "--workers", "2"]
    proc = subprocess.Popen(command, cwd=REPO, env=environ, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/livez", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, proc.stderr.read()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
