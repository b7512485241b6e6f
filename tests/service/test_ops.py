"""GET /v1/ops lists the registry: every public function, with what a client needs to call it."""

import pytest

from engine.registry import FUNCTIONS
from service.app import create_app
from service.routes.ops import catalogue
from service.settings import Settings


@pytest.fixture(scope="module")
def ops(tmp_path_factory):
    from fastapi.testclient import TestClient

    app = create_app(Settings(data_dir=tmp_path_factory.mktemp("ops")))
    with TestClient(app) as client:
        response = client.get("/v1/ops")
    assert response.status_code == 200
    return {op["name"]: op for op in response.json()}


def test_every_public_function_is_listed_once(ops):
    functions = [name for name, op in ops.items() if op["kind"] == "function"]
    assert sorted(functions) == sorted(FUNCTIONS)


def test_operators_and_attributes_follow_the_functions(ops):
    assert ops["+"]["signature"] == "input + other"
    assert ops["+"]["grad_fn"] == "AddBackward0"
    assert ops["**"]["grad_fn"] == "PowBackward0"
    assert ops["-x"]["signature"] == "-input"
    assert ops["[]"]["signature"] == "input[index]"
    assert ops[".T"] == {
        "name": ".T",
        "kind": "attribute",
        "signature": "input.T",
        "method": False,
        "grad_fn": None,
        "family": "tensor",
        "doc": "The Tensor attribute of the same name.",
    }
    assert ops[".detach"]["signature"] == "input.detach()"


def test_primitives_carry_their_grad_fn_and_composites_none(ops):
    assert ops["pow"]["grad_fn"] == "PowBackward0"
    assert ops["sum"]["grad_fn"] == "SumBackward0"  # the name for sum(x)
    assert ops["exp"]["grad_fn"] == "ExpBackward0"
    assert ops["cross_entropy"]["grad_fn"] is None  # log_softmax + nll_loss, as torch's


def test_signatures_read_as_pytorch_and_are_the_same_in_every_process(ops):
    assert ops["sum"]["signature"] == "sum(input, dim=None, keepdim=False, *, dtype=None)"
    assert ops["pow"]["signature"] == "pow(input, exponent)"
    assert all(" at 0x" not in op["signature"] for op in ops.values())
    assert ops["sum"]["method"] is True
    assert ops["sum"]["family"] == "reductions"
    assert ops["exp"]["doc"]


def test_the_list_is_sorted_and_cached():
    names = [op["name"] for op in catalogue() if op["kind"] == "function"]
    assert names == sorted(names)
    assert catalogue() is catalogue()
