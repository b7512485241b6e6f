"""HTTP throughput and large-tensor round trips, against a real server, in one run.

Starts `python -m service serve --host 127.0.0.1 --port <free> --workers 1` as a subprocess
and measures it from the same machine, over loopback only:

  1. requests/s and p50/p99 latency of the seed's Q evaluate (`POST /v1/evaluate`) and of
     `GET /livez`, with the same wrk settings (threads, connections, duration), and the
     ratio Q / livez (target >= 0.6 with one worker);
  2. a 10^6-element `y = x * 2` with backward (from `s = y.sum()`, so the request carries
     one tensor and the answer two: `y` and x's gradient), as base64 and as JSON lists: the
     client's round trip beside the engine's own time for the same program in-process
     (target: base64 adds <= 40 ms to the engine's time).

The load generator is Debian's `wrk` (C, event-driven: it is not the bottleneck; a Python
client would be). Install it with `sudo apt-get install -y wrk`. With two or more CPUs the
server is pinned to one CPU and wrk to another, so the figures are the server's CPU-bound
throughput on one core. The whole run takes about a minute with the defaults.

    python benchmarks/http_bench.py [--duration 10] [--connections 16] [--threads 2]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._server import HOST, SEED  # noqa: E402
from benchmarks._server import free_port as _free_port  # noqa: E402

SEED_ANSWER = {"Q": [-12.0, 65.0], "a": [36.0, 81.0], "b": [-12.0, -8.0]}
BIG_N = 1_000_000
BIG_EXPR = "y = x * 2; s = y.sum()"
TARGET_RATIO = 0.6
TARGET_B64_MS = 40.0


# -- the server -----------------------------------------------------------------------------


def _pin(cpu: int | None):
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def _cpus() -> tuple[int | None, int | None]:
    """(server CPU, wrk CPU): two distinct CPUs this process may use, or no pinning."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return None, None
    return (cpus[0], cpus[1]) if len(cpus) >= 2 else (None, None)


def start_server(port: int, data_dir: Path, log_path: Path, cpu: int | None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOGRAD_")}
    env["AUTOGRAD_DATA_DIR"] = str(data_dir)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "service", "serve"]
    command += ["--host", HOST, "--port", str(port), "--workers", "1"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=log, preexec_fn=_pin(cpu)
        )
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            sys.exit(f"server exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            status, _ = request(port, "GET", "/livez")
            if status == 200:
                return proc
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            sys.exit(f"server not live after 30 s:\n{log_path.read_text()}")
        time.sleep(0.05)


def request(
    port: int, method: str, path: str, body: bytes | None = None, conn=None
) -> tuple[int, bytes]:
    own = conn is None
    conn = conn or http.client.HTTPConnection(HOST, port, timeout=60)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        if own:
            conn.close()


# -- wrk ------------------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * _UNITS[unit]


def _lua(body: bytes, directory: Path) -> Path:
    script = directory / "evaluate.lua"
    # A Lua long string holds the UTF-8 body byte for byte (no escapes inside [==[ ]==]).
    script.write_bytes(
        b'wrk.method = "POST"\n'
        b'wrk.headers["Content-Type"] = "application/json"\n'
        b"wrk.body = [==[" + body + b"]==]\n"
    )
    return script


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux), 0 where /proc is missing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wrk(
    url: str, args: argparse.Namespace, duration: float, cpu: int | None, server: int, script=None
):
    """One wrk run; with how busy the server and wrk kept their CPUs meanwhile (a server
    near 100% and wrk well below it: the server is what is measured)."""
    command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{duration:g}s"]
    command += ["--latency", "--timeout", "10s"]
    if script is not None:
        command += ["-s", str(script)]
    server_before, wrk_before = _cpu_seconds(server), _children_cpu_seconds()
    start = time.perf_counter()
    out = subprocess.run(
        [*command, url], capture_output=True, text=True, check=True, preexec_fn=_pin(cpu)
    ).stdout
    elapsed = time.perf_counter() - start
    server_busy = (_cpu_seconds(server) - server_before) / elapsed
    wrk_busy = (_children_cpu_seconds() - wrk_before) / elapsed
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if bad or errors:
        sys.exit(f"wrk saw failures against {url}:\n{out}")
    return {
        "rps": rps,
        "p50_ms": p50,
        "p99_ms": p99,
        "requests": total,
        "server_cpu": server_busy,
        "cpu_seconds": server_busy * elapsed,
        "wrk_cpu": wrk_busy,
    }


