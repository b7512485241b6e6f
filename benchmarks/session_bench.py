"""One training step of a session over HTTP, against the same step in-process, and the store.

The MLP 784-256-256-10 (ReLU, cross_entropy), batch 64, SGD(lr=0.01, momentum=0.9):

  http    POST /v1/sessions/{id}/train with the batch as a safetensors body (raw bytes;
          service/wire/safetensors.py), then as base64 tensors in JSON, to a real
          `python -m service serve` (SQLite store, or Redis with --redis), from a keep-alive
          http.client connection; the request body is encoded once, so the client's own work
          is not counted
  engine  the same step in this process: zero_grad, forward, backward, optimizer.step()
  torch   the same step with torch (its CPU build), as the reference
  store   what the HTTP step spends in the store, with SQLite and Redis: a step commits its
          request as a journal entry; every few steps (service/sessions/live.py's rule) the
          whole state is committed instead (parameters, gradients, momentum buffers); a
          worker that did not compute the last step reads the session (get) and replays

The issue's target: http ≤ 1.5 × engine + 1 ms. Medians of --steps samples after warm-up
(--warmup steps for HTTP: a training run's steady state); the http mean counts the
checkpoints too.

    python benchmarks/session_bench.py [--steps 50] [--warmup 300] [--threads 1] [--redis]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks._server import free_port as _free_port  # noqa: E402
from benchmarks._server import wait_live  # noqa: E402

SIZES = (784, 256, 256, 10)
BATCH = 64
SGD = {"type": "sgd", "lr": 0.01, "momentum": 0.9}
EXPR = (
    "h1 = relu(linear(x, W1, b1))\n"
    "h2 = relu(linear(h1, W2, b2))\n"
    "loss = cross_entropy(linear(h2, W3, b3), y)"
)
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _samples_ms(step, steps: int, warmup: int = 5) -> list[float]:
    for _ in range(warmup):
        step()
    samples = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def _median_ms(step, steps: int, warmup: int = 5) -> float:
    return statistics.median(_samples_ms(step, steps, warmup))


def _train_body(safetensors: bool = True) -> tuple[bytes, str]:
    """The train request and its content type: the batch as a safetensors file (raw bytes,
    service.wire.safetensors), or as base64 tensors in JSON."""
    from service.wire import encode_tensor, jsonio
    from service.wire import safetensors as binary

    _, x, y = _data()
    if safetensors:
        return binary.encode({}, {"/inputs/x": x, "/inputs/y": y}), binary.MEDIA
    inputs = {"x": encode_tensor(x, binary=True), "y": encode_tensor(y, binary=True)}
    return jsonio.dumps({"inputs": inputs}), "application/json"


def _data():
    import numpy as np

    rng = np.random.default_rng(0)
    params = {}
    for i, (n_in, n_out) in enumerate(zip(SIZES, SIZES[1:], strict=False), start=1):
        bound = 1 / np.sqrt(n_in)  # nn.Linear's init
        params[f"W{i}"] = rng.uniform(-bound, bound, (n_out, n_in)).astype(np.float32)
        params[f"b{i}"] = rng.uniform(-bound, bound, n_out).astype(np.float32)
    x = rng.standard_normal((BATCH, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], BATCH)
    return params, x, y


# -- in-process -------------------------------------------------------------------------------


def engine_step(steps: int) -> float:
    import engine
    from engine.nn import functional as F

    params, x0, y0 = _data()
    p = {n: engine.tensor(a, requires_grad=True) for n, a in params.items()}
    x, y = engine.tensor(x0), engine.tensor(y0)
    opt = engine.optim.SGD(list(p.values()), lr=0.01, momentum=0.9)

    def step():
        opt.zero_grad()
        h1 = F.relu(F.linear(x, p["W1"], p["b1"]))
        h2 = F.relu(F.linear(h1, p["W2"], p["b2"]))
        F.cross_entropy(F.linear(h2, p["W3"], p["b3"]), y).backward()
        opt.step()

    return _median_ms(step, steps)


def torch_step(steps: int, threads: int) -> float:
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    params, x0, y0 = _data()
    p = {n: torch.tensor(a, requires_grad=True) for n, a in params.items()}
    x, y = torch.from_numpy(x0), torch.from_numpy(y0)
    opt = torch.optim.SGD(list(p.values()), lr=0.01, momentum=0.9)

    def step():
        opt.zero_grad()
        h1 = F.relu(F.linear(x, p["W1"], p["b1"]))
        h2 = F.relu(F.linear(h1, p["W2"], p["b2"]))
        F.cross_entropy(F.linear(h2, p["W3"], p["b3"]), y).backward()
        opt.step()

    return _median_ms(step, steps)


def session_step(steps: int) -> float:
    """The server's work for one train call minus HTTP and the store: the safetensors body
    read, the session's tensors made engine leaves, the program checked and run, the
    optimizer rebuilt from its state, and the changes gathered."""
    from service.schemas.session_calls import SessionTrainCreate
    from service.sessions import actions
    from service.settings import Settings
    from service.wire import safetensors as binary

    params, _, _ = _data()
    record = _record(params)
    data, _ = _train_body()
    settings = Settings()
    first = actions.train(
        record, SessionTrainCreate.model_validate(binary.document(data)), settings
    )
    record.grads = dict(first.changes.grads)
    record.optimizer_state = dict(first.changes.optimizer_state)

    def step():
        body = SessionTrainCreate.model_validate(binary.document(data))
        actions.train(record, body, settings)

    return _median_ms(step, steps)


# -- the store --------------------------------------------------------------------------------


def _record(params):
    from service.store import SessionRecord, hash_token

    return SessionRecord(
        id="bench",
        token_hash=hash_token("t"),
        program={"expr": EXPR, "loss": "loss"},
        optimizer=SGD,
        parameters={n: a.copy() for n, a in params.items()},
    )


def store_step(store, steps: int, entry: bytes) -> tuple[float, float, float]:
    """(get, journal, checkpoint) medians in ms: reading the whole session (what a worker
    that did not compute the last step does), committing one step as its journal entry
    (the request body), and committing the whole state (parameters, gradients, momentum)
    as a checkpoint does every few steps."""
    import numpy as np

    from service.sessions.journal import entry_name
    from service.store import Changes

    params, _, _ = _data()
    store.create(_record(params))
    version = [0]
    raw = np.frombuffer(entry, dtype=np.uint8)

    def changes():
        moved = {n: a + 1e-3 for n, a in params.items()}
        return Changes(
            parameters=moved,
            grads={n: a * 0.5 for n, a in params.items()},
            optimizer_state={n: {"momentum_buffer": a * 0.1} for n, a in params.items()},
            journal=dict.fromkeys(entry_name(v) for v in range(1, version[0] + 1)),
            steps=1,
        )

    def checkpoint():
        version[0] = store.commit("bench", version[0], changes())

    def journal():
        name = entry_name(version[0] + 1)
        version[0] = store.commit("bench", version[0], Changes(journal={name: raw}, steps=1))

    def read():
        store.get("bench")

    checkpoint_ms = _median_ms(checkpoint, steps) - _median_ms(changes, steps)
    get_ms = _median_ms(read, steps)  # the whole state, no entries: a replay adds steps
    journal_ms = _median_ms(journal, steps)
    return get_ms, journal_ms, checkpoint_ms


def amortized(journal_ms: float, checkpoint_ms: float, entry_bytes: int) -> tuple[int, float]:
    """Steps per checkpoint under the journal's rule (live.py: entries up to the state's
    size; the replay-time bound is far off for a 1 ms step), and the store's mean cost."""
    from service.settings import Settings

    state_bytes = 3 * sum(a.nbytes for a in _data()[0].values())
    entries = min(Settings().journal_max_entries, state_bytes // entry_bytes)  # bytes bind here
    return entries + 1, (entries * journal_ms + checkpoint_ms) / (entries + 1)


class _Redis:
    def __init__(self, directory: Path) -> None:
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--dir",
                str(directory),
            ],  # fmt: skip
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"redis://127.0.0.1:{self.port}/0"
        import redis

        client = redis.Redis(port=self.port)
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.02)
        client.close()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


