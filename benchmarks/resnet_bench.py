"""The seed tutorial's ResNet-18 training step — forward, `(prediction - labels).sum()`,
backward, SGD(lr=1e-2, momentum=0.9).step() — at 1x3x64x64 and 8x3x64x64, three ways:

  engine  engine.models.resnet18 in this repository's process-per-measurement worker
  torch   the same architecture in torch (tests/engine/test_resnet.py's torchvision copy:
          torchvision is not installed beside this torch build)
  http    POST /v1/sessions/{id}/train on a session made from the resnet18 template, to a real
          `python -m service serve` (SQLite store), from a keep-alive http.client connection,
          the batch as base64 tensors encoded once;
          and, as a second figure, 8 steps per call (`batches`), so 8 steps share one commit

Each measurement runs in its own process; they take turns round after round (so drift on a
shared machine hits all alike), every process is pinned to --threads BLAS/torch threads, and
the medians of all samples are reported. Peak memory of training: in each fresh process, the
peak RSS over all its steps (VmHWM, reset through /proc/<pid>/clear_refs once the model, the
optimizer and the data are built; for http, the server's once the session is made) minus the
RSS at that point — so momentum buffers, gradients, activations and allocator slack count
alike for the three. (torch's CPU allocations keep their pages between steps here, so the
per-step tracemalloc-vs-VmHWM method of benchmarks/engine_vs_torch.py reads 0 for torch; the
engine's exact tracemalloc peak of one steady step is printed beside.)

What the HTTP step spends besides the engine is broken down in-process: the session layer
alone (decode the batch, check and run the program, rebuild the optimizer, gather the changes;
no HTTP, no store), and the SQLite store: reading a ResNet-18 session (what a worker that did
not compute the last step does before replaying), committing a step as its journal entry (the
request), and committing the whole state (parameters, gradients and momentum: 3 x 46.8 MB),
which a checkpoint does once the entries' replay would pass AUTOGRAD_JOURNAL_MAX_REPLAY_SECONDS.

Targets (issue 5): engine / torch <= 1.0 at batch 1 and <= 1.4 at batch 8; http <= 1.15 x
engine; peak memory <= 1.5 x torch's.

    python benchmarks/resnet_bench.py [--rounds 3] [--samples 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.engine_vs_torch import bench_env, blas_info  # noqa: E402

BATCHES = (1, 8)
AMORTIZED = 8  # steps per `train` call in the amortized HTTP measurement
LIBS = ("engine", "torch", "http")
LOSS = "loss = (output - labels).sum()"
SGD = {"type": "sgd", "lr": 1e-2, "momentum": 0.9}


def _data(batch: int):
    import numpy as np

    rng = np.random.default_rng(0)  # the tutorial's torch.rand data and labels
    x = rng.random((batch, 3, 64, 64), dtype=np.float32)
    labels = rng.random((batch, 1000), dtype=np.float32)
    return x, labels


def _proc_kb(pid: int | str, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def _reset_peak(pid: int | str) -> None:
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


# -- in-process steps --------------------------------------------------------------------------


def engine_step(batch: int):
    import engine
    from engine.models import resnet18

    engine.manual_seed(0)
    model = resnet18()
    opt = engine.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)
    x0, l0 = _data(batch)
    x, labels = engine.tensor(x0), engine.tensor(l0)

    def step():
        opt.zero_grad()
        loss = (model(x) - labels).sum()
        loss.backward()
        opt.step()

    return step


def torch_step(batch: int, threads: int):
    import torch

    from tests.engine.test_resnet import ResNet

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = ResNet()
    opt = torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)
    x0, l0 = _data(batch)
    x, labels = torch.from_numpy(x0), torch.from_numpy(l0)

    def step():
        opt.zero_grad()
        loss = (model(x) - labels).sum()
        loss.backward()
        opt.step()

    return step


def _median_samples(step, samples: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        step()
    out = []
    for _ in range(samples):
        start = time.perf_counter()
        step()
        out.append(time.perf_counter() - start)
    return out


def _traced_peak(step) -> int:
    """The engine: bytes one steady step allocates above what was live before it."""
    import tracemalloc

    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    step()
    peak = tracemalloc.get_traced_memory()[1] - before
    tracemalloc.stop()
    return peak


# -- over HTTP -----------------------------------------------------------------------------------


def _tensor(array) -> dict:
    return {"b64": base64.b64encode(array.tobytes()).decode(), "shape": list(array.shape),
            "dtype": "float32"}  # fmt: skip


def http_step(batch: int, samples: int, threads: int) -> dict:
    """Start a server, make a resnet18 session, time /train; the server's peak of one step."""
    import http.client

    import httpx

    from benchmarks._server import free_port, wait_live

    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in bench_env(threads).items() if not k.startswith("AUTOGRAD_")}
        env.update(AUTOGRAD_DATA_DIR=tmp, AUTOGRAD_LOG_LEVEL="warning")
        proc = subprocess.Popen([sys.executable, "-m", "service", "serve", "--port", str(port)],
                                cwd=ROOT, env=env)  # fmt: skip
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
                wait_live(client, proc)
                created = client.post("/v1/sessions", json={
                    "model": {"name": "resnet18", "num_classes": 1000, "seed": 0},
                    "optimizer": SGD})  # fmt: skip
                created.raise_for_status()
                session, token = created.json()["id"], created.json()["token"]
                x, labels = _data(batch)
                body = json.dumps({"inputs": {"input": _tensor(x), "labels": _tensor(labels)},
                                   "expr": LOSS, "loss": "loss"}).encode()  # fmt: skip
                headers = {"content-type": "application/json",
                           "authorization": f"Bearer {token}"}  # fmt: skip
                path = f"/v1/sessions/{session}/train"

                # Steps from a keep-alive http.client connection, the leanest client Python
                # has, so that the figure is the server's (httpx adds ~0.25 ms a call here).
                conn = http.client.HTTPConnection("127.0.0.1", port)

                def post(content):
                    conn.request("POST", path, body=content, headers=headers)
                    response = conn.getresponse()
                    response.read()
                    if response.status != 200:
                        raise RuntimeError(f"train answered {response.status}")

                def step():
                    post(body)

                before = _proc_kb(proc.pid, "VmRSS:")
                _reset_peak(proc.pid)
                times = _median_samples(step, samples)
                peak = _proc_kb(proc.pid, "VmHWM:") - before

                # `batches`: several steps in one call, one commit for all of them
                batch = {"inputs": {"input": _tensor(x), "labels": _tensor(labels)}}
                many = json.dumps({"batches": [batch] * AMORTIZED, "expr": LOSS,
                                   "loss": "loss"}).encode()  # fmt: skip

                def steps():
                    post(many)

                per_step = [t / AMORTIZED for t in _median_samples(steps, 2, warmup=1)]
                conn.close()
                return {"times": times, "peak": peak, "amortized": per_step}
        finally:
            proc.terminate()
            proc.wait(10)


