"""POST /v1/jacobian, /v1/hessian and /v1/gradcheck: every entry equal to torch's."""

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from torch.autograd.functional import hessian as torch_hessian
from torch.autograd.functional import jacobian as torch_jacobian

from engine.registry import FUNCTIONS
from service.app import create_app
from service.examples import programs as examples
from service.settings import Settings

SEED = {"expr": "Q = 3a³ − b²", "inputs": examples.SEED_INPUTS}
needs_matmul = pytest.mark.skipif(
    "matmul" not in FUNCTIONS, reason="needs the matmul op (`@`), not yet registered"
)


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    app = create_app(Settings(data_dir=tmp_path_factory.mktemp("derivatives") / "data"))
    with TestClient(app) as client:
        yield client


def post(api, path, body, status=200):
    response = api.post(path, json=body)
    assert response.status_code == status, response.text[:2000]
    return response.json()


def array(tensor_json):
    return np.asarray(tensor_json["data"], dtype=np.float64).reshape(tensor_json["shape"])


def seed_torch():
    return torch.tensor([2.0, 3.0]), torch.tensor([6.0, 4.0])


def test_examples_of_every_derivative_operation_answer_200(api):
    for path, cases in [
        ("/v1/jacobian", examples.JACOBIAN),
        ("/v1/hessian", examples.HESSIAN),
        ("/v1/gradcheck", examples.GRADCHECK),
    ]:
        for name, example in cases.items():
            if "@" in example["value"]["expr"] and "matmul" not in FUNCTIONS:
                continue
            assert api.post(path, json=example["value"]).status_code == 200, (path, name)


def test_jacobian_of_the_seed_equals_torch(api):
    out = post(api, "/v1/jacobian", {**SEED, "output": "Q", "wrt": ["a", "b"]})
    ja, jb = torch_jacobian(lambda a, b: 3 * a**3 - b**2, seed_torch())
    assert (out["output"], out["output_shape"], out["wrt"]) == ("Q", [2], ["a", "b"])
    np.testing.assert_array_equal(array(out["jacobian"]["a"]), ja.numpy())
    np.testing.assert_array_equal(array(out["jacobian"]["b"]), jb.numpy())
    assert out["jacobian"]["a"]["data"] == [[36, 0], [0, 81]]
    assert out["jacobian"]["a"]["matrix_shape"] == [2, 2]
    assert out["matrix"]["shape"] == [2, 4]
    np.testing.assert_array_equal(
        array(out["matrix"]), np.concatenate([ja.numpy(), jb.numpy()], axis=1)
    )


@pytest.mark.parametrize(
    ("expr", "inputs", "fn"),
    [
        (
            "p = softmax(z, dim=0)",
            {"z": [1.0, 2.0, 3.0]},
            lambda z: torch.softmax(z, dim=0),
        ),
        pytest.param(
            "y = W @ x + b",
            {"W": [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], "x": [0.5, -1.0, 2.0], "b": [0.1, 0.2]},
            lambda W, x, b: W @ x + b,
            marks=needs_matmul,
        ),
        (
            "y = (x ** 2).sum(dim=1)",
            {"x": [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]},
            lambda x: (x**2).sum(dim=1),
        ),
        ("s = tanh(x).mean()", {"x": [[0.1, -0.2], [0.3, 0.4]]}, lambda x: torch.tanh(x).mean()),
    ],
)
def test_jacobians_equal_torch(api, expr, inputs, fn):
    body = {"expr": expr, "inputs": inputs, "wrt": list(inputs)}
    out = post(api, "/v1/jacobian", body)
    args = tuple(torch.tensor(v) for v in inputs.values())
    expected = torch_jacobian(fn, args)
    for name, block in zip(inputs, expected, strict=True):
        got = array(out["jacobian"][name])
        assert got.shape == tuple(block.shape)
        np.testing.assert_allclose(got, block.numpy(), rtol=1e-5, atol=1e-6)


def test_jacobian_by_default_is_by_the_inputs_requiring_grad(api):
    body = {
        "expr": "y = w * x",
        "inputs": {"w": {"data": [1.0, 2.0], "requires_grad": True}, "x": [3.0, 4.0]},
    }
    assert post(api, "/v1/jacobian", body)["wrt"] == ["w"]
    body["inputs"]["w"] = [1.0, 2.0]  # none requires grad: every floating-point input
    assert post(api, "/v1/jacobian", body)["wrt"] == ["w", "x"]


