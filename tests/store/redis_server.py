"""A real redis-server for the tests, on a free loopback port with its own directory."""

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import redis

STARTUP_SECONDS = 10


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    def __init__(
        self, directory: Path, appendonly: bool = False, extra_args: Sequence[str] = ()
    ) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed; `bash scripts/test.sh` installs it")
        self.binary, self.directory, self.appendonly = binary, directory, appendonly
        self.extra_args = list(extra_args)  # after the defaults, so they override them
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.directory), "--save", "", "--daemonize", "no",
                "--appendonly", "yes" if self.appendonly else "no"]  # fmt: skip
        if self.appendonly:  # fsync before answering: as durable as SQLite's FULL
            args += ["--appendfsync", "always"]
        args += self.extra_args
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115 - lives with the process
        self.proc = subprocess.Popen(args, stdout=log, stderr=log)
        log.close()
        client = redis.Redis(port=self.port, socket_timeout=1)
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    log_text = (self.directory / "redis.log").read_text()
                    raise RuntimeError(f"redis-server did not start:\n{log_text}") from None
                time.sleep(0.02)
            except redis.BusyLoadingError:  # replaying its AOF
                time.sleep(0.02)
        client.close()
        return self

    def stop(self) -> None:
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL: no shutdown work, as in a crash."""
        self._end(signal.SIGKILL)

    def _end(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
