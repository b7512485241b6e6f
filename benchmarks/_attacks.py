"""The hostile requests of issue #12, as bytes ready to send: the benchmark's own copy of what
`tests/service/test_attacks.py` sends (benchmarks do not import the tests), each a small
request that once took a worker down. `prepare` makes the sessions two of them need (set-up,
before anything is measured) and returns every attack as a request to repeat as often as
wanted: none of them changes the server's state (the train attack is refused before it
runs, the GET only reads)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

JSON = {"Content-Type": "application/json"}

# call(method, path, body, headers) -> (status, answer bytes)
Call = Callable[[str, str, bytes | None, dict[str, str] | None], tuple[int, bytes]]


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


def _evaluate(document: dict) -> Request:
    return Request("POST", "/v1/evaluate", json.dumps(document).encode(), JSON)


# 112 bytes: kernel 150 on a 300x300 view of one number (12.9 s, 5.95 GB, on the event loop).
POOLING = _evaluate({
    "expr": "y = x.expand(1,1,300,300)\nz = max_pool2d(y, 150, 1)",
    "inputs": {"x": [[[[1.0]]]]}, "outputs": ["z"]})  # fmt: skip
# A 500x500 input and a 250x250 kernel from two numbers (asked numpy for >= 15.7 GB).
CONV = _evaluate({
    "expr": "y = x.expand(1,1,500,500)\nw = x.expand(1,1,250,250)\nz = conv2d(y, w)",
    "inputs": {"x": [[[[1.0]]]]}, "outputs": ["z"]})  # fmt: skip
# One name re-bound 10,000 times, 60 KB (26 s of CPU to compile once).
REBINDING = _evaluate({"expr": "y=x*x\n" + "y=y*x\n" * 9_900, "inputs": {"x": [1.0]}})
# 65 KB of ops over the 10,000-op limit (11.8 s before its 422).
OVER_OPS = _evaluate({"expr": "y=x+x\n" * 10_900, "inputs": {"x": [1.0]}})
# A tensor of 2^62 * 0 elements whose size numpy cannot compute (once a 500).
HUGE_SHAPE = _evaluate({"expr": "y=x*2", "inputs": {
    "x": {"data": [], "shape": [2147483648, 2147483648, 0]}}})  # fmt: skip

WIDE_MLP = (
    "h = relu(x.expand(2048, 64) @ w1 + b1)\nout = h @ w2 + b2\n"
    "loss = mse_loss(out, y.expand(2048, 10))"
)


def _session(call: Call, parameters: dict, expr: str, optimizer: dict) -> tuple[str, str]:
    body = {"parameters": parameters, "expr": expr, "loss": "loss", "optimizer": optimizer}
    status, answer = call("POST", "/v1/sessions", json.dumps(body).encode(), JSON)
    if status != 201:
        raise RuntimeError(f"creating an attack's session: {status} {answer[:300]!r}")
    created = json.loads(answer)
    return created["id"], created["token"]


def _thousand_batches(call: Call) -> Request:
    """1,000 batches of one number each in a 40 KB body, each batch within the flops limit
    (the program expands it): 139 s and a 200 before train's total was bounded."""
    rng = np.random.default_rng(0)
    params = {"w1": rng.standard_normal((64, 256)).tolist(), "b1": [0.0] * 256,
              "w2": rng.standard_normal((256, 10)).tolist(), "b2": [0.0] * 10}  # fmt: skip
    sid, token = _session(call, {k: {"data": v} for k, v in params.items()}, WIDE_MLP,
                          {"type": "sgd", "lr": 0.01})  # fmt: skip
    body = {"batches": [{"inputs": {"x": [[1.0]], "y": [[0.0]]}}] * 1000}
    headers = {**JSON, "Authorization": f"Bearer {token}"}
    return Request("POST", f"/v1/sessions/{sid}/train", json.dumps(body).encode(), headers)


def _wide_session_get(call: Call) -> Request:
    """GET of a 10,000-parameter Adam session after one step (~23 s per GET, on the loop)."""
    names = [f"p{i}" for i in range(10_000)]
    expr = "s = cat([" + ",".join(names) + "])\nloss = (s * x).sum()"
    sid, token = _session(call, {n: {"data": [0.5]} for n in names}, expr,
                          {"type": "adam", "lr": 0.01})  # fmt: skip
    auth = {"Authorization": f"Bearer {token}"}
    step = json.dumps({"batches": [{"inputs": {"x": [1.0]}}]}).encode()
    status, answer = call("POST", f"/v1/sessions/{sid}/train", step, {**JSON, **auth})
    if status != 200:
        raise RuntimeError(f"stepping the wide session: {status} {answer[:300]!r}")
    return Request("GET", f"/v1/sessions/{sid}", None, auth)


SESSIONS = 2  # live sessions `prepare` makes (they count against the client's cap)


def prepare(call: Call) -> dict[str, Request]:
    """Every attack by name, with the sessions they need made through `call`."""
    return {
        "pooling-kernel-150": POOLING,
        "conv2d-kernel-250": CONV,
        "rebinding-10000": REBINDING,
        "over-10000-ops": OVER_OPS,
        "huge-empty-shape": HUGE_SHAPE,
        "thousand-batches": _thousand_batches(call),
        "wide-session-get": _wide_session_get(call),
    }