def combine(runs: list[dict]) -> dict:
    """Rounds of one endpoint as one figure: all requests over all the time; the median
    p50 and the worst p99."""
    return {
        "rps": sum(r["rps"] for r in runs) / len(runs),
        "p50_ms": statistics.median(r["p50_ms"] for r in runs),
        "p99_ms": max(r["p99_ms"] for r in runs),
        "rounds": [r["rps"] for r in runs],
        "server_cpu": statistics.mean(r["server_cpu"] for r in runs),
        # Requests per second of the server's own CPU time: what one core serves even when
        # other processes on the machine take some of it.
        "per_cpu": sum(r["requests"] for r in runs) / sum(r["cpu_seconds"] for r in runs),
        "wrk_cpu": statistics.mean(r["wrk_cpu"] for r in runs),
    }


# -- 10^6 elements: base64 vs JSON lists ------------------------------------------------------


def big_bodies(n: int) -> dict[str, tuple[bytes, np.ndarray]]:
    """The request in both forms (JSON numbers in float32's shortest form, as orjson writes
    them, which keeps the body under the default 16 MiB limit)."""
    x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    b64 = {"b64": base64.b64encode(x.astype("<f4").tobytes()).decode(), "shape": [n]}
    data = {"data": x}
    bodies = {}
    for form, wire, binary in (("base64", b64, True), ("JSON lists", data, False)):
        body = {
            "expr": BIG_EXPR,
            "inputs": {"x": {**wire, "dtype": "float32", "requires_grad": True}},
            "outputs": ["y"],
            "backward": {"output": "s"},
            "binary": binary,
        }
        bodies[form] = (orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), x)
    return bodies


def _decoded(tensor: dict) -> np.ndarray:
    if "b64" in tensor:
        return np.frombuffer(base64.b64decode(tensor["b64"]), "<f4")
    return np.asarray(tensor["data"], np.float32)


def engine_ms(x: np.ndarray, repeats: int) -> float:
    """The engine's own time for the same program: parse (cached), check, forward, backward
    on arrays already in memory, no wire format."""
    import engine
    from engine.program import check, parse_expr, run

    samples = []
    for _ in range(repeats):
        xt = engine.tensor(x, requires_grad=True)
        start = time.perf_counter()
        program = parse_expr(BIG_EXPR)
        check(program, {"x": xt}, backward=True)
        out = run(program, {"x": xt})
        out["s"].backward()
        samples.append(time.perf_counter() - start)
        assert np.array_equal(xt.grad.numpy(), np.full_like(x, 2))
    return statistics.median(samples) * 1e3


def round_trips(port: int, body: bytes, x: np.ndarray, repeats: int) -> dict:
    conn = http.client.HTTPConnection(HOST, port, timeout=120)
    samples = []
    try:
        for i in range(repeats + 1):  # the first one warms up
            start = time.perf_counter()
            status, raw = request(port, "POST", "/v1/evaluate", body, conn)
            elapsed = time.perf_counter() - start
            if status != 200:
                sys.exit(f"evaluate of {BIG_N} elements answered {status}: {raw[:500]!r}")
            if i:
                samples.append(elapsed)
    finally:
        conn.close()
    answer = json.loads(raw)
    assert np.array_equal(_decoded(answer["outputs"]["y"]), x * 2), "wrong y"
    assert np.array_equal(_decoded(answer["grads"]["x"]), np.full_like(x, 2)), "wrong grad"
    return {"ms": statistics.median(samples) * 1e3, "request_mb": len(body) / 1e6}


# -- report ---------------------------------------------------------------------------------


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "-"