# -- the HTTP step's parts, in process ---------------------------------------------------------


def breakdown(batch: int, samples: int) -> dict[str, float]:
    """The session layer alone (no HTTP, no store) and the SQLite store's read and commits."""
    import numpy as np

    from service.schemas.session_calls import SessionTrainCreate
    from service.schemas.sessions import SessionCreate
    from service.sessions import actions
    from service.sessions.build import record_from
    from service.sessions.journal import entry_name
    from service.settings import Settings
    from service.store import Changes
    from service.store.sqlite_store import SQLiteStore

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))
        create = SessionCreate.model_validate({"model": {"name": "resnet18", "seed": 0},
                                               "optimizer": SGD})  # fmt: skip
        record, _ = record_from(create, {}, settings)
        x, labels = _data(batch)
        document = {"inputs": {"input": _tensor(x), "labels": _tensor(labels)}, "expr": LOSS,
                    "loss": "loss"}  # fmt: skip
        body = SessionTrainCreate.model_validate(document)
        entry = np.frombuffer(json.dumps(document).encode(), dtype=np.uint8)
        store = SQLiteStore(Path(tmp) / "bench.sqlite3")
        store.create(record)
        changes = actions.train(record, body, settings).changes
        version = store.commit(record.id, 0, changes)
        record = store.get(record.id)

        layer = _median_samples(lambda: actions.train(record, body, settings), samples)
        gets, journals, checkpoints = [], [], []
        for _ in range(samples + 1):
            start = time.perf_counter()
            version = store.commit(record.id, version, changes)
            middle = time.perf_counter()
            store.get(record.id)
            checkpoints.append(middle - start)
            gets.append(time.perf_counter() - middle)
        for _ in range(4 * samples):  # a run of steps between two checkpoints
            start = time.perf_counter()
            name = entry_name(version + 1)
            version = store.commit(record.id, version, Changes(journal={name: entry}, steps=1))
            journals.append(time.perf_counter() - start)
        store.close()
    # live.py's rule: entries while their replay stays within the limit (and the count cap)
    step = statistics.median(layer)
    limits = Settings()
    every = min(limits.journal_max_entries, int(limits.journal_max_replay_seconds / step)) + 1
    checkpoint, journal = statistics.median(checkpoints[1:]), statistics.median(journals)
    return {"session layer (no HTTP, no store)": statistics.median(layer),
            "SQLite: read the session": statistics.median(gets[1:]),
            f"SQLite: commit one step as its journal entry ({entry.nbytes // 1000} kB)": journal,
            "SQLite: commit the whole state (checkpoint)": checkpoint,
            f"SQLite: per step, one checkpoint in {every}":
                ((every - 1) * journal + checkpoint) / every}  # fmt: skip


# -- driver ------------------------------------------------------------------------------------


