"""The nodes form: the same Program as the expr form, and its structural checks."""

from __future__ import annotations

import pytest

import engine
from engine.program import Limits, ProgramError, check, parse_expr, parse_nodes, run

from .conftest import values

Q_NODES = [
    {"id": "Q", "op": "sub", "inputs": ["t", "b2"]},  # any order: sorted topologically
    {"id": "a3", "op": "pow", "inputs": ["a", 3]},
    {"id": "t", "op": "mul", "inputs": [3, "a3"]},
    {"id": "b2", "op": "torch.pow", "inputs": ["b", 2]},
]


def _q(prog, inputs):
    check(prog, inputs)
    q = run(prog, inputs)["Q"]
    q.backward(gradient=engine.tensor([1.0, 1.0]))
    return q, inputs["a"].grad, inputs["b"].grad


def _seed():
    return {
        "a": engine.tensor([2.0, 3.0], requires_grad=True),
        "b": engine.tensor([6.0, 4.0], requires_grad=True),
    }


def test_nodes_q_equals_expr_q():
    from_nodes = _q(parse_nodes(Q_NODES, ["Q"]), _seed())
    from_expr = _q(parse_expr("Q = 3a³ − b²"), _seed())
    for n, e in zip(from_nodes, from_expr, strict=True):
        assert values(n) == values(e)
    assert values(from_nodes[0]) == [-12.0, 65.0]
    assert values(from_nodes[1]) == [36.0, 81.0]
    assert values(from_nodes[2]) == [-12.0, -8.0]
    assert type(from_nodes[0].grad_fn).__name__ == type(from_expr[0].grad_fn).__name__


def test_operator_symbols_attributes_and_special_values():
    x = engine.arange(12.0).reshape(3, 4)
    nodes = [
        {"id": "xt", "op": "T", "inputs": ["x"]},
        {"id": "p", "op": "@", "inputs": ["x", "xt"]},
        {"id": "col", "op": "getitem", "inputs": ["p", {"tuple": [{"slice": []}, 0]}]},
        {"id": "last", "op": "[]", "inputs": ["x", {"tuple": [{"ellipsis": True}, -1]}]},
        {"id": "s", "op": "sum", "inputs": ["x"], "attrs": {"dim": [0, 1]}},
        {"id": "c", "op": "cat", "inputs": [["x", "x"]], "attrs": {"dim": 0}},
    ]
    prog = parse_nodes(nodes, ["col", "last", "s", "c"])
    checked = check(prog, {"x": x})
    out = run(prog, {"x": x})
    assert values(out["col"]) == values((x @ x.T)[:, 0])
    assert values(out["last"]) == [3.0, 7.0, 11.0]
    assert values(out["s"]) == 66.0
    assert checked.outputs["c"].shape == (6, 4)


@pytest.mark.parametrize(
    ("nodes", "outputs", "kind", "node"),
    [
        ([{"id": "y", "op": "frobnicate", "inputs": ["x"]}], ["y"], "unknown_function", "y"),
        ([{"id": "y", "op": "neg", "inputs": ["x"]}] * 2, ["y"], "duplicate", "y"),
        ([{"id": "y", "op": "neg", "inputs": ["nope"]}], ["y"], "undefined", "y"),
        ([{"id": "y", "op": "neg", "inputs": ["x"]}], ["z"], "undefined", "z"),
        ([{"id": "y", "op": "neg", "inputs": ["y"]}], ["y"], "cycle", "y"),
        (
            [
                {"id": "u", "op": "neg", "inputs": ["w"]},
                {"id": "v", "op": "neg", "inputs": ["u"]},
                {"id": "w", "op": "add", "inputs": ["v", "x"]},
                {"id": "out", "op": "neg", "inputs": ["w"]},
            ],
            ["out"],
            "cycle",
            "u",
        ),
        ([{"id": "y", "op": "neg", "inputs": ["x"], "extra": 1}], ["y"], "input", "y"),
        ([{"id": "y", "op": "neg", "inputs": [{"eval": "1"}]}], ["y"], "input", "y"),
        (
            [{"id": "y", "op": "neg", "inputs": ["x"], "attrs": {"__class__": 1}}],
            ["y"],
            "forbidden",
            "y",
        ),
        ([{"id": "y", "op": "neg", "inputs": [2**70]}], ["y"], "limit", "y"),
        ([{"op": "neg", "inputs": ["x"]}], ["y"], "input", None),
        ("not a list", ["y"], "input", None),
    ],
)
def test_structural_errors(nodes, outputs, kind, node):
    with pytest.raises(ProgramError) as info:
        parse_nodes(nodes, outputs, inputs=["x"])
    assert info.value.kind == kind, str(info.value)
    assert info.value.node == node


@pytest.mark.parametrize(
    ("node", "kind"),
    [
        ({"id": "y", "op": "relu", "inputs": ["x", "x"]}, "arity"),
        ({"id": "y", "op": "sum", "inputs": ["x"], "attrs": {"dimm": 1}}, "arity"),
        ({"id": "y", "op": "matmul", "inputs": ["x", "x"]}, "shape"),
        ({"id": "y", "op": "sum", "inputs": ["x"], "attrs": {"dim": 5}}, "argument"),
        ({"id": "y", "op": "expand", "inputs": ["x", 10**5, 10**5, 3]}, "shape"),
    ],
)
def test_checks_name_the_node(node, kind):
    prog = parse_nodes([node], ["y"])
    with pytest.raises(ProgramError) as info:
        check(prog, {"x": engine.ones(2, 3)})
    assert (info.value.kind, info.value.node) == (kind, "y"), str(info.value)


def test_free_references_are_inputs_checked_later():
    prog = parse_nodes([{"id": "y", "op": "neg", "inputs": ["x"]}], ["y"])
    assert prog.inputs == ("x",)
    with pytest.raises(ProgramError) as info:
        check(prog, {})
    assert (info.value.kind, info.value.node) == ("undefined", "y")


def test_node_count_limit():
    nodes = [{"id": f"n{i}", "op": "neg", "inputs": ["x"]} for i in range(11)]
    with pytest.raises(ProgramError) as info:
        parse_nodes(nodes, ["n0"], limits=Limits(max_nodes=10))
    assert (info.value.kind, info.value.limit) == ("limit", "max_nodes")


def test_long_chain_sorts_without_recursion():
    n = 20_000
    nodes = [
        {"id": f"n{i}", "op": "mul", "inputs": [f"n{i - 1}" if i else "x", 1.0]} for i in range(n)
    ]
    nodes.reverse()  # worst order for a naive sort
    prog = parse_nodes(nodes, [f"n{n - 1}"], limits=Limits(max_nodes=n))
    assert prog.eqns[0].id == "n0" and prog.eqns[-1].id == f"n{n - 1}"
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    check(prog, {"x": x}, Limits(max_nodes=n))
    run(prog, {"x": x})[f"n{n - 1}"].sum().backward()
    assert values(x.grad) == [1.0, 1.0]
