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

    python benchmarks/load.py [--duration 60] [--warmup 15] [--connections 8] [--redis]

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
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

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


def start_server(directory: Path, workers: int, store: str, log_level: str) -> Server:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOGRAD_")}
    env.update({"AUTOGRAD_DATA_DIR": str(directory / "data"), "AUTOGRAD_STORE": store,
                "AUTOGRAD_LOG_LEVEL": log_level})  # fmt: skip
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
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: sudo apt-get install -y wrk")
    mix = tuple(int(part) for part in args.mix.split(":"))
    assert len(mix) == 3

    with tempfile.TemporaryDirectory(prefix="autograd-load-") as tmp:
        directory = Path(tmp)
        redis = None
        store = "sqlite"
        if args.redis:
            redis, store = start_redis(directory)
        server = start_server(directory, args.workers, store, args.log_level)
        try:
            sessions = make_sessions(server, args.sessions)
            script = directory / "mix.lua"
            cycle = lua_script(sessions, mix, script)
            rss = {"before": server.rss()}
            warm = run_wrk(server, script, args.warmup, args.connections)
            rss["after warm-up"] = server.rss()
            run = run_wrk(server, script, args.duration, args.connections)
            rss["end"] = server.rss()
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
    print("\nserver's view (/metrics, whole run incl. warm-up and setup):")
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
    print(f"  growth after warm-up: {growth:+.1%} (limit {args.max_growth:.0%})")
    failed = errors > 0 or growth > args.max_growth
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
