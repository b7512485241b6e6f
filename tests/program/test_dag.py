"""The DAG description: torch's grad_fn graph, node for node, and its DOT drawing."""

from __future__ import annotations

import json
import shutil
from collections import deque

import numpy as np
import pytest
import torch

import engine
from engine.program import (
    GraphvizMissing,
    ProgramError,
    describe,
    parse_expr,
    render_svg,
    run,
    to_python,
)


def torch_describe(outputs: dict, inputs: dict) -> dict:
    """torch's graph numbered as `describe` numbers ours (Kahn's order from the outputs)."""
    names = {id(t): n for n, t in inputs.items()}
    roots = [t.grad_fn for t in outputs.values() if t.grad_fn is not None]
    consumers, nodes, stack, seen = {}, {}, list(roots), {id(r) for r in roots}
    for r in roots:
        nodes[id(r)] = r
    while stack:
        fn = stack.pop()
        for nxt, _ in fn.next_functions:
            if nxt is None:
                continue
            consumers[id(nxt)] = consumers.get(id(nxt), 0) + 1
            if id(nxt) not in seen:
                seen.add(id(nxt))
                nodes[id(nxt)] = nxt
                stack.append(nxt)
    order, left = {}, dict(consumers)
    ready = deque(r for r in roots if left.get(id(r), 0) == 0)
    while ready:
        fn = ready.popleft()
        if id(fn) in order:
            continue
        order[id(fn)] = len(order)
        for nxt, _ in fn.next_functions:
            if nxt is not None:
                left[id(nxt)] -= 1
                if left[id(nxt)] == 0:
                    ready.append(nxt)
    out = []
    for key, num in sorted(order.items(), key=lambda kv: kv[1]):
        fn = nodes[key]
        entry = {
            "id": num,
            "name": type(fn).__name__,
            "next": [None if n is None else order[id(n)] for n, _ in fn.next_functions],
        }
        if type(fn).__name__ == "AccumulateGrad":
            entry["input"] = names.get(id(fn.variable))
        out.append(entry)
    return {"nodes": out, "outputs": {n: order[id(t.grad_fn)] for n, t in outputs.items()}}


def _ours_vs_torch(text, arrays):
    prog = parse_expr(text)
    ours_in = {k: engine.tensor(v, requires_grad=v.dtype.kind == "f") for k, v in arrays.items()}
    theirs_in = {k: torch.tensor(v, requires_grad=v.dtype.kind == "f") for k, v in arrays.items()}
    ours_out = run(prog, ours_in)
    ns = {"torch": torch, "F": torch.nn.functional, **theirs_in}
    ns.update({n: getattr(torch, n) for n in ("relu", "softmax", "matmul", "tanh", "cat")})
    exec(to_python(text)[0], {}, ns)  # noqa: S102 - the test's own oracle
    theirs_out = {n: ns[n] for n in ours_out}
    ours = describe(ours_out, ours_in)
    theirs = torch_describe(theirs_out, theirs_in)
    slim = [{k: e[k] for k in ("id", "name", "next", "input") if k in e} for e in ours["nodes"]]
    return ours, slim, theirs


def test_seed_q_dag_is_torchs():
    arrays = {"a": np.array([2.0, 3.0]), "b": np.array([6.0, 4.0])}
    ours, slim, theirs = _ours_vs_torch("Q = 3a³ − b²", arrays)
    assert slim == theirs["nodes"]
    assert ours["outputs"] == theirs["outputs"] == {"Q": 0}
    by_id = {e["id"]: e for e in ours["nodes"]}
    sub = by_id[0]
    assert sub["name"] == "SubBackward0" and sub["op"] == "sub"
    mul, pow_b = (by_id[i] for i in sub["next"])
    assert mul["name"] == "MulBackward0" and pow_b["name"] == "PowBackward0"
    pow_a = by_id[mul["next"][0]]
    assert mul["next"][1] is None  # the constant 3
    assert pow_a["name"] == "PowBackward0"
    leaf_a, leaf_b = by_id[pow_a["next"][0]], by_id[pow_b["next"][0]]
    assert (leaf_a["name"], leaf_a["input"], leaf_a["requires_grad"]) == (
        "AccumulateGrad",
        "a",
        True,
    )
    assert (leaf_b["name"], leaf_b["input"]) == ("AccumulateGrad", "b")
    for e in ours["nodes"]:
        assert e["shape"] == [2] and e["dtype"] == "float64"
    json.dumps(ours)  # JSON-able as it is


