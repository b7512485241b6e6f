"""A catalogue of hostile and broken requests against the real server: each gets its
documented 4xx problem quickly, without a large allocation, and the server answers the next
request. (NaN *strings* are valid input and give NaN results; bare NaN tokens are not JSON.)"""

# ruff: noqa: E501 - the catalogue is a table, one case per line

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from service.examples import programs as examples
from service.wire import jsonio

from .conftest import SERVER_PROCESSES

SEED = examples.EVALUATE["seed"]["value"]
S = examples.SEED_INPUTS
X = {"x": {"data": [1.0, 2.0], "requires_grad": True}}
MiB = 1024 * 1024
DEFAULT_BODY_LIMIT = 16 * MiB
SECONDS = 2.0  # "quickly": each refusal, server side and client side together
GROWTH_BYTES = 200 * MiB  # peak memory growth allowed over the whole catalogue


@dataclass(frozen=True)
class Case:
    id: str
    status: int
    type: str
    body: object = None  # JSON-able, sent as JSON
    raw: bytes | None = None  # sent as is
    path: str = "/v1/evaluate"
    headers: dict = field(default_factory=dict)


def expr(text: str, inputs: dict | None = None, **more) -> dict:
    return {"expr": text, "inputs": S if inputs is None else inputs, **more}


def nodes(items: list, outputs: list, inputs: dict | None = None) -> dict:
    return {"nodes": items, "outputs": outputs, "inputs": {} if inputs is None else inputs}


JSON_400 = ("400", "invalid-json")
V = "validation-error"
T = "invalid-tensor"
P = "program-syntax"
F = "forbidden-construct"
U = "unknown-name"
L = "limit-exceeded"

