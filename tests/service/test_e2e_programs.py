"""The program operations against a real uvicorn server (`python -m service serve`) on a free
127.0.0.1 port: the issue's acceptance checks, end to end."""

import base64
import sys
import time
from xml.etree import ElementTree

import httpx
import numpy as np
import pytest
import torch

from service.examples import programs as examples
from service.wire import decode_tensor, encode_tensor, jsonio

from .conftest import free_port, run_server

SEED = examples.EVALUATE["seed"]["value"]
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def live(live_server):
    with httpx.Client(base_url=live_server, timeout=60) as client:
        yield client


def post(client, path, body, status=200, **kwargs):
    response = client.post(path, json=body, **kwargs)
    assert response.status_code == status, response.text[:2000]
    return response.json()


@pytest.mark.parametrize("expr", ["Q = 3a³ − b²", "Q = 3*a**3 - b**2"])
def test_the_seed_in_both_notations(live, expr):
    out = post(live, "/v1/evaluate", {**SEED, "expr": expr})
    assert out["outputs"]["Q"]["data"] == [-12, 65]
    assert out["grads"]["a"]["data"] == [36, 81]
    assert out["grads"]["b"]["data"] == [-12, -8]
    assert out["outputs"]["Q"]["grad_fn"] == "SubBackward0"


def test_the_nodes_form_of_q_equals_the_expr_form(live):
    by_nodes = post(
        live, "/v1/evaluate", {**examples.EVALUATE["nodes"]["value"], "include": ["dag"]}
    )
    by_expr = post(live, "/v1/evaluate", {**SEED, "include": ["dag"]})
    assert by_nodes["outputs"] == by_expr["outputs"]
    assert by_nodes["grads"] == by_expr["grads"]
    assert by_nodes["dag"]["nodes"] == by_expr["dag"]["nodes"]


def _walk(dag, node_id):
    node = dag["nodes"][node_id]
    if node["name"] == "AccumulateGrad":
        return (f"AccumulateGrad({node['input']})", ())
    return (node["name"], tuple(None if n is None else _walk(dag, n) for n in node["next"]))


def _torch_walk(fn, names):
    if fn is None:
        return None
    if type(fn).__name__ == "AccumulateGrad":
        return (f"AccumulateGrad({names[id(fn.variable)]})", ())
    return (type(fn).__name__, tuple(_torch_walk(f, names) for f, _ in fn.next_functions))


def test_the_dag_of_q_is_torchs(live):
    dag = post(live, "/v1/evaluate", {**SEED, "include": ["dag"]})["dag"]
    a = torch.tensor([2.0, 3.0], requires_grad=True)
    b = torch.tensor([6.0, 4.0], requires_grad=True)
    q = 3 * a**3 - b**2
    ours = _walk(dag, dag["outputs"]["Q"])
    assert ours == _torch_walk(q.grad_fn, {id(a): "a", id(b): "b"})
    # SubBackward0 -> MulBackward0 -> PowBackward0 -> AccumulateGrad(a), and
    # SubBackward0 -> PowBackward0 -> AccumulateGrad(b)
    sub, (mul, pow_b) = ours
    assert (sub, mul[0], mul[1][0][0], mul[1][0][1][0][0]) == (
        "SubBackward0",
        "MulBackward0",
        "PowBackward0",
        "AccumulateGrad(a)",
    )
    assert (pow_b[0], pow_b[1][0][0]) == ("PowBackward0", "AccumulateGrad(b)")


