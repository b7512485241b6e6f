"""No tensor is a 500. A tensor whose envelope asks for more than numpy or the limits allow (the
empty `[2**31, 2**31, 0]` numpy cannot shape) is refused before any allocation with a problem
naming its JSON pointer and its size, on every endpoint that decodes tensors; and tensor objects
and small programs fuzzed across those endpoints never get a 5xx, and every refusal is a
problem document.

In-process (the `client` fixture: 4096-byte bodies, 1000-element tensors), bounded and
repeatable: derandomized, no example database."""

import base64
import math
import resource
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.problems import ProblemError
from service.wire import decode_tensor, extent
from service.wire import tensors as tensors_module
from service.wire.tensors import MAX_EXTENT
from tests.sessions.helpers import mlp_parameters, session_body

PROBLEM_JSON = "application/problem+json"
HUGE_SHAPE = [2147483648, 2147483648, 0]
HUGE = {"data": [], "shape": HUGE_SHAPE}
SPAN = 2**62  # what HUGE's non-zero dimensions multiply to
MAX_ELEMENTS = 1000  # the `settings` fixture's max_tensor_elements
EXAMPLES = 150  # per endpoint: the whole file runs in well under a minute on 2 cores
HEADROOM = 2 * 1024**3  # bytes the process's data may grow by during a test


def _data_bytes() -> int | None:
    """The process's data segment (what RLIMIT_DATA counts), or None off Linux."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    kb = next((line.split()[1] for line in status.splitlines() if line.startswith("VmData:")), None)
    return None if kb is None else int(kb) * 1024


@pytest.fixture(autouse=True)
def memory_cap() -> Iterator[None]:
    """A request that allocates gigabytes fails its test instead of taking the (shared) machine
    down: numpy's MemoryError is a 503, and orjson (Rust) aborts the process when its buffer
    cannot grow, which is why no answer may be bigger than the limits allow."""
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    used = _data_bytes()
    if used is None:
        yield
        return
    cap = used + HEADROOM
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


@dataclass
class Session:
    id: str
    token: str

    @property
    def path(self) -> str:
        return f"/v1/sessions/{self.id}"

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def create_session(client: TestClient, body: dict[str, Any]) -> Session:
    created = client.post("/v1/sessions", json=body)
    assert created.status_code == 201, created.text
    return Session(created.json()["id"], created.json()["token"])


def mlp_body(**groups: dict[str, Any]) -> dict[str, Any]:
    """The MLP session's creation body, with tensors added to its `parameters`, `buffers`..."""
    body = session_body(mlp_parameters(3), {"type": "sgd", "lr": 0.1})
    for group, tensors in groups.items():
        body[group] = {**body.get(group, {}), **tensors}
    return body


@pytest.fixture
def mlp_session(client) -> Session:
    return create_session(client, mlp_body())


def send(client: TestClient, session: Session, method: str, path: str, body: Any):
    """`path` may hold `{s}`, the session's path (the call then carries its token)."""
    if "{s}" not in path:
        return client.request(method, path, json=body)
    url = path.format(s=session.path)
    return client.request(method, url, json=body, headers=session.auth)