CASES = [
    # -- malformed JSON and wrong media ------------------------------------------------------
    Case("truncated-json", 400, "invalid-json", raw=b'{"expr": "Q = a", "inputs": {'),
    Case("trailing-comma", 400, "invalid-json", raw=b'{"expr": "Q = a",}'),
    Case("bare-nan-token", 400, "invalid-json", raw=b'{"expr": "y = x", "inputs": {"x": [NaN]}}'),
    Case("bare-infinity", 400, "invalid-json", raw=b'{"expr": "y = x", "inputs": {"x": Infinity}}'),
    Case("single-quotes", 400, "invalid-json", raw=b"{'expr': 'y = x'}"),
    Case("invalid-utf8", 400, "invalid-json", raw=b'{"expr": "y = \xff\xfe"}'),
    Case("json-nested-1e5-deep", 400, "invalid-json", raw=b"[" * 100_000 + b"]" * 100_000),
    Case(
        "inputs-nested-1e5-deep",
        400,
        "invalid-json",
        raw=b'{"expr": "y = x", "inputs": {"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}",
    ),
    Case("empty-body", 422, V, raw=b""),
    Case("top-level-array", 422, V, raw=b"[]"),
    Case("top-level-string", 422, V, raw=b'"Q = 3a^3 - b^2"'),
    Case("text-plain", 415, "unsupported-media-type", raw=b"Q = a", headers={"content-type": "text/plain"}),
    Case("form-encoded", 415, "unsupported-media-type", raw=b"expr=Q", headers={"content-type": "application/x-www-form-urlencoded"}),
    # -- wrong types and shapes of the envelope ------------------------------------------------
    Case("expr-is-a-number", 422, V, body={"expr": 42, "inputs": S}),
    Case("expr-is-a-list", 422, V, body={"expr": ["Q = a"], "inputs": S}),
    Case("inputs-is-a-list", 422, V, body={"expr": "Q = a", "inputs": [1, 2]}),
    Case("backward-is-a-string", 422, V, body={**SEED, "backward": "Q"}),
    Case("backward-without-output", 422, V, body={**SEED, "backward": {"gradient": [1, 1]}}),
    Case("include-unknown", 422, V, body={**SEED, "include": ["svg"]}),
    Case("unknown-top-level-field", 422, V, body={**SEED, "exec": "rm -rf /"}),
    Case("expr-and-nodes", 422, V, body={**SEED, "nodes": [], "outputs": ["Q"]}),
    Case("neither-expr-nor-nodes", 422, V, body={"inputs": S}),
    Case("nodes-without-outputs", 422, V, body={"nodes": [{"id": "y", "op": "neg", "inputs": ["x"]}], "inputs": X}),
    Case("nodes-not-a-list", 422, V, body={"nodes": {"id": "y"}, "outputs": ["y"]}),
    Case("node-without-op", 422, V, body=nodes([{"id": "y", "inputs": ["x"]}], ["y"], X)),
    Case("node-extra-field", 422, V, body=nodes([{"id": "y", "op": "neg", "inputs": ["x"], "code": "x"}], ["y"], X)),
    # -- tensors --------------------------------------------------------------------------
    Case("tensor-is-a-string", 422, T, body=expr("y = x", {"x": "abc"})),
    Case("tensor-ragged", 422, T, body=expr("y = x", {"x": [[1, 2], [3]]})),
    Case("tensor-null-element", 422, T, body=expr("y = x", {"x": [1, None]})),
    Case("tensor-unknown-dtype", 422, T, body=expr("y = x", {"x": {"data": [1], "dtype": "complex64"}})),
    Case("tensor-shape-mismatch", 422, T, body=expr("y = x", {"x": {"data": [1, 2, 3], "shape": [2, 2]}})),
    Case("requires-grad-on-int64", 422, T, body=expr("y = x", {"x": {"data": [1], "dtype": "int64", "requires_grad": True}})),
    Case("bad-base64", 422, T, body=expr("y = x", {"x": {"b64": "!!!!", "shape": [1], "dtype": "float32"}})),
    Case("base64-wrong-length", 422, T, body=expr("y = x", {"x": {"b64": "AAAA", "shape": [4], "dtype": "float32"}})),
    Case("tensor-33-dims", 422, T, body=expr("y = x", {"x": {"data": [1.0], "shape": [1] * 33}})),
    Case("int-beyond-int64", 422, T, raw=b'{"expr": "y = x", "inputs": {"x": {"data": [1180591620717411303424], "dtype": "int64"}}}'),
    # -- unknown names and ops --------------------------------------------------------------
    Case("unknown-function", 422, U, body=expr("Q = frobnicate(a)")),
    Case("unknown-method", 422, U, body=expr("Q = a.frobnicate()")),
    Case("undefined-name", 422, U, body=expr("Q = a + c")),
    Case("exec", 422, U, body=expr("Q = exec('import os')")),
    Case("eval", 422, U, body=expr("Q = eval('1')")),
    Case("open", 422, U, body=expr("Q = open('/etc/passwd')")),
    Case("getattr", 422, U, body=expr("Q = getattr(a, 'grad')")),
    Case("node-unknown-op", 422, U, body=nodes([{"id": "y", "op": "system", "inputs": ["x"]}], ["y"], X)),
    Case("node-undefined-ref", 422, U, body=nodes([{"id": "y", "op": "neg", "inputs": ["nowhere"]}], ["y"], X)),
    Case("node-output-not-a-node", 422, U, body=nodes([{"id": "y", "op": "neg", "inputs": ["x"]}], ["z"], X)),
    Case("unknown-requested-output", 422, U, body={**SEED, "outputs": ["R"]}),
    Case("backward-unknown-output", 422, U, body={**SEED, "backward": {"output": "R"}}),
    # -- graphs -----------------------------------------------------------------------------
    Case("cycle", 422, "invalid-graph", body=nodes([{"id": "p", "op": "add", "inputs": ["q", 1]}, {"id": "q", "op": "mul", "inputs": ["p", 2]}], ["q"], X)),
    Case("self-loop", 422, "invalid-graph", body=nodes([{"id": "p", "op": "neg", "inputs": ["p"]}], ["p"], X)),
    Case("duplicate-ids", 422, "invalid-graph", body=nodes([{"id": "y", "op": "neg", "inputs": ["x"]}, {"id": "y", "op": "exp", "inputs": ["x"]}], ["y"], X)),
    # -- shapes, dtypes and arguments ---------------------------------------------------------
    Case("broadcast-mismatch", 422, "shape-mismatch", body=expr("y = x + z", {"x": [1.0, 2.0], "z": [1.0, 2.0, 3.0]})),
    Case("reshape-wrong-numel", 422, "shape-mismatch", body=expr("y = x.reshape(3, 3)", {"x": [1.0, 2.0]})),
    Case("index-out-of-range", 422, "shape-mismatch", body=expr("y = x[5]", {"x": [1.0, 2.0]})),
    Case("cat-mismatch", 422, "shape-mismatch", body=expr("y = cat([x, z], dim=1)", {"x": [[1.0]], "z": [[1.0], [2.0]]})),
    Case("too-many-arguments", 422, "invalid-arguments", body=expr("Q = exp(a, b)")),
    Case("unknown-keyword", 422, "invalid-arguments", body=expr("Q = sum(a, axis=0)")),
    Case("dim-out-of-range", 422, "invalid-arguments", body=expr("Q = sum(a, dim=5)")),
    # -- backward ----------------------------------------------------------------------------
    Case("non-scalar-backward-without-gradient", 422, "gradient-required", body={**SEED, "backward": {"output": "Q"}}),
    Case("gradient-of-wrong-shape", 422, "invalid-backward", body={**SEED, "backward": {"output": "Q", "gradient": [1, 2, 3]}}),
    Case("backward-without-requires-grad", 422, "invalid-backward", body=expr("y = x.sum()", {"x": [1.0]}, backward={"output": "y"})),
    # -- forbidden Python -------------------------------------------------------------------
    Case("dunder-import", 422, F, body=expr("Q = __import__('os').system('id')")),
    Case("dunder-class", 422, F, body=expr("Q = a.__class__")),
    Case("subclasses-escape", 422, F, body=expr("Q = a.__class__.__mro__[1].__subclasses__()")),
    Case("private-attribute", 422, F, body=expr("Q = a._a")),
    Case("lambda", 422, F, body=expr("f = lambda x: x")),
    Case("list-comprehension", 422, F, body=expr("Q = [x for x in a]")),
    Case("generator-expression", 422, F, body=expr("Q = sum(x for x in a)")),
    Case("dict-comprehension", 422, F, body=expr("Q = {k: k for k in a}")),
    Case("import-statement", 422, F, body=expr("import os")),
    Case("from-import", 422, F, body=expr("from os import system")),
    Case("f-string", 422, F, body=expr("Q = f'{a}'")),
    Case("walrus", 422, F, body=expr("Q = (z := a)")),
    Case("starred-argument", 422, F, body=expr("Q = cat(*a)")),
    Case("double-star-kwargs", 422, F, body=expr("Q = sum(a, **{'dim': 0})")),
    Case("conditional-expression", 422, F, body=expr("Q = a if b else a")),
    Case("function-definition", 422, F, body=expr("def f():\n    return 1")),
    Case("class-definition", 422, F, body=expr("class A:\n    pass")),
    Case("delete", 422, F, body=expr("del a")),
    Case("torch-dunder", 422, F, body=expr("Q = torch.__dict__")),
    # -- syntax -------------------------------------------------------------------------------
    Case("syntax-error", 422, P, body=expr("Q = = a")),
    Case("bare-expression", 422, P, body=expr("a + b")),
    Case("unbalanced-parenthesis", 422, P, body=expr("Q = (a + b")),
    Case("empty-program", 422, P, body=expr("")),
    # -- limits ---------------------------------------------------------------------------------
    Case("parentheses-1e5-deep", 422, L, body=expr("Q = " + "(" * 100_000 + "a" + ")" * 100_000)),
    Case("parentheses-1000-deep", 422, L, body=expr("Q = " + "(" * 1000 + "a" + ")" * 1000)),
    Case("one-megabyte-expression", 422, L, body=expr("Q = " + "a + " * 262_143 + "a")),
    Case("too-many-nodes", 422, L, body=nodes([{"id": f"n{i}", "op": "neg", "inputs": ["x" if i == 0 else f"n{i - 1}"]} for i in range(10_001)], ["n10000"], X)),
    Case("huge-exponent", 422, L, body=expr("Q = a ** 10 ** 100")),
    Case("power-tower", 422, L, body=expr("Q = a ** 9 ** 9 ** 9 ** 9")),
    Case("huge-integer-literal", 422, L, body=expr("Q = a * " + "9" * 5000)),
    Case("shift-bomb", 422, F, body=expr("Q = a * (1 << 10 ** 9)")),
    Case("expand-to-1e10-elements", 422, L, body=expr("y = x.expand(100000, 100000)", {"x": [1.0]})),
    Case("b64-declaring-1e10-elements", 422, L, body=expr("y = x", {"x": {"b64": "", "shape": [100000, 100000], "dtype": "float32"}})),
    Case("flops-over-the-limit", 422, L, body=expr("m = x.expand(3000, 3000)\ny = m @ m @ m", {"x": [[0.5] * 3000]})),
    Case("backward-repeated-1000-times", 422, L, body=expr("y = x.expand(3000, 3000).sum()", {"x": {"data": [0.5], "requires_grad": True}}, backward=[{"output": "y"}] * 1000)),
    Case("backward-list-over-1000", 422, V, body={**SEED, "backward": [SEED["backward"]] * 1001}),
    Case("body-over-the-limit", 413, "body-too-large", raw=b'{"expr": "' + b" " * (DEFAULT_BODY_LIMIT + 1) + b'"}'),
    # -- derivatives and media types ----------------------------------------------------------
    Case("hessian-of-non-scalar", 422, "invalid-arguments", path="/v1/hessian", body=expr("Q = 3a³ − b²")),
    Case("jacobian-wrt-an-integer", 422, "dtype-mismatch", path="/v1/jacobian", body=expr("y = i * 2.0", {"i": [1, 2]}, wrt=["i"])),
    Case("gradcheck-wrt-unknown", 422, U, path="/v1/gradcheck", body=expr("Q = 3a³ − b²", wrt=["z"])),
    Case("gradcheck-negative-eps", 422, V, path="/v1/gradcheck", body=expr("Q = 3a³ − b²", eps=-1)),
    Case("jacobian-too-large", 422, L, path="/v1/jacobian", body=expr("y = z * 2", {"z": [1.0] * 10_000})),
    Case("accept-html-only", 406, "not-acceptable", body=SEED, headers={"accept": "text/html"}),
]  # fmt: skip