# -- over HTTP --------------------------------------------------------------------------------


def http_step(
    steps: int, threads: int, data_dir: Path, store: str, warmup: int
) -> dict[str, tuple[float, float]]:
    """Body kind -> (median, mean) ms of POST .../train; the mean counts the checkpoints."""
    import http.client

    import httpx

    from service.wire import encode_tensor, jsonio

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOGRAD_")}
    env.update(dict.fromkeys(THREAD_VARS, str(threads)))
    env.update(AUTOGRAD_DATA_DIR=str(data_dir), AUTOGRAD_STORE=store, AUTOGRAD_LOG_LEVEL="warning")
    proc = subprocess.Popen(
        [sys.executable, "-m", "service", "serve", "--port", str(port)], cwd=ROOT, env=env
    )
    base = f"http://127.0.0.1:{port}"
    figures = {}
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            wait_live(client, proc)
            params, _, _ = _data()
            body = {
                "parameters": {n: encode_tensor(a, binary=True) for n, a in params.items()},
                "optimizer": SGD,
                "expr": EXPR,
                "loss": "loss",
            }
            json_headers = {"content-type": "application/json"}
            created = client.post("/v1/sessions", content=jsonio.dumps(body), headers=json_headers)
            created.raise_for_status()
            session, token = created.json()["id"], created.json()["token"]
            # The steps go through http.client on one keep-alive connection: the leanest
            # client Python has, so that the figure is the server's (httpx adds ~0.25 ms).
            conn = http.client.HTTPConnection("127.0.0.1", port)
            path = f"/v1/sessions/{session}/train"
            for kind, safetensors in (("safetensors", True), ("base64 JSON", False)):
                train, media = _train_body(safetensors)
                headers = {"content-type": media, "Authorization": f"Bearer {token}"}

                def step(train=train, headers=headers):
                    conn.request("POST", path, body=train, headers=headers)
                    response = conn.getresponse()
                    response.read()
                    if response.status != 200:
                        raise RuntimeError(f"train answered {response.status}")

                samples = _samples_ms(step, steps, warmup)
                figures[kind] = statistics.median(samples), statistics.mean(samples)
            conn.close()
            return figures
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1, help="BLAS/torch threads")
    parser.add_argument(
        "--warmup",
        type=int,
        default=300,
        help="HTTP steps before timing: the first few hundred grow SQLite's write-ahead log "
        "to the size it then keeps, and are slower",
    )
    parser.add_argument("--redis", action="store_true", help="also the HTTP step on Redis")
    args = parser.parse_args()
    # Set before numpy loads its BLAS in this process; the server gets the same.
    for var in THREAD_VARS:
        os.environ[var] = str(args.threads)
    sys.path.insert(0, str(ROOT))

    from service.sessions import journal
    from service.store.redis_store import RedisStore
    from service.store.sqlite_store import SQLiteStore

    have_redis = shutil.which("redis-server") is not None
    entry = journal.encode("train", _train_body()[0], safetensors=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        figures = http_step(args.steps, args.threads, tmp_path / "http", "sqlite", args.warmup)
        http_median = figures["safetensors"][0]
        rows = []
        for kind, (median, mean) in figures.items():
            rows += [(f"http step, {kind} body, SQLite", median),
                     ("  mean, with the checkpoints", mean)]  # fmt: skip
        redis_server = _Redis(tmp_path) if have_redis else None
        try:
            if args.redis and redis_server is not None:
                figures = http_step(
                    args.steps, args.threads, tmp_path / "r", redis_server.url, args.warmup
                )
                for kind, (median, mean) in figures.items():
                    rows += [(f"http step, {kind} body, Redis", median),
                             ("  mean, with the checkpoints", mean)]  # fmt: skip
            engine_ms = engine_step(args.steps)
            rows.append(("engine step, in-process", engine_ms))
            rows.append(("session step without HTTP or store", session_step(args.steps)))
            rows.append(("torch step, in-process", torch_step(args.steps, args.threads)))
            stores = [("SQLite", SQLiteStore(tmp_path / "bench.sqlite3"))]
            if redis_server is not None:
                stores.append(("Redis", RedisStore.from_url(redis_server.url)))
            for name, store in stores:
                get_ms, journal_ms, checkpoint_ms = store_step(store, args.steps, entry)
                store.close()
                every, mean_ms = amortized(journal_ms, checkpoint_ms, len(entry))
                rows += [
                    (f"{name} get (a worker reads the session)", get_ms),
                    (f"{name} commit, journal entry ({len(entry) / 1e6:.2f} MB)", journal_ms),
                    (f"{name} commit, whole state (checkpoint)", checkpoint_ms),
                    (f"{name} per step, one checkpoint in {every}", mean_ms),
                ]
        finally:
            if redis_server is not None:
                redis_server.stop()

    print(f"MLP {'-'.join(map(str, SIZES))}, batch {BATCH}, SGD momentum; "
          f"median of {args.steps} steps, {args.threads} thread(s)")  # fmt: skip
    for name, ms in rows:
        print(f"  {name:<44} {ms:8.2f} ms")
    target = 1.5 * engine_ms + 1
    verdict = "meets" if http_median <= target else "misses"
    print(f"  target http (safetensors) ≤ 1.5 × engine + 1 ms = {target:.2f} ms: {verdict} it")
    if not have_redis:
        print("  (redis-server not installed: Redis rows skipped)")


if __name__ == "__main__":
    main()
