"""Engine vs PyTorch vs plain numpy on the issue's three workloads, measured in one run.

Each library runs in its own worker process (so allocator state and imports don't leak
between them), the workers take turns round after round, every process is pinned to the
same thread count, and we report medians of the per-iteration samples:

  (a) Q = 3a³ − b² forward + Q.sum().backward() on 2-element tensors (per-op overhead)
  (b) the same on 10⁶ float32 elements, plus peak memory above the inputs
  (c) MLP 784-256-256-10, batch 64, ReLU, cross_entropy, backward, SGD(lr=0.01, momentum=0.9)

    python benchmarks/engine_vs_torch.py [--threads 1] [--rounds 5] [--samples 10]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIBS = ("engine", "torch", "numpy")
CASES = ("a", "b", "c")


# --- workloads ---------------------------------------------------------------------------
def seed_q(lib, n):
    import numpy as np

    rng = np.random.default_rng(0)
    a0 = rng.random(n, dtype=np.float32) + 1
    b0 = rng.random(n, dtype=np.float32) + 1
    if lib == "numpy":

        def step():
            q = 3 * (a0 * a0 * a0) - b0 * b0
            _ = q.sum()
            g = np.ones_like(q)
            return 9 * (a0 * a0) * g, -2 * b0 * g

        return step
    m = _module(lib)
    a = m.tensor(a0, requires_grad=True)
    b = m.tensor(b0, requires_grad=True)

    def step():
        a.grad = b.grad = None
        q = 3 * a**3 - b**2
        q.sum().backward()

    return step


def mlp(lib, batch=64, sizes=(784, 256, 256, 10)):
    import numpy as np

    rng = np.random.default_rng(0)
    ws = [
        (rng.standard_normal((o, i)) / np.sqrt(i)).astype(np.float32)
        for i, o in zip(sizes[:-1], sizes[1:], strict=True)
    ]
    bs = [np.zeros(o, np.float32) for o in sizes[1:]]
    x0 = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    y0 = rng.integers(0, sizes[-1], batch)
    if lib == "numpy":
        return _numpy_mlp(ws, bs, x0, y0)
    m = _module(lib)
    params = []
    for w, b in zip(ws, bs, strict=True):
        params += [m.tensor(w, requires_grad=True), m.tensor(b, requires_grad=True)]
    opt = m.optim.SGD(params, lr=0.01, momentum=0.9)
    x, y = m.tensor(x0), m.tensor(y0)
    F = m.nn.functional

    def step():
        opt.zero_grad()
        h = x
        for i in range(0, len(params), 2):
            h = F.linear(h, params[i], params[i + 1])
            if i + 2 < len(params):
                h = F.relu(h)
        loss = F.cross_entropy(h, y)
        loss.backward()
        opt.step()

    return step


def _numpy_mlp(ws, bs, x, y):
    """What a careful hand-written numpy step costs: the floor for any numpy engine."""
    import numpy as np

    bufs = [np.zeros_like(w) for w in ws] + [np.zeros_like(b) for b in bs]
    n = len(ws)

    def step():
        hs, pre = [x], []
        for i in range(n):
            z = hs[-1] @ ws[i].T + bs[i]
            pre.append(z)
            hs.append(np.maximum(z, 0) if i < n - 1 else z)
        z = hs[-1]
        z = z - z.max(1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(1, keepdims=True)
        p[np.arange(len(y)), y] -= 1
        g = p / len(y)
        for i in reversed(range(n)):
            gw, gb = g.T @ hs[i], g.sum(0)
            if i:
                g = (g @ ws[i]) * (pre[i - 1] > 0)
            for buf, grad, par in ((bufs[i], gw, ws[i]), (bufs[n + i], gb, bs[i])):
                buf *= 0.9
                buf += grad
                par -= 0.01 * buf

    return step


def _module(lib):
    if lib == "torch":
        import torch

        return torch
    sys.path.insert(0, ROOT)
    import engine

    return engine


def build(lib, case):
    if case == "a":
        return seed_q(lib, 2)
    if case == "b":
        return seed_q(lib, 10**6)
    return mlp(lib)


# --- worker ------------------------------------------------------------------------------
def worker(lib, case, samples, threads):
    if lib == "torch":
        import torch

        torch.set_num_threads(threads)
    step = build(lib, case)
    inner = 2000 if case == "a" else (5 if case == "b" else 20)
    for _ in range(max(3, inner // 10)):
        step()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = []
    for _ in range(samples):
        t0 = time.perf_counter()
        for _ in range(inner):
            step()
        out.append((time.perf_counter() - t0) / inner)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"times": out, "rss_kb": peak, "rss_growth_kb": peak - base}))


def bench_env(threads):
    """Every worker pinned to the same thread count. This workplace sets OPENBLAS_CORETYPE
    and OPENBLAS_L2_SIZE for old OpenBLAS builds; they slow a current numpy's BLAS, so
    benchmarks run without both (as a deployment would), never the tests."""
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("OPENBLAS_L2_SIZE", None)
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[k] = str(threads)
    return env


def blas_info(threads):
    """Which BLAS kernel numpy runs under bench_env (threadpoolctl, when installed)."""
    code = (
        "import numpy, json\n"
        "try:\n"
        "    from threadpoolctl import threadpool_info\n"
        "    print(json.dumps([(i.get('internal_api'), i.get('architecture'),"
        " i.get('num_threads')) for i in threadpool_info()]))\n"
        "except ImportError:\n"
        "    print('threadpoolctl not installed')\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code],
        env=bench_env(threads),
        capture_output=True,
        text=True,
        check=False,
    )
    return res.stdout.strip()


def run_worker(lib, case, samples, threads):
    env = bench_env(threads)
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        lib,
        "--case",
        case,
        "--samples",
        str(samples),
        "--threads",
        str(threads),
    ]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if res.returncode:
        return {"error": res.stderr.strip().splitlines()[-1] if res.stderr else "failed"}
    return json.loads(res.stdout.strip().splitlines()[-1])


def peak_memory_b(lib, threads):
    """Peak memory of one (b) step above what was live before it.

    numpy reports its allocations to tracemalloc, so for the engine that is exact (the RSS
    would hide it: freed blocks stay in the heap for reuse). torch's are invisible to
    tracemalloc; it frees to the OS, so its peak RSS (VmHWM, reset before the step) is."""
    if lib == "torch":
        probe = (
            "hwm=lambda k: int([l for l in open('/proc/self/status') if l.startswith(k)][0]"
            ".split()[1])*1024;"
            "r0=hwm('VmRSS:');open('/proc/self/clear_refs','w').write('5');step();"
            "print(hwm('VmHWM:')-r0)"
        )
    else:
        probe = (
            "import tracemalloc;tracemalloc.start();r0=tracemalloc.get_traced_memory()[0];"
            "step();print(tracemalloc.get_traced_memory()[1]-r0)"
        )
    code = (
        f"import sys;sys.path.insert(0,{ROOT!r});"
        "import benchmarks.engine_vs_torch as B;"
        f"step=B.build({lib!r},'b');step();" + probe
    )
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    res = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    if res.returncode:
        return None
    return int(res.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker")
    ap.add_argument("--case", default="a")
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cases", default="abc")
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker, args.case, args.samples, args.threads)
    times = {(lib, c): [] for lib in LIBS for c in args.cases}
    errors = {}
    for _ in range(args.rounds):  # take turns, so drift hits every library alike
        for c in args.cases:
            for lib in LIBS:
                r = run_worker(lib, c, args.samples, args.threads)
                if "error" in r:
                    errors[(lib, c)] = r["error"]
                else:
                    times[(lib, c)] += r["times"]
    import numpy
    import torch

    print(
        f"python {sys.version.split()[0]}, numpy {numpy.__version__}, torch "
        f"{torch.__version__}, threads {args.threads}, cpu {os.cpu_count()} cores, "
        f"{args.rounds} rounds x {args.samples} samples"
    )
    labels = {"a": "(a) Q on 2 elements", "b": "(b) Q on 1e6 float32", "c": "(c) MLP train step"}
    print(
        f"{'workload':24} {'engine':>10} {'torch':>10} {'numpy':>10} {'eng/torch':>10} "
        f"{'eng/numpy':>10}"
    )
    for c in args.cases:
        med = {lib: statistics.median(times[(lib, c)]) if times[(lib, c)] else None for lib in LIBS}
        cells = [f"{med[lib] * 1e6:9.1f}u" if med[lib] else f"{'err':>10}" for lib in LIBS]
        ratio_t = med["engine"] / med["torch"] if med["engine"] and med["torch"] else float("nan")
        ratio_n = med["engine"] / med["numpy"] if med["engine"] and med["numpy"] else float("nan")
        print(f"{labels[c]:24} {' '.join(cells)} {ratio_t:10.2f} {ratio_n:10.2f}")
    if "b" in args.cases:
        inputs = 2 * 4 * 10**6
        for lib in ("engine", "torch", "numpy"):
            peak = peak_memory_b(lib, args.threads)
            if peak is not None:
                print(
                    f"peak memory of one (b) step, {lib}: {peak / 2**20:.1f} MiB "
                    f"({peak / inputs:.2f} x the 7.6 MiB of inputs)"
                )
    for k, v in errors.items():
        print(f"error {k}: {v}")


if __name__ == "__main__":
    main()