@pytest.fixture(scope="module")
def live(live_server):
    with httpx.Client(base_url=live_server, timeout=30) as client:
        yield client


def _peak_rss(base: str) -> int | None:
    proc = SERVER_PROCESSES.get(base)
    status = Path(f"/proc/{proc.pid}/status") if proc is not None else None
    if status is None or not status.exists():
        return None
    for line in status.read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None


def test_the_catalogue_has_at_least_60_distinct_cases():
    assert len({c.id for c in CASES}) == len(CASES) >= 60


@pytest.fixture(scope="module")
def peak_before(live, live_server):
    live.post("/v1/evaluate", json=SEED)  # warm: imports, caches
    return _peak_rss(live_server)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_request_gets_its_problem_quickly(live, peak_before, case):
    headers = {"content-type": "application/json", **case.headers}
    content = case.raw if case.raw is not None else jsonio.dumps(case.body)
    start = time.perf_counter()
    response = live.post(case.path, content=content, headers=headers)
    elapsed = time.perf_counter() - start
    assert response.status_code == case.status, response.text[:1000]
    assert response.headers["content-type"] == "application/problem+json"
    doc = response.json()
    assert doc["type"] == f"/problems/{case.type}", doc
    assert doc["status"] == case.status
    assert doc["detail"]
    assert elapsed < SECONDS, f"{case.id} took {elapsed:.2f} s"
    # ...and the server carries on.
    assert live.post("/v1/evaluate", json=SEED).json()["grads"]["a"]["data"] == [36, 81]