def test_a_million_element_base64_round_trip_is_exact(live):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(1_000_000).astype(np.float32)
    x[:4] = [np.nan, np.inf, -np.inf, -0.0]
    g = rng.standard_normal(1_000_000).astype(np.float32)
    body = {
        "expr": "y = x.clone()",
        "inputs": {"x": {**encode_tensor(x, binary=True), "requires_grad": True}},
        "backward": {"output": "y", "gradient": encode_tensor(g, binary=True)},
        "binary": True,
    }
    start = time.perf_counter()
    response = live.post("/v1/evaluate", content=jsonio.dumps(body), headers=JSON)
    elapsed = time.perf_counter() - start
    assert response.status_code == 200, response.text[:1000]
    out = response.json()
    y, _ = decode_tensor({k: v for k, v in out["outputs"]["y"].items() if k != "grad_fn"})
    grad, _ = decode_tensor(out["grads"]["x"])
    assert y.tobytes() == x.tobytes()  # NaN, infinities and -0.0 bit for bit
    assert grad.tobytes() == g.tobytes()
    assert out["outputs"]["y"]["grad_fn"] == "CloneBackward0"
    print(f"10^6-element b64 evaluate with backward: {elapsed * 1000:.0f} ms round trip")


def test_the_svg_answer_is_valid_svg(live):
    if not _has_dot():
        pytest.skip("Graphviz's dot is not installed (scripts/test.sh installs it)")
    response = live.post("/v1/evaluate", json=SEED, headers={"accept": "image/svg+xml"})
    assert response.status_code == 200, response.text[:1000]
    assert response.headers["content-type"] == "image/svg+xml"
    root = ElementTree.fromstring(response.content)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    labels = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert labels.count("PowBackward0") == 2
    assert {"SubBackward0", "MulBackward0", "a", "b", "Q"} <= set(labels)


def _has_dot() -> bool:
    import shutil

    return shutil.which("dot") is not None


def test_svg_without_graphviz_on_path_is_a_501_naming_the_package(tmp_path):
    port = free_port()
    command = [sys.executable, "-m", "service", "serve", "--port", str(port)]
    # A PATH without Graphviz (nor anything else): the server runs from sys.executable.
    with run_server(command, port, tmp_path / "data", PATH=str(tmp_path)) as base:
        response = httpx.post(
            f"{base}/v1/evaluate", json=SEED, headers={"accept": "image/svg+xml"}, timeout=30
        )
        assert response.status_code == 501
        assert response.headers["content-type"] == "application/problem+json"
        doc = response.json()
        assert (doc["type"], doc["package"]) == ("/problems/graphviz-missing", "graphviz")
        assert "graphviz" in doc["detail"]
        # JSON still works, with the DOT text of the same picture.
        out = httpx.post(f"{base}/v1/evaluate", json={**SEED, "include": ["dag"]}, timeout=30)
        assert out.json()["dag"]["dot"].startswith("digraph")


def test_jacobian_hessian_and_gradcheck_over_http_equal_torch(live):
    jac = post(live, "/v1/jacobian", examples.JACOBIAN["seed"]["value"])
    ja, jb = torch.autograd.functional.jacobian(
        lambda a, b: 3 * a**3 - b**2, (torch.tensor([2.0, 3.0]), torch.tensor([6.0, 4.0]))
    )
    assert jac["jacobian"]["a"]["data"] == ja.tolist()
    assert jac["jacobian"]["b"]["data"] == jb.tolist()

    hes = post(live, "/v1/hessian", examples.HESSIAN["seed"]["value"])
    h = torch.autograd.functional.hessian(
        lambda a, b: (3 * a**3 - b**2).sum(), (torch.tensor([2.0, 3.0]), torch.tensor([6.0, 4.0]))
    )
    for i, x in enumerate("ab"):
        for j, y in enumerate("ab"):
            assert hes["hessian"][x][y]["data"] == h[i][j].tolist()

    check = post(live, "/v1/gradcheck", examples.GRADCHECK["seed"]["value"])
    assert check["passed"] is True
    assert check["checks"]["a"]["analytical"]["data"] == [[36, 0], [0, 81]]


def test_ops_are_listed_over_http(live):
    ops = {op["name"]: op for op in live.get("/v1/ops").json()}
    assert ops["pow"]["grad_fn"] == "PowBackward0"
    assert ops["sub"]["grad_fn"] == "SubBackward0"


def test_binary_outputs_are_little_endian(live):
    out = post(live, "/v1/evaluate", {**SEED, "binary": True})
    raw = base64.b64decode(out["outputs"]["Q"]["b64"])
    assert np.frombuffer(raw, "<f4").tolist() == [-12, 65]