def test_hessian_of_the_seed_sum_equals_torch(api):
    out = post(api, "/v1/hessian", examples.HESSIAN["seed"]["value"])
    expected = torch_hessian(lambda a, b: (3 * a**3 - b**2).sum(), seed_torch())
    for i, x in enumerate(["a", "b"]):
        for j, y in enumerate(["a", "b"]):
            np.testing.assert_array_equal(array(out["hessian"][x][y]), expected[i][j].numpy())
    assert out["hessian"]["a"]["a"]["data"] == [[36, 0], [0, 54]]
    assert out["matrix"]["shape"] == [4, 4]


@pytest.mark.parametrize(
    ("expr", "inputs", "fn"),
    [
        pytest.param(
            "f = x @ A @ x",
            {"x": [1.0, 2.0], "A": [[1.0, 2.0], [3.0, 4.0]]},
            lambda x, A: x @ A @ x,
            marks=needs_matmul,
        ),
        (
            "f = (exp(x) * y).sum()",
            {"x": [0.5, -0.5], "y": [2.0, 3.0]},
            lambda x, y: (torch.exp(x) * y).sum(),
        ),
        (
            "f = logsumexp(x, dim=0)",
            {"x": [1.0, 2.0, 0.5]},
            lambda x: torch.logsumexp(x, dim=0),
        ),
    ],
)
def test_hessians_equal_torch(api, expr, inputs, fn):
    out = post(api, "/v1/hessian", {"expr": expr, "inputs": inputs, "wrt": list(inputs)})
    args = tuple(torch.tensor(v) for v in inputs.values())
    expected = torch_hessian(fn, args)
    names = list(inputs)
    for i, x in enumerate(names):
        for j, y in enumerate(names):
            np.testing.assert_allclose(
                array(out["hessian"][x][y]), expected[i][j].numpy(), rtol=1e-5, atol=1e-5
            )
    full = array(out["matrix"])
    np.testing.assert_allclose(full, full.T, rtol=1e-5, atol=1e-5)


def test_gradcheck_passes_and_shows_both_jacobians(api):
    out = post(api, "/v1/gradcheck", examples.GRADCHECK["composite"]["value"])
    assert out["passed"] is True
    assert out["max_abs_diff"] < 1e-6
    check = out["checks"]["x"]
    x = torch.tensor([-1.5, 0.0, 0.5, 2.0], dtype=torch.float64)
    expected = torch_jacobian(
        lambda x: torch.tanh(x) * torch.exp(-(x**2)) + torch.sigmoid(x).log(), x
    )
    np.testing.assert_allclose(array(check["analytical"]), expected.numpy(), rtol=1e-10)
    np.testing.assert_allclose(array(check["numerical"]), expected.numpy(), atol=1e-6)
    assert check["analytical"]["dtype"] == "float64"
    assert torch.autograd.gradcheck(
        lambda x: torch.tanh(x) * torch.exp(-(x**2)) + torch.sigmoid(x).log(),
        x.requires_grad_(),
    )


def test_gradcheck_fails_where_torch_fails_and_says_where(api):
    # relu at 0: backward says 0, central differences (eps - 0) / 2eps = 0.5.
    body = {"expr": "y = relu(x)", "inputs": {"x": {"data": [1.0, 0.0], "dtype": "float64"}}}
    out = post(api, "/v1/gradcheck", body)
    assert out["passed"] is False
    assert out["checks"]["x"]["passed"] is False
    assert out["worst"] == {
        "input": "x",
        "output_index": 1,
        "input_index": 1,
        "analytical": 0.0,
        "numerical": pytest.approx(0.5),
    }
    assert out["max_abs_diff"] == pytest.approx(0.5)
    x = torch.tensor([1.0, 0.0], dtype=torch.float64, requires_grad=True)
    assert not torch.autograd.gradcheck(torch.relu, x, raise_exception=False)


def test_gradcheck_tolerances_are_the_clients(api):
    body = {"expr": "y = relu(x)", "inputs": {"x": {"data": [0.0], "dtype": "float64"}}}
    assert post(api, "/v1/gradcheck", {**body, "atol": 0.6})["passed"] is True


