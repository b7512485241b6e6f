"""Sustained mixed load on the service with 2 workers, on loopback: throughput, latency,
errors, and the servers' resident memory before, after warm-up and at the end.

Starts `python -m service serve --workers 2` (SQLite store, or Redis with --redis) on a free
loopback port, makes --sessions training sessions (an MLP 64-128-10 with SGD and momentum),
then drives a fixed cycle of requests with Debian's `wrk` (C, event-driven; one thread, a
bounded number of connections, each sending its next request only after the answer):

  - POST /v1/evaluate: the seed's Q = 3a³ − b² with backward,
  - POST /v1/sessions/{id}/train: one batch of 32 (base64), round robin over the sessions,
  - GET  /v1/sessions/{id}/state: the session as a safetensors file (~115 kB),

in the proportions of --mix (evaluate:train:state, default 5:3:2). A warm-up run (--warmup
seconds) comes first, then the measured one (--duration). It prints wrk's throughput,
p50/p99 latency and errors (non-2xx answers and socket errors), the server's own per-route
counts and latency from /metrics, the CPU time of the servers and of wrk (the generator
shares the 2 cores with the 2 workers: its share is printed so that it can be judged), and
the resident memory (RSS) of the server processes at each stage. Exits 1 if any request
failed or RSS grew by more than --max-growth after warm-up.

Hostile mix (--hostile FRACTION, default 0.1; 0 turns it off): after the clean measured run,
the same run again with issue #12's attacks alongside (benchmarks/_attacks.py: pooling kernel
150, conv2d kernel 250, a name re-bound 10,000 times, 65 KB over the op limit, a huge empty
shape, 1,000 one-number train batches, GET of a 10,000-parameter Adam session), paced at
FRACTION/(1 - FRACTION) times the clean run's rate so that they are ~FRACTION of all requests.
It prints the well-behaved p50/p99 of both runs and their ratio -- the goal is p99 within 2x
of the clean run -- and what the attacks were answered (counts per status and problem type,
slowest answer per attack). The attacks come from a pool of --hostile-connections Python
threads in this process, not from wrk, so wrk's latency is the well-behaved clients' alone.
Threads rather than a second wrk: each answer is timed and classified per attack (wrk's Lua
sees a status but no per-request time), and a thread pool paces an open-loop schedule with a
bounded number in flight (wrk is closed-loop: it sends as fast as answers come back). This
process is idle in wrk's run otherwise, and sends pre-encoded bodies, so its CPU is small (it
is printed). When the attacks are answered slower than the pace, the threads send back to
back and the achieved fraction (printed) falls short of FRACTION. Attacks may be answered
4xx or 503 (they are counted, not failures); a failure is any other 5xx, a 503 that is not
deadline-exceeded or insufficient-memory, a dropped connection, or an answer later than the
server's AUTOGRAD_MAX_REQUEST_SECONDS + 3 s. The sessions the attacks need are made before
anything is measured; --max-growth applies to the clean run (the attacks' numpy buffers
legitimately raise the workers' RSS; their peaks are printed).

    python benchmarks/load.py [--duration 60] [--warmup 15] [--connections 8] [--redis]
                              [--hostile 0.1] [--hostile-connections 4]

wrk: `sudo apt-get install -y wrk`.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import _attacks  # noqa: E402
from benchmarks._server import HOST, SEED  # noqa: E402
from benchmarks._server import free_port as _free_port  # noqa: E402

N_IN, N_HIDDEN, N_OUT, BATCH = 64, 128, 10, 32
MLP = "h = relu(linear(x, W1, b1))\nlogits = linear(h, W2, b2)\nloss = cross_entropy(logits, y)"


# -- processes -------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(child) for child in text]
    return found


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


@dataclass
class Server:
    proc: subprocess.Popen
    port: int

    @property
    def pids(self) -> list[int]:
        """The supervisor and its children: the workers and multiprocessing's resource
        tracker (uvicorn spawns them)."""
        return [self.proc.pid, *_children(self.proc.pid)]

    def workers(self) -> list[int]:
        return [pid for pid in _children(self.proc.pid)
                if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]  # fmt: skip

    def stop(self) -> None:
        """SIGTERM to the whole process group: no worker outlives the run."""
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def rss(self) -> dict[int, int]:
        return {pid: _rss_kib(pid) for pid in self.pids}

    def cpu(self) -> float:
        return sum(_cpu_seconds(pid) for pid in self.pids)


def start_redis(directory: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    args = ["redis-server", "--port", str(port), "--bind", HOST, "--dir", str(directory),
            "--save", "", "--appendonly", "yes", "--appendfsync", "everysec"]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return proc, f"redis://{HOST}:{port}/0"


def start_server(directory: Path, workers: int, store: str, log_level: str,
                 settings: dict[str, str] | None = None) -> Server:  # fmt: skip
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOGRAD_")}
    env.update({"AUTOGRAD_DATA_DIR": str(directory / "data"), "AUTOGRAD_STORE": store,
                "AUTOGRAD_LOG_LEVEL": log_level, **(settings or {})})  # fmt: skip
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "service", "serve", "--host", HOST, "--port", str(port),
               "--workers", str(workers)]  # fmt: skip
    log = open(directory / "server.log", "wb")  # noqa: SIM115 - the server's
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log,
                            start_new_session=True)  # fmt: skip
    log.close()
    server = Server(proc, port)
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            sys.exit(f"server exited:\n{(directory / 'server.log').read_text()}")
        try:
            spawned = workers if workers > 1 else 0  # one worker runs in the supervisor
            if call(server, "GET", "/livez")[0] == 200 and len(server.workers()) == spawned:
                return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            sys.exit("server not live after 60 s")
        time.sleep(0.1)


def call(server: Server, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, bytes]:  # fmt: skip
    conn = http.client.HTTPConnection(HOST, server.port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# -- the work --------------------------------------------------------------------------------


def _b64(array: np.ndarray, dtype: str) -> dict:
    raw = np.ascontiguousarray(array, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()
    return {"b64": base64.b64encode(raw).decode(), "shape": list(array.shape), "dtype": dtype}


def make_sessions(server: Server, count: int) -> list[tuple[str, str]]:
    made = []
    for i in range(count):
        body = {
            "parameters": {
                "W1": {"init": "kaiming_uniform", "shape": [N_HIDDEN, N_IN], "a": 5**0.5,
                       "seed": i},
                "b1": {"init": "zeros", "shape": [N_HIDDEN]},
                "W2": {"init": "kaiming_uniform", "shape": [N_OUT, N_HIDDEN], "a": 5**0.5,
                       "seed": 1000 + i},
                "b2": {"init": "zeros", "shape": [N_OUT]},
            },
            "optimizer": {"type": "sgd", "lr": 0.01, "momentum": 0.9},
            "expr": MLP,
            "loss": "loss",
        }  # fmt: skip
        status, answer = call(server, "POST", "/v1/sessions", json.dumps(body).encode(),
                              {"Content-Type": "application/json"})  # fmt: skip
        if status != 201:
            sys.exit(f"creating a session: {status} {answer[:300]!r}")
        created = json.loads(answer)
        made.append((created["id"], created["token"]))
    return made


def _lua_request(method: str, path: str, headers: dict[str, str], body: bytes | None) -> bytes:
    pairs = ", ".join(f'["{k}"] = "{v}"' for k, v in headers.items())
    text = f'wrk.format("{method}", "{path}", {{{pairs}}}'.encode()
    # A Lua long string holds the UTF-8 body byte for byte (no escapes inside [==[ ]==]).
    return text + (b", [==[" + body + b"]==])" if body is not None else b")")


def lua_script(sessions: list[tuple[str, str]], mix: tuple[int, int, int], path: Path) -> int:
    """The cycle of requests wrk sends, in order; returns its length."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, N_IN)).astype(np.float32)
    y = rng.integers(0, N_OUT, BATCH)
    train = json.dumps({"inputs": {"x": _b64(x, "float32"), "y": _b64(y, "int64")}}).encode()
    evaluate = json.dumps(SEED, ensure_ascii=False).encode()
    json_headers = {"Content-Type": "application/json"}
    pattern = ["evaluate"] * mix[0] + ["train"] * mix[1] + ["state"] * mix[2]
    # Interleave the kinds (evenly spread, not in blocks) with a fixed shuffle.
    pattern = [pattern[i] for i in rng.permutation(len(pattern))]
    entries, trained, read = [], 0, len(sessions) // 2
    for _ in range(len(sessions)):
        for kind in pattern:
            if kind == "evaluate":
                entries.append(_lua_request("POST", "/v1/evaluate", json_headers, evaluate))
            elif kind == "train":
                sid, token = sessions[trained % len(sessions)]
                trained += 1
                headers = {**json_headers, "Authorization": f"Bearer {token}"}
                entries.append(_lua_request("POST", f"/v1/sessions/{sid}/train", headers, train))
            else:
                sid, token = sessions[read % len(sessions)]
                read += 1
                headers = {"Authorization": f"Bearer {token}"}
                entries.append(_lua_request("GET", f"/v1/sessions/{sid}/state", headers, None))
    script = b"local requests = {}\nlocal i = 0\n\nfunction init(args)\n"
    for n, entry in enumerate(entries, 1):
        script += b"  requests[%d] = " % n + entry + b"\n"
    script += b"""end

function request()
  i = i + 1
  if i > #requests then i = 1 end
  return requests[i]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nRESULT {"requests": %d, "duration_us": %d, "errors": {"connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d}, "latency_us": {"p50": %d, "p90": %d, ' ..
    '"p99": %d, "p999": %d, "max": %d, "mean": %.1f}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
end
"""
    path.write_bytes(script)
    return len(entries)


