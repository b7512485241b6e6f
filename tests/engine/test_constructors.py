"""Tensor and Node each have one constructor (`Tensor(...)`, `graph.new_node`); engine.fast
builds them field by field instead (its documented fast constructor). Both must set every
slot: a slot left unset would be an AttributeError far from its cause."""

from __future__ import annotations

import numpy as np
import pytest

import engine
from engine import fast
from engine.graph import AccumulateGrad, Node, new_node
from engine.registry import OPS
from engine.tensor import Tensor


def _slots(cls):
    names = []
    for klass in cls.__mro__:
        names.extend(s for s in getattr(klass, "__slots__", ()) if s != "__weakref__")
    return names


def _unset(obj):
    return [s for s in _slots(type(obj)) if not hasattr(obj, s)]


def test_the_slot_lists_are_what_this_test_expects():
    assert _slots(Tensor) == ["_a", "_rg", "grad", "grad_fn", "_nr", "_acc", "_retain"]
    assert "key" in _slots(Node) and "uses" in _slots(Node)


def test_the_tensor_constructor_sets_every_slot():
    assert _unset(Tensor(np.zeros(2))) == []
    assert _unset(engine.nn.Parameter(np.zeros(2))) == []


def test_the_node_constructor_sets_every_slot():
    cls = OPS["mul"].cls
    node = new_node(cls, {}, (None, None), (0, 0), (), None, ((2,), (2,)), (None, None))
    assert _unset(node) == []
    leaf = engine.tensor([1.0], requires_grad=True)
    assert _unset(leaf.accumulator()) == []
    assert isinstance(leaf.accumulator(), AccumulateGrad)


def _made(x, y):
    """Tensors and nodes from each kind of forward: operators with a Tensor and with a
    number, `**`, one-operand ops with and without attributes, the general apply."""
    return [
        x * y,
        x + 2.0,
        3 * x,
        x / y,
        x - y,
        x**2,
        engine.exp(x),
        x.sum(),
        x.sum(0),
        x.mean(),
        engine.maximum(x, y),
        engine.cat([x, y]),
    ]


@pytest.mark.parametrize("path", ["fast", "reference"])
def test_every_path_sets_every_slot(path):
    with fast.fast() if path == "fast" else fast.reference():
        x = engine.tensor([1.0, 2.0], requires_grad=True)
        y = engine.tensor([3.0, 4.0], requires_grad=True)
        outs = _made(x, y)
        for t in outs:
            assert _unset(t) == [], t
            assert _unset(t.grad_fn) == [], t.grad_fn
        with engine.no_grad():
            assert all(_unset(t) == [] for t in _made(x, y))
        sum(o.sum() for o in outs).backward()  # a leaf's first .grad: made by the step
        assert _unset(x.grad) == [] and _unset(y.grad) == []
