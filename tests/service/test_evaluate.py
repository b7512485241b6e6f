"""POST /v1/evaluate in process: values, gradients, the DAG, and every refusal it documents.

The same operation runs against a real uvicorn server in test_e2e_programs.py; these tests
cover the details (each backward rule, output selection, encodings) where a fast client helps.
"""

import base64
from xml.etree import ElementTree

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from engine.registry import FUNCTIONS
from service.app import create_app
from service.examples import programs as examples
from service.settings import Settings

SEED = examples.EVALUATE["seed"]["value"]
PROBLEM_JSON = "application/problem+json"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    app = create_app(Settings(data_dir=tmp_path_factory.mktemp("evaluate") / "data"))
    with TestClient(app) as client:
        yield client


def evaluate(api, body, status=200, **kwargs):
    response = api.post("/v1/evaluate", json=body, **kwargs)
    assert response.status_code == status, response.text[:2000]
    return response.json()


def problem(api, body, status, type_, path="/v1/evaluate"):
    response = api.post(path, json=body)
    assert response.status_code == status, response.text[:2000]
    assert response.headers["content-type"] == PROBLEM_JSON
    doc = response.json()
    assert doc["type"] == f"/problems/{type_}", doc
    return doc


def test_the_seed_as_written(api):
    out = evaluate(api, SEED)
    assert out["outputs"]["Q"] == {
        "data": [-12, 65],
        "shape": [2],
        "dtype": "float32",
        "requires_grad": True,
        "grad_fn": "SubBackward0",
    }
    assert out["grads"] == {
        "a": {"data": [36, 81], "shape": [2], "dtype": "float32"},
        "b": {"data": [-12, -8], "shape": [2], "dtype": "float32"},
    }
    assert "dag" not in out


@pytest.mark.parametrize(
    "expr",
    ["Q = 3*a**3 - b**2", "Q = 3a³ − b²", "Q = 3·a³ − b²", "Q = 3 × a ** 3 - b ** 2"],
)
def test_both_notations_agree(api, expr):
    out = evaluate(api, {**SEED, "expr": expr})
    assert out["outputs"]["Q"]["data"] == [-12, 65]
    assert out["grads"]["a"]["data"] == [36, 81]
    assert out["grads"]["b"]["data"] == [-12, -8]


def test_nodes_form_equals_expr_form(api):
    by_nodes = evaluate(api, {**examples.EVALUATE["nodes"]["value"], "include": ["dag"]})
    by_expr = evaluate(api, {**SEED, "include": ["dag"]})
    assert by_nodes["outputs"] == by_expr["outputs"]
    assert by_nodes["grads"] == by_expr["grads"]
    assert by_nodes["dag"]["nodes"] == by_expr["dag"]["nodes"]


def test_every_example_of_the_spec_answers_200(api):
    for name, example in examples.EVALUATE.items():
        if "@" in example["value"].get("expr", "") and "matmul" not in FUNCTIONS:
            continue  # the matmul op is not registered yet
        response = api.post("/v1/evaluate", json=example["value"])
        assert response.status_code == 200, (name, response.text)


def walk(dag, node_id):
    node = dag["nodes"][node_id]
    label = node["name"] if node["name"] != "AccumulateGrad" else f"AccumulateGrad({node['input']})"
    return (label, tuple(None if n is None else walk(dag, n) for n in node["next"]))


def torch_walk(fn, names):
    if fn is None:
        return None
    if type(fn).__name__ == "AccumulateGrad":
        return (f"AccumulateGrad({names[id(fn.variable)]})", ())
    return (type(fn).__name__, tuple(torch_walk(f, names) for f, _ in fn.next_functions))


