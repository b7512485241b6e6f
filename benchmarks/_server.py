"""What the HTTP benchmarks share: the seed's request, a free loopback port, and waiting for
a server subprocess to answer /livez."""

from __future__ import annotations

import socket
import time

HOST = "127.0.0.1"
SEED = {
    "expr": "Q = 3a³ − b²",
    "inputs": {
        "a": {"data": [2, 3], "requires_grad": True},
        "b": {"data": [6, 4], "requires_grad": True},
    },
    "backward": {"output": "Q", "gradient": [1, 1]},
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_live(http, proc, timeout: float = 60.0) -> None:
    """Poll GET /livez through the httpx client until it answers 200; fail if the server
    process exits or `timeout` seconds pass."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            if http.get("/livez").status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server did not start in {timeout:.0f} s")
        time.sleep(0.05)