def assert_problem(response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problem = response.json()
    assert problem["type"] == f"/problems/{slug}", problem
    return problem


def program(t: Any) -> dict[str, Any]:
    return {"expr": "y = x * 2", "inputs": {"x": t}}


def batch(t: Any) -> dict[str, Any]:
    return {"inputs": {"x": t, "y": [0]}}


# Every endpoint that decodes a tensor, and where the tensor sits in its body:
# (id, method, path with `{s}` for the session's, the body given the tensor, its pointer).
ENDPOINTS: list[tuple[str, str, str, Callable[[Any], Any], str]] = [
    ("evaluate", "POST", "/v1/evaluate", program, "/inputs/x"),
    ("evaluate-backward-gradient", "POST", "/v1/evaluate",
     lambda t: {**program({"data": [1.0, 2.0], "requires_grad": True}),
                "backward": [{"output": "y", "gradient": t}]},
     "/backward/0/gradient"),
    ("jacobian", "POST", "/v1/jacobian", program, "/inputs/x"),
    ("hessian", "POST", "/v1/hessian", program, "/inputs/x"),
    ("gradcheck", "POST", "/v1/gradcheck", program, "/inputs/x"),
    ("session-create-parameter", "POST", "/v1/sessions",
     lambda t: mlp_body(parameters={"W1": t}), "/parameters/W1"),
    ("session-create-buffer", "POST", "/v1/sessions",
     lambda t: mlp_body(buffers={"B": t}), "/buffers/B"),
    ("session-create-grad", "POST", "/v1/sessions",
     lambda t: mlp_body(grads={"W1": t}), "/grads/W1"),
    ("session-forward", "POST", "{s}/forward", batch, "/inputs/x"),
    ("session-backward", "POST", "{s}/backward", batch, "/inputs/x"),
    ("session-train", "POST", "{s}/train", batch, "/inputs/x"),
    ("session-train-batches", "POST", "{s}/train",
     lambda t: {"batches": [batch([[0.0] * 6]), batch(t)]}, "/batches/1/inputs/x"),
    ("parameter-put", "PUT", "{s}/parameters/W3", lambda t: t, ""),
    ("parameter-patch", "PATCH", "{s}/parameters/W1", lambda t: {"value": t}, "/value"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "body", "pointer"), [e[1:] for e in ENDPOINTS], ids=[e[0] for e in ENDPOINTS]
)
def test_an_empty_tensor_numpy_cannot_shape_is_a_limit_problem_naming_it_and_its_size(
    client, mlp_session, method, path, body, pointer
):
    problem = assert_problem(
        send(client, mlp_session, method, path, body(HUGE)), 422, "limit-exceeded"
    )
    assert problem["errors"][0]["pointer"] == pointer
    assert problem["limit"] == "max_tensor_elements"
    assert problem["value"] == SPAN and problem["maximum"] == MAX_ELEMENTS
    assert problem["shape"] == HUGE_SHAPE
    assert str(HUGE_SHAPE) in problem["detail"] and str(SPAN) in problem["detail"]


@pytest.mark.parametrize(
    ("method", "path", "body", "pointer"), [e[1:] for e in ENDPOINTS], ids=[e[0] for e in ENDPOINTS]
)
def test_a_count_past_64_bits_is_a_limit_problem_with_the_exact_count(
    client, mlp_session, method, path, body, pointer
):
    tensor = {"b64": "", "shape": [2, 2**63], "dtype": "float32"}  # once an orjson TypeError
    problem = assert_problem(
        send(client, mlp_session, method, path, body(tensor)), 422, "limit-exceeded"
    )
    assert problem["errors"][0]["pointer"] == pointer and problem["value"] == 2**64


@pytest.mark.parametrize("form", ["data", "b64", "nested"])
def test_an_empty_tensor_spanning_more_than_the_limit_is_refused_in_each_wire_form(client, form):
    tensor: Any = {
        "data": {"data": [], "shape": [1001, 0]},
        "b64": {"b64": "", "shape": [0, 1001], "dtype": "float32"},
        "nested": [[]] * 1001,
    }[form]
    problem = assert_problem(
        client.post("/v1/evaluate", json=program(tensor)), 422, "limit-exceeded"
    )
    assert problem["value"] == 1001


def test_an_empty_tensor_within_the_limit_is_still_answered(client):
    response = client.post("/v1/evaluate", json=program({"data": [], "shape": [10, 0, 100]}))
    assert response.status_code == 200, response.text
    assert response.json()["outputs"]["y"]["shape"] == [10, 0, 100]


def test_an_init_spec_of_an_empty_shape_numpy_cannot_shape_is_refused(client, mlp_session):
    spec = {"init": "zeros", "shape": HUGE_SHAPE}
    for method, path, body in [("POST", "/v1/sessions", mlp_body(parameters={"W1": spec})),
                               ("PUT", "{s}/parameters/W3", spec)]:  # fmt: skip
        response = send(client, mlp_session, method, path, body)
        assert assert_problem(response, 422, "limit-exceeded")["value"] == SPAN


def test_a_program_growing_an_empty_tensor_past_the_limit_is_refused_before_it_runs(client):
    # Once 2**31 nested `[]` in the answer: a 24 GB worker, then the kernel's or orjson's abort.
    body = {"expr": "y = x.reshape(2147483648, 0)", "inputs": {"x": []}}
    problem = assert_problem(client.post("/v1/evaluate", json=body), 422, "limit-exceeded")
    assert problem["errors"][0]["pointer"] == "/expr"
    assert problem["value"] == 2**31 and problem["maximum"] == MAX_ELEMENTS


def test_a_jacobian_of_empty_blocks_spanning_past_the_limit_is_refused(client):
    # d y / d x is of shape (1000, 1000, 0): no entries, a million `[]`.
    body = {"expr": "y = x.sum(1)", "inputs": {"x": {"data": [], "shape": [1000, 0]}}}
    problem = assert_problem(client.post("/v1/jacobian", json=body), 422, "limit-exceeded")
    assert problem["errors"][0]["pointer"] == "/wrt" and problem["value"] == 1000 * 1000


def test_past_numpys_bound_the_tensor_is_invalid_whatever_the_limit():
    assert extent(HUGE_SHAPE) == SPAN and extent([3, 0, 4]) == 12 and extent([]) == 1
    with pytest.raises(ProblemError) as refused:
        decode_tensor({"data": [], "shape": [2**40, 2**40, 0]}, pointer="/x")
    assert refused.value.status_code == 422
    assert refused.value.type == "/problems/invalid-tensor"
    assert refused.value.extensions["maximum"] == MAX_EXTENT
    array, _ = decode_tensor({"data": [], "shape": [2**29, 2**30, 0]}, pointer="/x")
    assert array.shape == (2**29, 2**30, 0)  # within numpy's bound and no limit asked


def _exhausted(plan):
    raise MemoryError


@pytest.mark.parametrize(
    ("method", "path", "body", "pointer"), [e[1:] for e in ENDPOINTS], ids=[e[0] for e in ENDPOINTS]
)
def test_memory_running_out_while_decoding_is_a_503_problem_that_changes_nothing(
    client, mlp_session, monkeypatch, method, path, body, pointer
):
    state = f"{mlp_session.path}/state?format=json&binary=true"  # no timestamps in it
    before = client.get(mlp_session.path, headers=mlp_session.auth).json()["version"]
    state_before = client.get(state, headers=mlp_session.auth).json()
    monkeypatch.setattr(tensors_module, "_materialize", _exhausted)
    response = send(client, mlp_session, method, path, body([[0.5] * 6]))
    assert_problem(response, 503, "insufficient-memory")
    assert response.headers["retry-after"] == "5"
    monkeypatch.undo()
    assert client.get(state, headers=mlp_session.auth).json() == state_before
    trained = client.post(f"{mlp_session.path}/train", json=batch([[0.5] * 6]),
                          headers=mlp_session.auth)  # fmt: skip
    assert trained.status_code == 200, trained.text
    assert trained.json()["version"] == before + 1


# -- fuzzing ---------------------------------------------------------------------------------

DIMS = st.one_of(
    st.integers(0, 4),
    st.sampled_from([0, 1, 999, 1000, 1001, 2**31, 2**32, 2**62, 2**63 - 1, 2**63, 2**64, -1]),
)
SHAPES = st.one_of(
    st.lists(DIMS, max_size=5), st.lists(st.integers(0, 1), min_size=30, max_size=70)
)
ELEMENTS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.integers(-(2**70), 2**70),
    st.booleans(),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "x", ""]),
)
NESTED = st.recursive(
    st.one_of(ELEMENTS, st.just([])),
    lambda inner: st.lists(inner, max_size=4),
    max_leaves=24,
)
DTYPES = st.sampled_from(["float32", "float64", "int64", "bool", "float16", "complex64", 3])