@pytest.mark.parametrize(
    ("path", "body", "type_", "pointer"),
    [
        ("/v1/hessian", SEED, "invalid-arguments", "/output"),
        ("/v1/jacobian", {**SEED, "wrt": ["c"]}, "unknown-name", "/wrt/0"),
        ("/v1/jacobian", {**SEED, "wrt": []}, "invalid-arguments", "/wrt"),
        ("/v1/jacobian", {**SEED, "output": "R"}, "unknown-name", "/output"),
        (
            "/v1/jacobian",
            {"expr": "y = i * 2.0", "inputs": {"i": [1, 2]}, "wrt": ["i"]},
            "dtype-mismatch",
            "/wrt/0",
        ),
        (
            "/v1/gradcheck",
            {"expr": "y = x.argmax()", "inputs": {"x": [1.0, 2.0]}},
            "dtype-mismatch",
            "/output",
        ),
        ("/v1/gradcheck", {**SEED, "eps": -1}, "validation-error", "/eps"),
    ],
)
def test_refusals(api, path, body, type_, pointer):
    doc = post(api, path, body, status=422)
    assert doc["type"] == f"/problems/{type_}"
    assert doc["errors"][0]["pointer"] == pointer


def test_matrices_over_the_element_limit_are_refused_before_running(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", max_tensor_elements=10_000)
    with TestClient(create_app(settings)) as api:
        body = {"expr": "y = x * 2", "inputs": {"x": [1.0] * 200}}
        doc = post(api, "/v1/jacobian", body, status=422)
        assert (doc["limit"], doc["value"], doc["maximum"]) == (
            "max_tensor_elements",
            40_000,
            10_000,
        )


def test_passes_over_the_flop_limit_are_refused_before_running(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", max_flops=1_000_000)
    with TestClient(create_app(settings)) as api:
        body = {"expr": "y = x * 2", "inputs": {"x": [1.0] * 1000}}
        doc = post(api, "/v1/gradcheck", body, status=422)
        assert doc["limit"] == "max_flops"
        assert doc["value"] > doc["maximum"] == 1_000_000


EMPTY = {"b64": "", "shape": [0], "dtype": "float32"}


@pytest.mark.parametrize("path", ["/v1/jacobian", "/v1/gradcheck"])
def test_empty_tensors_give_empty_matrices(api, path):
    body = {"expr": "y = x * 2 + z.sum()", "inputs": {"x": EMPTY, "z": [1.0, 2.0]}}
    out = post(api, path, body)
    if path == "/v1/jacobian":
        assert out["jacobian"]["x"]["shape"] == [0, 0]
        assert out["jacobian"]["z"]["shape"] == [0, 2]
        assert out["matrix"]["shape"] == [0, 2]
    else:
        assert out["passed"] is True
        assert out["checks"]["x"]["analytical"]["shape"] == [0, 0]


def test_hessian_with_an_empty_input(api):
    body = {"expr": "f = (x * x).sum() + (z * z).sum()", "inputs": {"x": EMPTY, "z": [3.0]}}
    out = post(api, "/v1/hessian", body)
    assert out["hessian"]["z"]["z"]["data"] == [[2]]
    assert out["hessian"]["x"]["z"]["shape"] == [0, 1]
    assert out["matrix"]["data"] == [[2]]


def test_evaluate_over_the_byte_limit_is_refused_before_running(tmp_path):
    """A 112-byte pooling request once held 5.95 GB; its estimated peak is now refused."""
    settings = Settings(data_dir=tmp_path / "data", max_request_bytes=32 << 20)
    with TestClient(create_app(settings)) as api:
        expr = "y = x.expand(1,1,300,300)\nz = max_pool2d(y, 150, 1)"
        body = {"expr": expr, "inputs": {"x": [[[[1.0]]]]}, "outputs": ["z"]}
        doc = post(api, "/v1/evaluate", body, status=422)
        assert doc["type"].endswith("/limit-exceeded")
        assert (doc["limit"], doc["maximum"]) == ("max_request_bytes", 32 << 20)
        assert doc["value"] > doc["maximum"]
        assert doc["op"] == "max_pool2d" and doc["line"] == 2
