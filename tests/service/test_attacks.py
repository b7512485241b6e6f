"""The attacks issue #12 found, each a small request that once took a worker down, sent to a
real server with one worker and with two: each is refused fast or answered within the time
limit, the workers' memory stays under a stated bound, and `/livez` keeps answering fast
while they run (a probe polls it the whole time)."""

from __future__ import annotations

import multiprocessing
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from .conftest import free_port, run_server

MiB = 1024 * 1024
LIMIT_SECONDS = 10.0  # AUTOGRAD_MAX_REQUEST_SECONDS's default, which these servers run with
REFUSED_SECONDS = 1.0  # "refused fast"
SLACK_SECONDS = 3.0  # past the limit: the last step before the check, encoding, the network
RSS_BOUND = 1536 * MiB  # each worker's peak resident memory over the whole suite
LIVEZ_P99_SECONDS = 0.05


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for {pid}")


def _workers(pid: int) -> list[int]:
    """The process serving requests: the server itself, or its worker processes."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children] or [pid]


@dataclass
class Server:
    base: str
    pid: int
    http: httpx.Client

    def worker_peaks(self) -> dict[int, int]:
        return {pid: _peak_rss(pid) for pid in _workers(self.pid)}


@pytest.fixture(scope="module", params=[1, 2], ids=["1-worker", "2-workers"])
def attacked(request, tmp_path_factory) -> Iterator[Server]:
    port = free_port()
    data_dir = tmp_path_factory.mktemp("attacked") / "data"
    command = [sys.executable, "-m", "service", "serve", "--port", str(port),
               "--workers", str(request.param)]  # fmt: skip
    with run_server(command, port, data_dir, AUTOGRAD_LOG_LEVEL="warning") as base:
        from .conftest import SERVER_PROCESSES

        with httpx.Client(base_url=base, timeout=LIMIT_SECONDS * 4) as http:
            yield Server(base, SERVER_PROCESSES[base].pid, http)


def _poll_livez(base: str, ready, stop, results) -> None:
    """The probe's process: GET /livez every 10 ms until `stop`, then send the latencies."""
    latencies, failures = [], []
    with httpx.Client(base_url=base, timeout=30) as http:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                if http.get("/livez").status_code != 200:
                    failures.append("not 200")
            except httpx.HTTPError as exc:
                failures.append(repr(exc))
            latencies.append(time.perf_counter() - started)
            ready.set()
            time.sleep(0.01)
    results.put((latencies, failures))


class LivenessProbe:
    """Polls /livez every 10 ms while an attack runs, from its own process: in this one it
    would measure the test's own GIL (encoding a 15 MB body) instead of the server."""

    def __enter__(self) -> LivenessProbe:
        context = multiprocessing.get_context("spawn")
        self._ready, self._stop, self._results = context.Event(), context.Event(), context.Queue()
        self._process = context.Process(
            target=_poll_livez, args=(self.base, self._ready, self._stop, self._results)
        )
        self._process.start()
        assert self._ready.wait(30), "the probe never got an answer"
        return self

    def __init__(self, base: str):
        self.base = base
        self.latencies: list[float] = []
        self.failures: list[str] = []

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self.latencies, self.failures = self._results.get(timeout=30)
        self._process.join(10)

    def p99(self) -> float:
        return float(np.quantile(self.latencies, 0.99))


# -- the attacks -----------------------------------------------------------------------------


def _pool(http: httpx.Client) -> httpx.Response:
    """112 bytes: kernel 150 on a 300x300 view of one number (12.9 s, 5.95 GB, on the loop)."""
    return http.post("/v1/evaluate", json={
        "expr": "y = x.expand(1,1,300,300)\nz = max_pool2d(y, 150, 1)",
        "inputs": {"x": [[[[1.0]]]]}, "outputs": ["z"]})  # fmt: skip


def _conv(http: httpx.Client) -> httpx.Response:
    """A 500x500 input and a 250x250 kernel from two numbers (asked for >= 15.7 GB)."""
    return http.post("/v1/evaluate", json={
        "expr": "y = x.expand(1,1,500,500)\nw = x.expand(1,1,250,250)\nz = conv2d(y, w)",
        "inputs": {"x": [[[[1.0]]]]}, "outputs": ["z"]})  # fmt: skip


def _rebinding(http: httpx.Client) -> httpx.Response:
    """One name re-bound 10,000 times, 60 KB (26 s of CPU to compile once)."""
    text = "y=x*x\n" + "y=y*x\n" * 9_900
    return http.post("/v1/evaluate", json={"expr": text, "inputs": {"x": [1.0]}})


def _over_ops(http: httpx.Client) -> httpx.Response:
    """65 KB of ops over the 10,000-op limit (11.8 s before its 422)."""
    text = "y=x+x\n" * 10_900
    return http.post("/v1/evaluate", json={"expr": text, "inputs": {"x": [1.0]}})


def _huge_shape(http: httpx.Client) -> httpx.Response:
    """A tensor of 2^62 * 0 elements whose size numpy cannot compute (a 500)."""
    return http.post("/v1/evaluate", json={"expr": "y=x*2", "inputs": {
        "x": {"data": [], "shape": [2147483648, 2147483648, 0]}}})  # fmt: skip


WIDE_MLP = (
    "h = relu(x.expand(2048, 64) @ w1 + b1)\nout = h @ w2 + b2\n"
    "loss = mse_loss(out, y.expand(2048, 10))"
)