@pytest.mark.parametrize(
    "text",
    [
        "y = relu(x @ w.T + b)[:, 0]",
        "y = softmax(x, dim=-1) * x; z = y.sum()",
        "h = tanh(x @ w.T); z = (h * h).mean() + x.sum()",
        "y = cat([x, x * 2], 1).sum(0)",
        "y = x * x",
    ],
)
def test_composite_graphs_match_torch(text):
    rng = np.random.default_rng(0)
    arrays = {
        "x": rng.standard_normal((3, 4)),
        "w": rng.standard_normal((5, 4)),
        "b": rng.standard_normal(5),
    }
    _, slim, theirs = _ours_vs_torch(text, arrays)
    assert slim == theirs["nodes"]


def test_shapes_of_inner_nodes_come_from_their_consumers():
    x = engine.ones(3, 4, requires_grad=True)
    out = run(parse_expr("y = (x @ x.T).sum(1)"), {"x": x})
    d = describe(out, {"x": x})
    shapes = {e["name"]: e["shape"] for e in d["nodes"]}
    assert shapes["SumBackward1"] == [3]
    assert shapes["MmBackward0"] == [3, 3]
    assert shapes["PermuteBackward0"] == [4, 3]
    assert shapes["AccumulateGrad"] == [3, 4]


def test_outputs_without_grad_and_leaf_outputs():
    x = engine.ones(2, requires_grad=True)
    c = engine.ones(2)
    d = describe({"x": x, "c": c * 2}, {"x": x})
    assert d["outputs"]["c"] is None
    assert d["nodes"][d["outputs"]["x"]]["name"] == "AccumulateGrad"


def test_dot_draws_the_seed_figure():
    arrays = {"a": np.array([2.0, 3.0]), "b": np.array([6.0, 4.0])}
    ours, _, _ = _ours_vs_torch("Q = 3a³ − b²", arrays)
    dot = ours["dot"]
    assert dot.startswith("digraph autograd {") and dot.rstrip().endswith("}")
    by_id = {e["id"]: e for e in ours["nodes"]}
    leaves = [e["id"] for e in ours["nodes"] if e["name"] == "AccumulateGrad"]
    for i in leaves:
        assert f'n{i} [label="{by_id[i]["input"]}\\n(2,)", fillcolor=lightblue];' in dot
    # forward direction: leaf -> PowBackward0 -> ... -> SubBackward0 -> Q
    for e in ours["nodes"]:
        for n in e["next"]:
            if n is not None:
                assert f"n{n} -> n{e['id']};" in dot
    assert "n0 -> out0;" in dot and 'label="Q\\n(2,)"' in dot


def test_dot_escapes_names():
    x = engine.ones(1, requires_grad=True)
    d = describe({'we"ird\\': x * 2}, {'x"': x})
    assert 'label="we\\"ird\\\\\\n(1,)"' in d["dot"]
    assert 'label="x\\"\\n(1,)"' in d["dot"]


def test_render_svg_names_the_missing_package(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(GraphvizMissing) as info:
        render_svg("digraph { a -> b }")
    assert info.value.kind == "unavailable"
    assert "graphviz" in str(info.value)


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_render_svg_with_graphviz():
    arrays = {"a": np.array([2.0, 3.0]), "b": np.array([6.0, 4.0])}
    ours, _, _ = _ours_vs_torch("Q = 3a³ − b²", arrays)
    svg = render_svg(ours["dot"])
    assert svg.lstrip().startswith(b"<?xml") and b"<svg" in svg and b"SubBackward0" in svg
    with pytest.raises(ProgramError):
        render_svg("digraph { this is not dot")