def machine() -> list[str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout
    wrk_version = (wrk_version.split("[")[0].strip() or "?").removeprefix("wrk ")
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    libs = ", ".join(
        f"{name} {_version(name)}"
        for name in ("fastapi", "starlette", "uvicorn", "pydantic", "orjson", "numpy", "uvloop")
    )
    return [
        f"machine: {cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}",
        f"python {platform.python_version()}; {libs}; wrk {wrk_version}; commit {commit or '?'}",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per endpoint")
    parser.add_argument(
        "--rounds", type=int, default=5, help="turns the endpoints take (duration split)"
    )
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--repeats", type=int, default=5, help="10^6-element requests per form")
    args = parser.parse_args()

    if shutil.which("wrk") is None:
        print(
            "http_bench needs wrk, the HTTP load generator:\n"
            "  Debian/Ubuntu: sudo apt-get install -y wrk\n"
            "  macOS:         brew install wrk",
            file=sys.stderr,
        )
        return 2

    server_cpu, wrk_cpu = _cpus()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="http_bench-") as tmp:
        tmp = Path(tmp)
        port = _free_port()
        seed = json.dumps(SEED, ensure_ascii=False).encode()
        script = _lua(seed, tmp)
        proc = start_server(port, tmp / "data", tmp / "server.log", server_cpu)
        try:
            status, raw = request(port, "POST", "/v1/evaluate", seed)
            answer = json.loads(raw)
            got = {
                "Q": answer["outputs"]["Q"]["data"],
                "a": answer["grads"]["a"]["data"],
                "b": answer["grads"]["b"]["data"],
            }
            assert status == 200 and got == SEED_ANSWER, (status, raw)

            base = f"http://{HOST}:{port}"
            wrk(f"{base}/livez", args, 1, wrk_cpu, proc.pid)  # warm-up
            wrk(f"{base}/v1/evaluate", args, 1, wrk_cpu, proc.pid, script)
            # The two endpoints take turns, so a change in the machine's load during the
            # run weighs on both alike.
            slice_ = args.duration / args.rounds
            rounds = [
                (
                    wrk(f"{base}/livez", args, slice_, wrk_cpu, proc.pid),
                    wrk(f"{base}/v1/evaluate", args, slice_, wrk_cpu, proc.pid, script),
                )
                for _ in range(args.rounds)
            ]
            livez = combine([r[0] for r in rounds])
            q = combine([r[1] for r in rounds])

            bodies = big_bodies(BIG_N)
            big = {}
            for form, (body, x) in bodies.items():
                big[form] = round_trips(port, body, x, args.repeats)
            x = bodies["base64"][1]
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        engine = engine_ms(x, args.repeats)

    ratio = q["rps"] / livez["rps"]
    by_round = [a / b for a, b in zip(q["rounds"], livez["rounds"], strict=True)]
    b64_extra = big["base64"]["ms"] - engine
    pinning = (
        f"server pinned to CPU {server_cpu}, wrk to CPU {wrk_cpu}"
        if server_cpu is not None
        else "no CPU pinning (fewer than 2 CPUs)"
    )
    lines = machine()
    lines.append(
        f"load average (1 min) before / after the run: {load_before:.2f} / "
        f"{os.getloadavg()[0]:.2f} (other processes share these CPUs: see server CPU below)"
    )
    lines.append(
        f"wrk: {args.threads} threads, {args.connections} connections, {args.duration:g} s "
        f"per endpoint in {args.rounds} alternating rounds; one uvicorn worker; {pinning}"
    )
    lines += [
        "",
        "| request | requests/s | p50 | p99 | server CPU | per server CPU-second | wrk CPU |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {label} | {r['rps']:,.0f} | {r['p50_ms']:.2f} ms | {r['p99_ms']:.2f} ms "
            f"| {r['server_cpu']:.0%} | {r['per_cpu']:,.0f} | {r['wrk_cpu']:.0%} |"
            for label, r in (
                ("`GET /livez`", livez),
                ("`POST /v1/evaluate`, the seed's Q with backward", q),
            )
        ),
        "",
        f"Q evaluate / livez throughput: **{ratio:.3f}** (target >= {TARGET_RATIO}: "
        f"{'met' if ratio >= TARGET_RATIO else 'NOT met'}); by round: "
        + ", ".join(f"{r:.2f}" for r in by_round)
        + f"; per server CPU-second: {q['per_cpu'] / livez['per_cpu']:.3f}",
        *(
            [
                "WARNING: the server did not get a whole CPU (other processes were busy): "
                "requests/s undercount, and the ratio per server CPU-second is the one to read."
            ]
            if min(livez["server_cpu"], q["server_cpu"]) < 0.9
            else []
        ),
        "",
        f"`{BIG_EXPR}` on {BIG_N:,} float32 elements, backward from `s`, answering `y` "
        f"and x's gradient; median of {args.repeats}:",
        "",
        "| form | request body | client round trip | engine alone | added by HTTP + wire |",
        "|---|---:|---:|---:|---:|",
    ]
    for form, r in big.items():
        lines.append(
            f"| {form} | {r['request_mb']:.1f} MB | {r['ms']:.1f} ms | {engine:.1f} ms "
            f"| {r['ms'] - engine:.1f} ms |"
        )
    lines += [
        "",
        f"base64 round trip adds **{b64_extra:.1f} ms** to the engine's own time "
        f"(target <= {TARGET_B64_MS:g} ms: {'met' if b64_extra <= TARGET_B64_MS else 'NOT met'})",
    ]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