def test_no_refusal_allocated_much(live, live_server, peak_before):
    if peak_before is None:
        pytest.skip("no /proc to read the server's memory from")
    peak_after = _peak_rss(live_server)
    assert peak_after - peak_before < GROWTH_BYTES, (peak_before, peak_after)


def test_a_nan_string_is_valid_input_and_gives_nan(live):
    body = {
        "expr": "y = x * 2",
        "inputs": {"x": {"data": ["NaN", 1.0], "requires_grad": True}},
        "backward": {"output": "y", "gradient": [1.0, 1.0]},
    }
    out = live.post("/v1/evaluate", json=body).json()
    assert out["outputs"]["y"]["data"] == ["NaN", 2]
    assert out["grads"]["x"]["data"] == [2, 2]


def test_floating_point_errors_are_results_not_failures(live):
    body = {"expr": "y = exp(x)\nz = log(x - 1)\nw = x / (x - x)", "inputs": {"x": [1000.0, 1.0]}}
    response = live.post("/v1/evaluate", json=body)
    assert response.status_code == 200
    out = response.json()["outputs"]
    assert out["y"]["data"] == ["Infinity", pytest.approx(2.7182817)]
    assert out["z"]["data"][1] == "-Infinity"
    assert out["w"]["data"] == ["Infinity", "Infinity"]
    assert json.loads(response.content)  # strict JSON: no bare NaN tokens