@st.composite
def base64_text(draw) -> str:
    raw = draw(st.binary(max_size=48))
    text = base64.b64encode(raw).decode()
    return draw(st.sampled_from([text, text[:-1], text + "A", text + "=", "!!" + text]))


def _optional(draw, key: str, values: st.SearchStrategy) -> dict[str, Any]:
    return {key: draw(values)} if draw(st.booleans()) else {}


WIRE_DTYPES = st.sampled_from(["float32", "float64", "int64", "bool"])
SMALL_SHAPES = st.lists(st.integers(0, 4), max_size=3)


@st.composite
def coherent(draw) -> dict[str, Any]:
    """A tensor the service takes, mostly: its data or bytes fit its shape and dtype, and a
    zero-size shape may carry a huge dimension."""
    shape = draw(st.one_of(SMALL_SHAPES, st.tuples(DIMS, st.just(0)).map(list)))
    dtype = draw(WIRE_DTYPES)
    count = math.prod(shape)
    if draw(st.booleans()):
        raw = draw(st.binary(min_size=count * 8, max_size=count * 8))
        raw = bytes(b & 1 for b in raw) if dtype == "bool" else raw
        size = {"float32": 4, "bool": 1}.get(dtype, 8)
        text = base64.b64encode(raw[: count * size]).decode()
        tensor = {"b64": text, "shape": shape, "dtype": dtype}
    else:
        data = draw(st.lists(st.floats(-4, 4, width=32), min_size=count, max_size=count))
        tensor = {"data": data, "shape": shape} | _optional(draw, "dtype", WIRE_DTYPES)
    return tensor | _optional(draw, "requires_grad", st.booleans())


@st.composite
def tensors(draw) -> Any:
    kind = draw(st.sampled_from(["coherent", "coherent", "nested", "data", "b64", "odd"]))
    if kind == "coherent":
        return draw(coherent())
    if kind == "nested":
        return draw(NESTED)
    if kind == "odd":
        return draw(
            st.sampled_from(
                [None, "x", {}, {"data": [1.0], "b64": ""}, {"shape": [0]}, {"data": [1.0], "z": 1}]
            )
        )
    tensor: dict[str, Any] = {}
    if kind == "b64":
        tensor["b64"] = draw(base64_text())
        tensor |= {"shape": draw(SHAPES), "dtype": draw(DTYPES)}
    else:
        tensor["data"] = draw(NESTED)
        tensor |= _optional(draw, "shape", SHAPES) | _optional(draw, "dtype", DTYPES)
    return tensor | _optional(draw, "requires_grad", st.booleans())