def test_dag_of_q_has_torchs_structure(api):
    dag = evaluate(api, {**SEED, "include": ["dag"]})["dag"]
    a = torch.tensor([2.0, 3.0], requires_grad=True)
    b = torch.tensor([6.0, 4.0], requires_grad=True)
    q = 3 * a**3 - b**2
    expected = torch_walk(q.grad_fn, {id(a): "a", id(b): "b"})
    assert walk(dag, dag["outputs"]["Q"]) == expected
    assert expected == (
        "SubBackward0",
        (
            ("MulBackward0", (("PowBackward0", (("AccumulateGrad(a)", ()),)), None)),
            ("PowBackward0", (("AccumulateGrad(b)", ()),)),
        ),
    )
    leaves = [n for n in dag["nodes"] if n["name"] == "AccumulateGrad"]
    assert {(n["input"], n["requires_grad"], tuple(n["shape"])) for n in leaves} == {
        ("a", True, (2,)),
        ("b", True, (2,)),
    }
    dot = dag["dot"]
    assert dot.startswith("digraph") and "lightblue" in dot


def test_svg_is_answered_for_accept_svg(api):
    response = api.post("/v1/evaluate", json=SEED, headers={"accept": "image/svg+xml"})
    if response.status_code == 501:  # no Graphviz here: the documented problem
        assert response.json()["type"] == "/problems/graphviz-missing"
        pytest.skip("Graphviz's dot is not installed")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    root = ElementTree.fromstring(response.content)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    text = "".join(root.itertext())
    assert "SubBackward0" in text and "PowBackward0" in text


def test_svg_without_graphviz_is_501_naming_the_package(api, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    doc = api.post("/v1/evaluate", json=SEED, headers={"accept": "image/svg+xml"}).json()
    assert (doc["status"], doc["type"], doc["package"]) == (
        501,
        "/problems/graphviz-missing",
        "graphviz",
    )
    assert "graphviz" in doc["detail"]


@pytest.mark.parametrize(
    ("accept", "media"),
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("application/json", "application/json"),
        ("image/svg+xml", "image/svg+xml"),
        ("image/*", "image/svg+xml"),
        ("application/json;q=0.5, image/svg+xml", "image/svg+xml"),
        ("text/html,application/xhtml+xml,*/*;q=0.8", "application/json"),
    ],
)
def test_accept_header_picks_the_answer(api, accept, media):
    headers = {} if accept is None else {"accept": accept}
    response = api.post("/v1/evaluate", json=SEED, headers=headers)
    assert response.headers["content-type"] == media


def test_accepting_neither_json_nor_svg_is_406(api):
    response = api.post("/v1/evaluate", json=SEED, headers={"accept": "text/html"})
    assert response.status_code == 406
    assert response.json()["available"] == ["application/json", "image/svg+xml"]


def test_backward_list_accumulates_like_repeated_backward_calls(api):
    out = evaluate(api, examples.EVALUATE["accumulate"]["value"])
    x = torch.tensor([0.0, 1.0, 2.0], requires_grad=True)
    y, z = torch.sin(x).sum(), (x * x).sum()
    y.backward(retain_graph=True)
    z.backward()
    np.testing.assert_allclose(out["grads"]["x"]["data"], x.grad.numpy(), rtol=1e-6)


def test_the_same_backward_twice_doubles_the_gradient(api):
    body = {**SEED, "backward": [SEED["backward"], SEED["backward"]]}
    assert evaluate(api, body)["grads"]["a"]["data"] == [72, 162]


def test_scalar_output_needs_no_gradient(api):
    out = evaluate(
        api,
        {"expr": "L = (3a³ − b²).sum()", "inputs": SEED["inputs"], "backward": {"output": "L"}},
    )
    assert out["outputs"]["L"]["shape"] == []
    assert out["outputs"]["L"]["data"] == 53
    assert out["grads"]["a"]["data"] == [36, 81]


def test_outputs_default_to_every_assigned_name_and_can_be_chosen(api):
    body = {"expr": "h = 2 * x\ny = h.sum()", "inputs": {"x": [1.0, 2.0]}}
    assert set(evaluate(api, body)["outputs"]) == {"h", "y"}
    assert set(evaluate(api, {**body, "outputs": ["y"]})["outputs"]) == {"y"}