def run_wrk(server: Server, script: Path, seconds: int, connections: int) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_cpu = server.cpu()
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s",
               "-s", str(script), f"http://{HOST}:{server.port}"]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next(line for line in out.splitlines() if line.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    result["wrk_cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result["server_cpu_s"] = server.cpu() - server_cpu
    return result


# -- hostile traffic ------------------------------------------------------------------------

SLACK_SECONDS = 3.0  # an attack answered later than the deadline + this is a failure
ACCEPTED_503 = ("deadline-exceeded", "insufficient-memory")


@dataclass
class AttackStats:
    sent: int = 0
    answers: Counter = field(default_factory=Counter)  # "422 limit-exceeded" -> count
    max_s: float = 0.0
    failures: list[str] = field(default_factory=list)


class Hostile:
    """Sends the attacks round robin on an open-loop schedule of `rate` per second from
    `connections` threads (a new connection per request, as `call` does): thread after
    thread takes the next slot of the schedule, waits for its time, sends, and reads the whole
    answer. With every thread busy, a slot that is due waits for a free one (then the threads
    send back to back until the schedule is met again)."""

    def __init__(self, server: Server, attacks: dict[str, _attacks.Request], rate: float,
                 connections: int, deadline_s: float):  # fmt: skip
        self.server, self.rate, self.connections = server, rate, connections
        self.attacks = list(attacks.items())
        self.limit_s = deadline_s + SLACK_SECONDS
        self.stats = {name: AttackStats() for name in attacks}
        self._lock = threading.Lock()
        self._next = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.started = self.stopped = 0.0

    def start(self) -> None:
        self.started = time.monotonic()
        self._threads = [threading.Thread(target=self._run, daemon=True)
                         for _ in range(self.connections)]  # fmt: skip
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """No new attack after this; waits for those in flight to be answered."""
        self._stop.set()
        self.stopped = time.monotonic()
        for thread in self._threads:
            thread.join(self.limit_s + 60)

    @property
    def sent(self) -> int:
        return sum(stats.sent for stats in self.stats.values())

    @property
    def failures(self) -> list[str]:
        return [f for stats in self.stats.values() for f in stats.failures]

    def _run(self) -> None:
        while True:
            with self._lock:
                slot = self._next
                self._next += 1
            wait = self.started + slot / self.rate - time.monotonic()
            if self._stop.wait(max(wait, 0)):
                return
            name, request = self.attacks[slot % len(self.attacks)]
            self._send(name, request)

    def _send(self, name: str, request: _attacks.Request) -> None:
        stats = self.stats[name]
        conn = http.client.HTTPConnection(HOST, self.server.port, timeout=self.limit_s + 30)
        began = time.perf_counter()
        try:
            conn.request(request.method, request.path, body=request.body,
                         headers=request.headers)  # fmt: skip
            response = conn.getresponse()
            answer = response.read()
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            with self._lock:
                stats.sent += 1
                stats.answers[type(exc).__name__] += 1
                stats.failures.append(f"{name}: {exc!r} after {time.perf_counter() - began:.1f} s")
            return
        finally:
            conn.close()
        took = time.perf_counter() - began
        kind = ""
        if status >= 400:
            try:
                kind = str(json.loads(answer)["type"]).rsplit("/", 1)[-1]
            except (ValueError, KeyError, TypeError):
                kind = "(not a problem document)"
        with self._lock:
            stats.sent += 1
            stats.answers[f"{status} {kind}".strip()] += 1
            stats.max_s = max(stats.max_s, took)
            if status >= 500 and not (status == 503 and kind in ACCEPTED_503):
                stats.failures.append(f"{name}: {status} {kind} {answer[:200]!r}")
            if took > self.limit_s:
                stats.failures.append(f"{name}: {status} after {took:.1f} s")


# -- /metrics --------------------------------------------------------------------------------


def _quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """A quantile from cumulative histogram buckets, interpolated linearly within one."""
    total = buckets[-1][1]
    if total == 0:
        return float("nan")
    rank, lower, below = q * total, 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (rank - below) / max(count - below, 1e-12)
        lower, below = bound, count
    return lower


def server_view(server: Server) -> dict[tuple[str, str], dict]:
    from prometheus_client.parser import text_string_to_metric_families

    status, text = call(server, "GET", "/metrics")
    assert status == 200
    counts: dict[tuple[str, str], dict] = {}
    buckets: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for family in text_string_to_metric_families(text.decode()):
        for s in family.samples:
            if s.name == "autograd_http_requests_total":
                key = (s.labels["method"], s.labels["route"])
                entry = counts.setdefault(key, {"count": 0, "errors": 0})
                entry["count"] += s.value
                if int(s.labels["status"]) >= 400:
                    entry["errors"] += s.value
            elif s.name == "autograd_http_request_duration_seconds_bucket":
                key = (s.labels["method"], s.labels["route"])
                per = buckets.setdefault(key, {})
                bound = float(s.labels["le"])
                per[bound] = per.get(bound, 0) + s.value
    for key, entry in counts.items():
        cumulative = sorted(buckets.get(key, {}).items())
        entry["p50_ms"] = _quantile(cumulative, 0.5) * 1000
        entry["p99_ms"] = _quantile(cumulative, 0.99) * 1000
    return counts


# -- main ------------------------------------------------------------------------------------


def _mib(kib: int) -> str:
    return f"{kib / 1024:.1f}"


def _default(name: str):
    """A setting's default: the value the server runs with (start_server passes on no
    AUTOGRAD_* variable of this environment)."""
    from service.settings import Settings

    return Settings.model_fields[name].default


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=60, help="measured seconds")
    parser.add_argument("--warmup", type=int, default=15, help="warm-up seconds")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sessions", type=int, default=32)
    parser.add_argument("--mix", default="5:3:2", help="evaluate:train:state")
    parser.add_argument("--redis", action="store_true", help="Redis store instead of SQLite")
    parser.add_argument(
        "--log-level",
        default="warning",
        help="server log level (info writes an access line per request)",
    )
    parser.add_argument("--max-growth", type=float, default=0.10,
                        help="largest RSS growth after warm-up that passes")  # fmt: skip
    parser.add_argument("--hostile", type=float, default=0.1, metavar="FRACTION",
                        help="share of all requests that are attacks in a second measured "
                             "run after the clean one; 0: no hostile run")  # fmt: skip
    parser.add_argument("--hostile-connections", type=int, default=4,
                        help="most attacks in flight at once")  # fmt: skip
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: sudo apt-get install -y wrk")
    mix = tuple(int(part) for part in args.mix.split(":"))
    assert len(mix) == 3
    if not 0 <= args.hostile < 1:
        sys.exit("--hostile is a fraction of all requests: 0 <= FRACTION < 1")

    # Every loopback client is one address: the well-behaved sessions and the attacks' share
    # its cap on live sessions. Raise it only when they would not fit.
    settings: dict[str, str] = {}
    needed = args.sessions + (_attacks.SESSIONS if args.hostile else 0)
    cap = _default("max_client_sessions")
    if cap and needed > cap:
        settings["AUTOGRAD_MAX_CLIENT_SESSIONS"] = str(needed)
    deadline_s = _default("max_request_seconds")

    with tempfile.TemporaryDirectory(prefix="autograd-load-") as tmp:
        directory = Path(tmp)
        redis = None
        store = "sqlite"
        if args.redis:
            redis, store = start_redis(directory)
        server = start_server(directory, args.workers, store, args.log_level, settings)
        hostile = None
        try:
            sessions = make_sessions(server, args.sessions)
            if args.hostile:
                attacks = _attacks.prepare(lambda *request: call(server, *request))
            script = directory / "mix.lua"
            cycle = lua_script(sessions, mix, script)
            rss = {"before": server.rss()}
            warm = run_wrk(server, script, args.warmup, args.connections)
            rss["after warm-up"] = server.rss()
            run = run_wrk(server, script, args.duration, args.connections)
            rss["end"] = server.rss()
            if args.hostile:
                clean_rate = run["requests"] / (run["duration_us"] / 1e6)
                rate = clean_rate * args.hostile / (1 - args.hostile)
                hostile = Hostile(server, attacks, rate, args.hostile_connections, deadline_s)
                own_cpu = resource.getrusage(resource.RUSAGE_SELF)
                hostile.start()
                try:
                    attacked = run_wrk(server, script, args.duration, args.connections)
                finally:
                    hostile.stop()
                after = resource.getrusage(resource.RUSAGE_SELF)
                hostile_cpu = (after.ru_utime - own_cpu.ru_utime) + (
                    after.ru_stime - own_cpu.ru_stime
                )
                rss["end, hostile"] = server.rss()
                peaks = {pid: _peak_rss_kib(pid) for pid in server.workers()}
            view = server_view(server)
        finally:
            server.stop()
            if redis is not None:
                redis.terminate()
                redis.wait(10)

    seconds = run["duration_us"] / 1e6
    errors = sum(run["errors"].values()) + sum(warm["errors"].values())
    kind = "Redis (appendonly, everysec)" if args.redis else "SQLite"
    print(f"Autograd Service under load: {args.workers} workers, {kind} store, "
          f"{os.cpu_count()} CPUs, wrk -t1 -c{args.connections}, mix evaluate:train:state "
          f"{args.mix} over {args.sessions} sessions (a cycle of {cycle} requests)")  # fmt: skip
    for name, value in settings.items():
        print(f"server setting {name}={value}: every loopback client is one address, and "
              f"the run needs {needed} live sessions")  # fmt: skip
    print(
        f"warm-up {args.warmup} s: {warm['requests']} requests, "
        f"{warm['requests'] / (warm['duration_us'] / 1e6):.0f} req/s"
    )
    lat = run["latency_us"]
    print(f"measured {seconds:.1f} s: {run['requests']} requests, "
          f"{run['requests'] / seconds:.0f} req/s; latency p50 {lat['p50'] / 1000:.2f} ms, "
          f"p90 {lat['p90'] / 1000:.2f} ms, p99 {lat['p99'] / 1000:.2f} ms, "
          f"max {lat['max'] / 1000:.1f} ms")  # fmt: skip
    print(f"errors (warm-up and measured): {errors} {run['errors']}")
    cpu = run["server_cpu_s"] + run["wrk_cpu_s"]
    print(f"CPU over the measured run: servers {run['server_cpu_s']:.1f} s, wrk "
          f"{run['wrk_cpu_s']:.1f} s ({run['wrk_cpu_s'] / max(cpu, 1e-9):.0%} of the two), "
          f"of {seconds * (os.cpu_count() or 1):.0f} CPU-s available")  # fmt: skip
    hostile_failed = False
    if hostile is not None:
        errors += sum(attacked["errors"].values())
        hostile_failed = report_hostile(args, run, attacked, hostile, hostile_cpu, peaks)
    print("\nserver's view (/metrics, whole run incl. warm-up, setup and any attacks):")
    print(f"  {'route':45} {'count':>8} {'errors':>6} {'p50 ms':>7} {'p99 ms':>7}")
    for (method, route), entry in sorted(view.items(), key=lambda kv: -kv[1]["count"]):
        print(f"  {method + ' ' + route:45} {entry['count']:8.0f} {entry['errors']:6.0f} "
              f"{entry['p50_ms']:7.2f} {entry['p99_ms']:7.2f}")  # fmt: skip
    print("\nresident memory, MiB (supervisor + workers):")
    for stage, by_pid in rss.items():
        parts = " + ".join(_mib(v) for v in by_pid.values())
        print(f"  {stage:14} {_mib(sum(by_pid.values())):>7}   ({parts})")
    warm_total, end_total = sum(rss["after warm-up"].values()), sum(rss["end"].values())
    growth = end_total / warm_total - 1
    print(f"  growth after warm-up: {growth:+.1%} (limit {args.max_growth:.0%}, clean run)")
    if hostile is not None:
        print(f"  workers' peak (VmHWM) over everything: "
              f"{' + '.join(_mib(v) for v in peaks.values())}")  # fmt: skip
    failed = errors > 0 or growth > args.max_growth or hostile_failed
    return 1 if failed else 0


def report_hostile(args, clean: dict, attacked: dict, hostile: Hostile, cpu_s: float,
                   peaks: dict[int, int]) -> bool:  # fmt: skip
    """Prints the hostile run against the clean one; True if an attack was answered as a
    failure (see the module's docstring)."""
    seconds = attacked["duration_us"] / 1e6
    sent = hostile.sent
    share = sent / max(sent + attacked["requests"], 1)
    print(f"\nhostile run {seconds:.1f} s: {attacked['requests']} well-behaved requests, "
          f"{attacked['requests'] / seconds:.0f} req/s, errors {attacked['errors']}")  # fmt: skip
    print(f"  attacks: {sent} sent ({sent / seconds:.1f}/s; paced at {hostile.rate:.1f}/s = "
          f"{args.hostile:.0%} of the clean rate's total, at most {hostile.connections} in "
          f"flight) = {share:.1%} of all requests; this process's CPU {cpu_s:.1f} s")  # fmt: skip
    if share < args.hostile / 2:
        print("  (short of the pace: every connection was busy with an attack when the next "
              "was due; more --hostile-connections puts more attacks in flight)")  # fmt: skip
    c, h = clean["latency_us"], attacked["latency_us"]
    print(f"\nwell-behaved latency (wrk), ms   {'clean':>9} {'hostile':>9} {'ratio':>6}")
    for key in ("p50", "p90", "p99", "max"):
        print(f"  {key:30} {c[key] / 1000:9.2f} {h[key] / 1000:9.2f} "
              f"{h[key] / max(c[key], 1):6.2f}")  # fmt: skip
    ratio = h["p99"] / max(c["p99"], 1)
    verdict = "met" if ratio <= 2 else "NOT met"
    print(f"  goal: hostile p99 within 2x of clean -- {verdict} ({ratio:.2f}x)"
          f"   [2 shared cores: figures are noisy]")  # fmt: skip
    print(f"\nattacks' answers (failure: a 5xx other than 503 {' / '.join(ACCEPTED_503)}, "
          f"or slower than {hostile.limit_s:.0f} s):")  # fmt: skip
    print(f"  {'attack':20} {'sent':>5} {'max s':>6}  answers")
    for name, stats in hostile.stats.items():
        answers = ", ".join(f"{k} x{v}" for k, v in sorted(stats.answers.items()))
        print(f"  {name:20} {stats.sent:5} {stats.max_s:6.2f}  {answers}")
    failures = hostile.failures
    for failure in failures[:10]:
        print(f"  FAILURE {failure}")
    if len(failures) > 10:
        print(f"  ... {len(failures) - 10} more failures")
    return bool(failures)


if __name__ == "__main__":
    sys.exit(main())