# Small programs, among them those that grow or reshape what they are given (an empty tensor
# into one spanning 2**31 `[]`, a scalar into a million elements).
PROGRAMS = st.sampled_from(
    [
        "y = x * 2",
        "y = (x * x).sum()",
        "y = x.sum(0)",
        "y = x.sum(-1)",
        "y = x.mean()",
        "y = x.exp().sum()",
        "y = softmax(x, -1)",
        "y = x.max()",
        "y = x[0]",
        "y = x @ x",
        "y = x.t()",
        "y = x.abs() + x.sum()",
        "y = x.reshape(-1)",
        "y = x.reshape(2147483648, 0)",
        "y = x.reshape(-1, 1000, 1000)",
        "y = x.expand(1000, 1000)",
        "y = x.unsqueeze(0).expand(2147483648, -1)",
        "y = x.repeat(1000, 1000)",
        "y = cat([x, x], 0)",
        "y = stack([x, x]).sum(0)",
    ]
)


def assert_answered(response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"] == PROBLEM_JSON, response.text
        assert response.json()["status"] == response.status_code


FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(
    path=st.sampled_from(["/v1/evaluate", "/v1/jacobian", "/v1/hessian", "/v1/gradcheck"]),
    expr=PROGRAMS,
    x=tensors(),
    w=st.one_of(st.none(), tensors()),
    backward=st.booleans(),
    gradient=st.one_of(st.none(), tensors()),
)
def test_program_endpoints_never_answer_5xx(client, path, expr, x, w, backward, gradient):
    inputs = {"x": x} if w is None else {"x": x, "w": w}
    body: dict[str, Any] = {"expr": expr, "inputs": inputs}
    if path == "/v1/evaluate" and backward:
        body["backward"] = [{"output": "y"} | ({} if gradient is None else {"gradient": gradient})]
    assert_answered(client.post(path, json=body))


SESSION_EXPR = "y = x * w\nloss = y.sum()"


@pytest.fixture
def small_session(client) -> Session:
    body = {
        "parameters": {"w": [1.0, 2.0, 3.0]},
        "expr": SESSION_EXPR,
        "loss": "loss",
        "optimizer": {"type": "adam", "lr": 0.01},
    }
    return create_session(client, body)


@FUZZ
@given(parameter=tensors(), buffer=st.one_of(st.none(), tensors()), grad=st.booleans())
def test_session_create_never_answers_5xx(client, parameter, buffer, grad):
    body: dict[str, Any] = {
        "parameters": {"w": parameter},
        "expr": SESSION_EXPR,
        "loss": "loss",
        "optimizer": {"type": "sgd", "lr": 0.1},
    }
    if buffer is not None:
        body["buffers"] = {"b": buffer}
    if grad:
        body["grads"] = {"w": parameter}
    assert_answered(client.post("/v1/sessions", json=body))


@FUZZ
@given(
    action=st.sampled_from(["forward", "backward", "train", "train-batches"]),
    x=tensors(),
    extra=st.one_of(st.none(), tensors()),
    expr=st.one_of(st.none(), PROGRAMS.map(lambda e: e.replace("y =", "z =") + " * w.sum()")),
)
def test_session_calls_never_answer_5xx(client, small_session, action, x, extra, expr):
    inputs = {"x": x} if extra is None else {"x": x, "v": extra}
    body: dict[str, Any] = {"inputs": inputs}
    if action == "train-batches":
        action, body = "train", {"batches": [{"inputs": inputs}, {"inputs": {"x": [1.0]}}]}
    if expr is not None and action == "forward":
        body["expr"] = expr
    response = client.post(f"{small_session.path}/{action}", json=body, headers=small_session.auth)
    assert_answered(response)


@FUZZ
@given(
    method=st.sampled_from(["PUT", "PATCH"]),
    name=st.sampled_from(["w", "v"]),
    value=tensors(),
    init=st.one_of(
        st.none(),
        st.fixed_dictionaries(
            {"init": st.sampled_from(["zeros", "normal", "kaiming_uniform"]), "shape": SHAPES}
        ),
    ),
    requires_grad=st.one_of(st.none(), st.booleans()),
)
def test_parameter_writes_never_answer_5xx(
    client, small_session, method, name, value, init, requires_grad
):
    if method == "PUT":
        body = value if init is None else init
    else:
        body = {"value": value} | (
            {} if requires_grad is None else {"requires_grad": requires_grad}
        )
    response = client.request(
        method, f"{small_session.path}/parameters/{name}", json=body, headers=small_session.auth
    )
    assert_answered(response)
