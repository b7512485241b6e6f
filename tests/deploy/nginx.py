"""deploy/nginx.conf run by a local nginx on loopback, in front of local replicas.

Only what Docker provides differs: the upstream `api:8000` (one address per replica, from
Docker's DNS) becomes the replicas' loopback addresses, and nginx listens on a free loopback
port instead of 8000. Everything else is the file docker compose mounts."""

import shutil
import socket
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "deploy" / "nginx.conf"
UPSTREAM = "        server api:8000;\n"
LISTEN = "        listen 8000;\n"
STARTUP_SECONDS = 10


def local_conf(upstreams: list[str], port: int) -> str:
    text = CONF.read_text()
    for fixed in (UPSTREAM, LISTEN):
        assert text.count(fixed) == 1, f"deploy/nginx.conf no longer has {fixed.strip()!r}"
    servers = "".join(f"        server {address};\n" for address in upstreams)
    return text.replace(UPSTREAM, servers).replace(LISTEN, f"        listen 127.0.0.1:{port};\n")


def binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )
    if found is None:
        raise RuntimeError("nginx is not installed; `bash scripts/test.sh` installs it")
    return found


def check(directory: Path, upstreams: list[str], port: int) -> subprocess.CompletedProcess:
    """`nginx -t` on the local configuration."""
    conf = _write(directory, upstreams, port)
    return subprocess.run(
        [binary(), "-t", "-p", str(directory), "-c", str(conf), "-g", _globals(directory)],
        capture_output=True, text=True,
    )  # fmt: skip


def _write(directory: Path, upstreams: list[str], port: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "nginx.conf"
    conf.write_text(local_conf(upstreams, port))
    return conf


def _globals(directory: Path) -> str:
    return f"daemon off; pid {directory / 'nginx.pid'};"


class Nginx:
    def __init__(self, directory: Path, upstreams: list[str], port: int) -> None:
        self.directory, self.port = directory, port
        self.conf = _write(directory, upstreams, port)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Nginx":
        log = open(self.directory / "nginx.log", "ab")  # noqa: SIM115 - the process's
        command = [binary(), "-p", str(self.directory), "-c", str(self.conf),
                   "-g", _globals(self.directory)]  # fmt: skip
        self.proc = subprocess.Popen(command, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"nginx did not start:\n{self.log()}") from None
                time.sleep(0.02)

    def log(self) -> str:
        return (self.directory / "nginx.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: fast shutdown
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