def worker(lib: str, batch: int, samples: int, threads: int) -> None:
    if lib == "http":
        print(json.dumps(http_step(batch, samples, threads)))
        return
    if lib == "breakdown":
        print(json.dumps(breakdown(batch, samples)))
        return
    step = engine_step(batch) if lib == "engine" else torch_step(batch, threads)
    before = _proc_kb("self", "VmRSS:")
    _reset_peak("self")
    times = _median_samples(step, samples)
    peak = _proc_kb("self", "VmHWM:") - before
    traced = _traced_peak(step) if lib == "engine" else None
    print(json.dumps({"times": times, "peak": peak, "traced": traced}))


def run_worker(lib: str, batch: int, samples: int, threads: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", lib, "--batch", str(batch), "--samples",
           str(samples), "--threads", str(threads)]  # fmt: skip
    res = subprocess.run(cmd, env=bench_env(threads), capture_output=True, text=True, check=False)
    if res.returncode:
        return {"error": (res.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--samples", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker, args.batch, args.samples, args.threads)

    times = {(lib, b): [] for lib in LIBS for b in BATCHES}
    peaks: dict[tuple[str, int], list[int]] = {(lib, b): [] for lib in LIBS for b in BATCHES}
    traced: dict[int, list[int]] = {}
    amortized: dict[int, list[float]] = {}
    errors = {}
    for _ in range(args.rounds):  # take turns
        for batch in BATCHES:
            for lib in LIBS:
                result = run_worker(lib, batch, args.samples, args.threads)
                if "error" in result:
                    errors[(lib, batch)] = result["error"]
                    continue
                times[(lib, batch)] += result["times"]
                peaks[(lib, batch)].append(result["peak"])
                if result.get("traced") is not None:
                    traced.setdefault(batch, []).append(result["traced"])
                if result.get("amortized") is not None:
                    amortized.setdefault(batch, []).extend(result["amortized"])
    parts = {b: run_worker("breakdown", b, args.samples, args.threads) for b in BATCHES}

    import numpy
    import torch

    print(f"ResNet-18 train step (forward, (prediction - labels).sum(), backward, SGD momentum); "
          f"python {sys.version.split()[0]}, numpy {numpy.__version__}, torch "
          f"{torch.__version__}, {args.threads} thread(s), {os.cpu_count()} cores, "
          f"{args.rounds} rounds x {args.samples} samples")  # fmt: skip
    print(f"numpy BLAS: {blas_info(args.threads)}")
    med = {k: statistics.median(v) * 1e3 if v else float("nan") for k, v in times.items()}
    peak = {k: statistics.median(v) / 2**20 if v else float("nan") for k, v in peaks.items()}

    def ratio(a: float, b: float) -> float:
        return a / b if b else float("nan")

    print(f"{'input':<12} {'engine':>9} {'torch':>9} {'http':>9} {'eng/torch':>10} "
          f"{'http/eng':>9}   peak MiB: {'engine':>7} {'torch':>7} {'server':>7} "
          f"{'eng/torch':>9}")  # fmt: skip
    for b in BATCHES:
        e, t, h = med[("engine", b)], med[("torch", b)], med[("http", b)]
        pe, pt, ph = peak[("engine", b)], peak[("torch", b)], peak[("http", b)]
        print(f"{b}x3x64x64   {e:8.1f}m {t:8.1f}m {h:8.1f}m {ratio(e, t):10.2f} {ratio(h, e):9.2f}"
              f"             {pe:7.1f} {pt:7.1f} {ph:7.1f} {ratio(pe, pt):9.2f}")  # fmt: skip
    for b, values in amortized.items():
        per_step = statistics.median(values) * 1e3
        times_engine = ratio(per_step, med[("engine", b)])
        print(f"http, {AMORTIZED} steps per train call (`batches`) at batch {b}: "
              f"{per_step:.1f} ms per step, {times_engine:.2f} x engine")  # fmt: skip
    for b, values in traced.items():
        print(f"engine, one steady step at batch {b} (tracemalloc): "
              f"{statistics.median(values) / 2**20:.1f} MiB")  # fmt: skip
    for b in BATCHES:
        if "error" in parts[b]:
            print(f"breakdown {b}: error {parts[b]['error']}")
            continue
        cells = ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in parts[b].items())
        print(f"the HTTP step's parts at batch {b}: {cells}")
    targets = [
        ("engine / torch at batch 1 <= 1.0", med[("engine", 1)] / med[("torch", 1)] <= 1.0),
        ("engine / torch at batch 8 <= 1.4", med[("engine", 8)] / med[("torch", 8)] <= 1.4),
        (
            "http / engine <= 1.15",
            all(med[("http", b)] / med[("engine", b)] <= 1.15 for b in BATCHES),
        ),  # fmt: skip
        (
            "engine peak memory <= 1.5 x torch's",
            all(peak[("engine", b)] <= 1.5 * peak[("torch", b)] for b in BATCHES),
        ),  # fmt: skip
    ]
    for name, ok in targets:
        print(f"target {name}: {'met' if ok else 'missed'}")
    for k, v in errors.items():
        print(f"error {k}: {v}")


if __name__ == "__main__":
    main()