def _session(http: httpx.Client, parameters: dict, expr: str, optimizer: dict) -> dict:
    created = http.post("/v1/sessions", json={
        "parameters": parameters, "expr": expr, "loss": "loss",
        "optimizer": optimizer})  # fmt: skip
    assert created.status_code == 201, created.text
    return created.json()


def _thousand_batches(http: httpx.Client) -> httpx.Response:
    """1,000 batches of one number each in a 40 KB body, each batch within the flops limit
    (the program expands it): 139 s and a 200 before train's total was bounded."""
    rng = np.random.default_rng(0)
    params = {"w1": rng.standard_normal((64, 256)).tolist(), "b1": [0.0] * 256,
              "w2": rng.standard_normal((256, 10)).tolist(), "b2": [0.0] * 10}  # fmt: skip
    session = _session(http, {k: {"data": v} for k, v in params.items()}, WIDE_MLP,
                       {"type": "sgd", "lr": 0.01})  # fmt: skip
    body = {"batches": [{"inputs": {"x": [[1.0]], "y": [[0.0]]}}] * 1000}
    return http.post(f"/v1/sessions/{session['id']}/train", json=body,
                     headers={"Authorization": f"Bearer {session['token']}"})  # fmt: skip


def _wide_session_get(http: httpx.Client) -> httpx.Response:
    """GET of a 10,000-parameter Adam session after one step (~23 s per GET, on the loop)."""
    names = [f"p{i}" for i in range(10_000)]
    expr = "s = cat([" + ",".join(names) + "])\nloss = (s * x).sum()"
    session = _session(http, {n: {"data": [0.5]} for n in names}, expr,
                       {"type": "adam", "lr": 0.01})  # fmt: skip
    auth = {"Authorization": f"Bearer {session['token']}"}
    step = http.post(f"/v1/sessions/{session['id']}/train", headers=auth,
                     json={"batches": [{"inputs": {"x": [1.0]}}]})  # fmt: skip
    assert step.status_code == 200, step.text
    return http.get(f"/v1/sessions/{session['id']}", headers=auth)


def _zero_sessions(http: httpx.Client) -> httpx.Response:
    """Ten 300-byte creates of 5 x 40 MB `zeros` parameters each (2 GB stored, before each
    client had its share of the store): the third and later are over the address's bytes."""
    names = [f"w{i}" for i in range(5)]
    body = {"parameters": {n: {"init": "zeros", "shape": [10_000_000]} for n in names},
            "expr": "loss = " + " + ".join(f"{n}.sum()" for n in names), "loss": "loss",
            "optimizer": {"type": "sgd", "lr": 0.1}}  # fmt: skip
    answers = [http.post("/v1/sessions", json=body) for _ in range(10)]
    for answer in answers:  # leave the store as it was for the next attack
        if answer.status_code == 201:
            created = answer.json()
            http.delete(f"/v1/sessions/{created['id']}",
                        headers={"Authorization": f"Bearer {created['token']}"})  # fmt: skip
    assert [a.status_code for a in answers[:2]] == [201, 201], answers[0].text[:300]
    return answers[-1]


@dataclass(frozen=True)
class Attack:
    send: Callable[[httpx.Client], httpx.Response]
    statuses: tuple[int, ...]  # what it may answer
    seconds: float  # within how long


ATTACKS = {
    # refused by the bytes their windows and columns would take, or else chunked and bounded
    "pooling-kernel-150": Attack(_pool, (200, 422, 503), LIMIT_SECONDS + SLACK_SECONDS),
    "conv2d-kernel-250": Attack(_conv, (200, 422, 503), LIMIT_SECONDS + SLACK_SECONDS),
    "rebinding-10000": Attack(_rebinding, (200, 422), LIMIT_SECONDS + SLACK_SECONDS),
    "over-10000-ops": Attack(_over_ops, (422,), REFUSED_SECONDS),
    "huge-empty-shape": Attack(_huge_shape, (422,), REFUSED_SECONDS),
    "thousand-batches": Attack(_thousand_batches, (422,), REFUSED_SECONDS),
    "wide-session-get": Attack(_wide_session_get, (200,), REFUSED_SECONDS),
    "zeros-init-sessions": Attack(_zero_sessions, (429,), REFUSED_SECONDS),
}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_an_attack_is_bounded_and_livez_stays_fast(attacked: Server, name: str):
    attack = ATTACKS[name]
    with LivenessProbe(attacked.base) as probe:
        answer = attack.send(attacked.http)
    took = answer.elapsed.total_seconds()  # of the attack itself, not of its set-up calls
    assert answer.status_code in attack.statuses, answer.text[:500]
    if answer.status_code >= 400:
        assert answer.headers["content-type"] == "application/problem+json"
    if answer.status_code == 503:
        assert answer.json()["type"].endswith("/deadline-exceeded")
        assert "retry-after" in answer.headers
    assert took < attack.seconds, f"{name} answered {answer.status_code} after {took:.1f} s"
    assert not probe.failures, probe.failures[:3]
    assert probe.p99() < LIVEZ_P99_SECONDS, (
        f"/livez p99 {probe.p99() * 1000:.0f} ms during {name} "
        f"(max {max(probe.latencies) * 1000:.0f} ms, {len(probe.latencies)} probes)"
    )
    for pid, peak in attacked.worker_peaks().items():
        assert peak < RSS_BOUND, f"worker {pid} peaked at {peak / MiB:.0f} MiB after {name}"
