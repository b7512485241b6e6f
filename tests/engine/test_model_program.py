"""engine.models.program.to_program: a Module's forward as a nodes program of the graph
language, run by engine.program on the module's state_dict tensors, computes what the module
computes: the same output, grad_fn graph, gradients and running-statistic updates."""

from __future__ import annotations

import json

import numpy as np
import pytest

import engine
from engine import nn
from engine.errors import ArgumentError
from engine.models import mlp, resnet18
from engine.models.program import to_program
from engine.program import DEFAULT_LIMITS, check, parse_nodes, run


def _leaves(model):
    """The state_dict as fresh leaf tensors (copies), parameters requiring grad."""
    params = {n for n, _ in model.named_parameters()}
    return {
        k: engine.Tensor(v.detach().numpy().copy(), requires_grad=k in params)
        for k, v in model.state_dict().items()
    }


def _graph(t):
    """grad_fn names, breadth first."""
    out, seen, todo = [], set(), [t.grad_fn]
    while todo:
        fn = todo.pop(0)
        if fn is None or id(fn) in seen:
            continue
        seen.add(id(fn))
        out.append(type(fn).__name__)
        todo += [f for f, _ in fn.next_functions]
    return out


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_resnet18_program_computes_the_modules_forward_and_backward(mode):
    engine.manual_seed(0)
    model = resnet18(num_classes=10)
    model.train(mode == "train")
    prog = to_program(model, mode)
    compiled = parse_nodes(prog.nodes, prog.outputs)
    leaves = _leaves(model)
    x = engine.randn(2, 3, 64, 64)

    checked = check(compiled, {"input": x, **leaves}, DEFAULT_LIMITS, backward=True)
    assert tuple(checked.outputs["output"]) == (2, 10)
    out = run(compiled, {"input": x, **leaves})["output"]
    ref = model(x)
    same = out.detach().numpy().tobytes() == ref.detach().numpy().tobytes()
    assert same  # the same ops with the same arguments: bit for bit
    assert _graph(out) == _graph(ref)

    out.sum().backward()
    ref.sum().backward()
    for name, p in model.named_parameters():
        assert leaves[name].grad.numpy().tobytes() == p.grad.numpy().tobytes(), name
    for name, b in model.named_buffers():  # running statistics updated in place, as forward
        if not name.endswith("num_batches_tracked"):
            assert leaves[name].numpy().tobytes() == b.numpy().tobytes(), name
    if mode == "train":
        assert prog.counters == [n for n, _ in model.named_buffers() if n.endswith("_tracked")]
        assert int(model.bn1.num_batches_tracked) == 1
    else:
        assert prog.counters == []


def test_resnet18_nodes_one_per_layer_call_with_state_dict_names():
    model = resnet18()
    prog = to_program(model, "train")
    assert prog.inputs == ["input"] and prog.outputs == ["output"]
    json.dumps(prog.to_json())  # plain JSON
    ops = [n["op"] for n in prog.nodes]
    # stem 4, 8 blocks x (2 conv, 2 bn, 2 relu, add) + 3 downsample x 2, pool, flatten, fc
    assert len(ops) == 4 + 8 * 7 + 3 * 2 + 3
    assert {op: ops.count(op) for op in set(ops)} == {
        "conv2d": 20, "batch_norm": 20, "relu": 17, "max_pool2d": 1, "add": 8,
        "adaptive_avg_pool2d": 1, "flatten": 1, "linear": 1,
    }  # fmt: skip
    by_id = {n["id"]: n for n in prog.nodes}
    assert by_id["conv1"] == {
        "id": "conv1", "op": "conv2d", "inputs": ["input", "conv1.weight", None],
        "attrs": {"stride": [2, 2], "padding": [3, 3], "dilation": [1, 1], "groups": 1},
    }  # fmt: skip
    assert by_id["layer1.0.bn1"]["inputs"] == [
        "layer1.0.conv1", "layer1.0.bn1.running_mean", "layer1.0.bn1.running_var",
        "layer1.0.bn1.weight", "layer1.0.bn1.bias",
    ]  # fmt: skip
    assert by_id["layer1.0.bn1"]["attrs"] == {"training": True, "momentum": 0.1, "eps": 1e-5}
    assert by_id["layer2.0.add"]["inputs"] == ["layer2.0.bn2", "layer2.0.downsample.1"]
    assert by_id["layer1.0.relu_1"]["inputs"] == ["layer1.0.add"]
    assert by_id["output"] == {"id": "output", "op": "linear",
                               "inputs": ["flatten", "fc.weight", "fc.bias"]}  # fmt: skip
    assert prog.layers["output"] == "fc" and prog.layers["layer1.0.relu_1"] == "layer1.0.relu"
    read = {v for n in prog.nodes for v in n["inputs"] if isinstance(v, str)}
    state = set(model.state_dict())
    assert state - read == {k for k in state if k.endswith("num_batches_tracked")}
    eval_nodes = to_program(model, "eval").nodes
    assert {n["attrs"]["training"] for n in eval_nodes if n["op"] == "batch_norm"} == {False}


def test_mlp_program_with_dropout_is_off_in_eval():
    engine.manual_seed(1)
    model = mlp([5, 7, 3], activation="tanh", dropout=0.5)
    model.eval()
    prog = to_program(model, "eval")
    assert [n["op"] for n in prog.nodes] == ["linear", "tanh", "dropout", "linear"]
    assert prog.nodes[2]["inputs"][1:] == [0.5, False]
    assert to_program(model, "train").nodes[2]["inputs"][1:] == [0.5, True]
    leaves = _leaves(model)
    x = engine.randn(4, 5)
    out = run(parse_nodes(prog.nodes, prog.outputs), {"input": x, **leaves})["output"]
    np.testing.assert_array_equal(out.detach().numpy(), model(x).detach().numpy())


def test_modules_without_a_program_form_are_named():
    class Odd(nn.Module):
        def forward(self, x):
            return x * 2

    with pytest.raises(ArgumentError, match=r"1 \(Odd\) has no program form"):
        to_program(nn.Sequential(nn.Linear(2, 2), Odd()))
    with pytest.raises(ArgumentError, match="mode must be"):
        to_program(nn.Linear(2, 2), "training")
    bn = nn.BatchNorm2d(3, momentum=None)
    with pytest.raises(ArgumentError, match="momentum=None"):
        to_program(nn.Sequential(nn.Conv2d(3, 3, 1), bn), "train")
    assert to_program(nn.Sequential(nn.Conv2d(3, 3, 1), bn), "eval").counters == []


def test_seeded_builds_reproducibly_and_leaves_the_global_generator_alone():
    from engine.factories import seeded

    engine.manual_seed(7)
    expected_next = engine.rand(3).numpy()
    engine.manual_seed(7)
    with seeded(123):
        a = mlp([4, 5]).state_dict()["0.weight"].numpy().copy()
    with seeded(123):
        b = mlp([4, 5]).state_dict()["0.weight"].numpy().copy()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(engine.rand(3).numpy(), expected_next)