def test_inputs_without_requires_grad_get_no_gradient_entry(api):
    body = {
        "expr": "y = (w * x).sum()",
        "inputs": {"w": {"data": [1.0, 2.0], "requires_grad": True}, "x": [3.0, 4.0]},
        "backward": {"output": "y"},
    }
    assert evaluate(api, body)["grads"] == {"w": {"data": [3, 4], "shape": [2], "dtype": "float32"}}


def test_an_input_the_output_does_not_depend_on_has_a_null_gradient(api):
    body = {
        "expr": "y = (w * 2).sum()",
        "inputs": {
            "w": {"data": [1.0], "requires_grad": True},
            "u": {"data": [1.0], "requires_grad": True},
        },
        "backward": {"output": "y"},
    }
    assert evaluate(api, body)["grads"]["u"] is None


def test_without_backward_there_are_no_grads(api):
    out = evaluate(api, {"expr": SEED["expr"], "inputs": SEED["inputs"]})
    assert out["grads"] == {}
    assert out["outputs"]["Q"]["grad_fn"] == "SubBackward0"


def test_binary_answers_are_exact_little_endian_bytes(api):
    out = evaluate(api, examples.EVALUATE["binary"]["value"])
    q = out["outputs"]["Q"]
    assert (q["shape"], q["dtype"]) == ([2], "float32")
    assert np.frombuffer(base64.b64decode(q["b64"]), "<f4").tolist() == [-12, 65]
    assert np.frombuffer(base64.b64decode(out["grads"]["a"]["b64"]), "<f4").tolist() == [36, 81]


def test_non_finite_results_are_the_wire_strings(api):
    response = api.post("/v1/evaluate", json=examples.EVALUATE["non-finite"]["value"])
    assert response.status_code == 200
    out = response.json()["outputs"]
    assert out["y"]["data"] == ["-Infinity", 0]
    assert out["z"]["data"] == ["NaN", 1]


def test_nan_inputs_flow_through_to_nan_gradients(api):
    body = {
        "expr": "y = (x * x).sum()",
        "inputs": {"x": {"data": ["NaN", 1.0, "Infinity"], "requires_grad": True}},
        "backward": {"output": "y"},
    }
    out = evaluate(api, body)
    assert out["outputs"]["y"]["data"] == "NaN"
    assert out["grads"]["x"]["data"] == ["NaN", 2, "Infinity"]


def test_float64_stays_float64(api):
    body = {
        "expr": "y = x * 3",
        "inputs": {"x": {"data": [0.1], "dtype": "float64", "requires_grad": True}},
        "backward": {"output": "y", "gradient": [1]},
    }
    out = evaluate(api, body)
    assert out["outputs"]["y"]["dtype"] == "float64"
    assert out["outputs"]["y"]["data"] == [0.1 * 3]
    assert out["grads"]["x"] == {"data": [3], "shape": [1], "dtype": "float64"}


def test_tuple_results_are_answered_element_by_element(api):
    out = evaluate(api, {"expr": "m = max(x, dim=0)", "inputs": {"x": [[1.0, 5.0], [3.0, 2.0]]}})
    assert out["outputs"]["m[0]"]["data"] == [3, 5]
    assert out["outputs"]["m[1]"] == {
        "data": [1, 0],
        "shape": [2],
        "dtype": "int64",
        "requires_grad": False,
        "grad_fn": None,
    }


# -- refusals, each with its documented problem type ------------------------------------------


def test_non_scalar_backward_without_gradient_names_gradient(api):
    doc = problem(api, {**SEED, "backward": {"output": "Q"}}, 422, "gradient-required")
    assert doc["errors"][0]["pointer"] == "/backward/gradient"
    assert (doc["output"], doc["shape"]) == ("Q", [2])
    assert "gradient" in doc["detail"]


def test_the_pointer_names_the_entry_of_a_backward_list(api):
    body = {**SEED, "backward": [SEED["backward"], {"output": "Q"}]}
    doc = problem(api, body, 422, "gradient-required")
    assert doc["errors"][0]["pointer"] == "/backward/1/gradient"


def test_gradient_of_the_wrong_shape(api):
    body = {**SEED, "backward": {"output": "Q", "gradient": [1, 1, 1]}}
    doc = problem(api, body, 422, "invalid-backward")
    assert doc["shapes"] == [[3], [2]]
    assert doc["errors"][0]["pointer"] == "/backward/gradient"


def test_backward_from_an_output_that_does_not_require_grad(api):
    body = {"expr": "y = x.sum()", "inputs": {"x": [1.0]}, "backward": {"output": "y"}}
    doc = problem(api, body, 422, "invalid-backward")
    assert doc["errors"][0]["pointer"] == "/backward/output"


def test_backward_from_an_unknown_output(api):
    doc = problem(api, {**SEED, "backward": {"output": "R"}}, 422, "unknown-name")
    assert doc["errors"][0]["pointer"] == "/backward/output"
    assert doc["outputs"] == ["Q"]


def test_asking_for_an_unknown_output(api):
    doc = problem(api, {**SEED, "outputs": ["Q", "Z"]}, 422, "unknown-name")
    assert doc["errors"][0]["pointer"] == "/outputs/1"


def test_shape_errors_point_at_line_and_column_with_the_shapes(api):
    body = {"expr": "h = x * 2\ny = h + w", "inputs": {"x": [[1.0, 2.0]], "w": [1.0, 2.0, 3.0]}}
    doc = problem(api, body, 422, "shape-mismatch")
    assert (doc["line"], doc["column"]) == (2, 7)
    assert doc["shapes"] == [[1, 2], [3]]
    assert doc["errors"][0]["pointer"] == "/expr"
    assert "size of tensor a (2) must match the size of tensor b (3)" in doc["detail"]


def test_graph_errors_point_at_the_node(api):
    nodes = [
        {"id": "s", "op": "mul", "inputs": ["x", 2]},
        {"id": "y", "op": "add", "inputs": ["s", "w"]},
    ]
    body = {"nodes": nodes, "outputs": ["y"], "inputs": {"x": [[1.0, 2.0]], "w": [1.0, 2.0, 3.0]}}
    doc = problem(api, body, 422, "shape-mismatch")
    assert doc["node"] == "y"
    assert doc["errors"][0]["pointer"] == "/nodes/1"
    assert doc["shapes"] == [[1, 2], [3]]


def test_a_cycle_is_an_invalid_graph(api):
    nodes = [
        {"id": "p", "op": "add", "inputs": ["q", 1]},
        {"id": "q", "op": "mul", "inputs": ["p", 2]},
    ]
    doc = problem(api, {"nodes": nodes, "outputs": ["q"]}, 422, "invalid-graph")
    assert doc["kind"] == "cycle"
    assert doc["node"] in ("p", "q")


def test_limits_name_the_setting_and_its_value(api):
    doc = problem(api, {"expr": "y = x ** 10 ** 100", "inputs": {"x": 1.0}}, 422, "limit-exceeded")
    assert doc["limit"] == "max_int_bits"
    assert doc["maximum"] == 63


def test_empty_tensors_evaluate_and_backward(api):
    body = {
        "expr": "y = (x * 2).sum()",
        "inputs": {"x": {"b64": "", "shape": [0, 3], "dtype": "float32", "requires_grad": True}},
        "backward": {"output": "y"},
    }
    out = evaluate(api, body)
    assert out["outputs"]["y"]["data"] == 0
    assert out["grads"]["x"] == {"data": [], "shape": [0, 3], "dtype": "float32"}


def test_backward_through_a_data_dependent_shape(api):
    # x[x > 0] has as many elements as x has positive ones: only known once computed.
    body = {
        "expr": "y = x[x > 0] * 2",
        "inputs": {"x": {"data": [1.0, -2.0, 3.0], "requires_grad": True}},
        "backward": {"output": "y", "gradient": [1.0, 10.0]},
    }
    out = evaluate(api, body)
    assert out["outputs"]["y"]["data"] == [2, 6]
    assert out["grads"]["x"]["data"] == [2, 0, 20]
    doc = problem(
        api,
        {**body, "backward": {"output": "y", "gradient": [1.0, 1.0, 1.0]}},
        422,
        "invalid-backward",
    )
    assert doc["shapes"] == [[3], [2]]
