"""The shape rules of the linear-algebra, shape and indexing functions (what the service runs
to validate a graph before any numpy work) agree with what the functions compute, and
reject bad shapes with the message the call itself raises; plus indexing errors and the
multi-output ops' backward, which the registry-wide cases cannot express."""

from __future__ import annotations

import numpy as np
import pytest

import engine
from engine.registry import FUNCTIONS


def _ones(*shapes):
    return [engine.tensor(np.ones(s)) for s in shapes]


def _shapes(out):
    return tuple(tuple(o.shape) for o in out) if isinstance(out, tuple) else tuple(out.shape)


# (function, operand shapes, attributes as the shape rule takes them, the call)
RULES = [
    *[
        ("matmul", (a, b), {}, lambda x, y: x @ y)
        for a, b in [
            ((3,), (3,)),
            ((2, 3), (3,)),
            ((3,), (3, 4)),
            ((2, 3), (3, 4)),
            ((5, 2, 3), (3, 4)),
            ((5, 2, 3), (3,)),
            ((3,), (5, 3, 4)),
            ((2, 3), (5, 3, 4)),
            ((2, 1, 2, 3), (5, 3, 4)),
            ((3,), (2, 5, 3, 4)),
        ]
    ],
    ("mm", ((2, 3), (3, 4)), {}, engine.mm),
    ("bmm", ((2, 2, 3), (2, 3, 4)), {}, engine.bmm),
    ("mv", ((2, 3), (3,)), {}, engine.mv),
    ("dot", ((3,), (3,)), {}, engine.dot),
    ("addmm", ((4,), (2, 3), (3, 4)), {"beta": 2}, lambda b, x, y: engine.addmm(b, x, y, beta=2)),
    ("reshape", ((3, 4),), {"shape": (2, -1)}, lambda x: x.reshape(2, -1)),
    ("view_as", ((6,), (2, 3)), {}, lambda x, y: x.view_as(y)),
    ("expand_as", ((3, 1), (2, 3, 4)), {}, lambda x, y: x.expand_as(y)),
    ("flatten", ((2, 3, 4),), {"start_dim": 1}, lambda x: x.flatten(1)),
    ("flatten", ((),), {}, lambda x: x.flatten()),
    ("unflatten", ((3, 4),), {"dim": 1, "sizes": (2, -1)}, lambda x: x.unflatten(1, (2, -1))),
    ("squeeze", ((3, 1, 4, 1),), {"dim": (0, 1)}, lambda x: x.squeeze((0, 1))),
    ("squeeze", ((3, 1, 4, 1),), {}, lambda x: x.squeeze()),
    ("movedim", ((2, 3, 4),), {"source": 0, "destination": 2}, lambda x: x.movedim(0, 2)),
    ("repeat", ((2, 3),), {"repeats": (2, 1, 3)}, lambda x: x.repeat(2, 1, 3)),
    ("contiguous", ((2, 3),), {}, lambda x: x.contiguous()),
    ("cat", ((2, 3), (2, 1)), {"dim": -1}, lambda *xs: engine.cat(xs, dim=-1)),
    ("stack", ((2, 3), (2, 3)), {"dim": 1}, lambda *xs: engine.stack(xs, 1)),
    ("split", ((5, 2),), {"split_size_or_sections": 2}, lambda x: x.split(2)),
    ("split", ((5, 2),), {"split_size_or_sections": [1, 4]}, lambda x: x.split([1, 4])),
    ("chunk", ((5, 2),), {"chunks": 3}, lambda x: x.chunk(3)),
    ("unbind", ((2, 3),), {"dim": 1}, lambda x: x.unbind(1)),
    ("select", ((3, 4),), {"dim": 1, "index": -2}, lambda x: x.select(1, -2)),
    ("narrow", ((3, 4),), {"dim": 1, "start": 1, "length": 2}, lambda x: x.narrow(1, 1, 2)),
    (
        "slice_scatter",
        ((3, 4), (3, 2)),
        {"dim": 1, "start": 1, "end": 3},
        lambda x, s: engine.slice_scatter(x, s, 1, 1, 3),
    ),
    (
        "select_scatter",
        ((3, 4), (4,)),
        {"dim": 0, "index": 1},
        lambda x, s: engine.select_scatter(x, s, 0, 1),
    ),
    (
        "index_put",
        ((3, 4), (4,)),
        {"indices": ([0, 2],)},
        lambda x, v: x.index_put((engine.tensor([0, 2]),), v),
    ),
    (
        "getitem",
        ((3, 4, 5),),
        {"index": (None, slice(1, None), [0, 3, 0], slice(None, None, 2))},
        lambda x: x[None, 1:, [0, 3, 0], ::2],
    ),
    ("getitem", ((3, 4, 5),), {"index": (..., 1)}, lambda x: x[..., 1]),
]


@pytest.mark.parametrize("name, shapes, attrs, call", RULES, ids=[r[0] for r in RULES])
def test_shape_rule_matches_the_call(name, shapes, attrs, call):
    rule = FUNCTIONS[name].shape
    assert rule is not None
    assert rule(*shapes, **attrs) == _shapes(call(*_ones(*shapes)))


BAD = [
    ("matmul", ((2, 3), (4, 5)), {}, lambda x, y: x @ y),
    ("matmul", ((3,), (4, 5)), {}, lambda x, y: x @ y),
    ("matmul", ((6, 2, 3), (4,)), {}, lambda x, y: x @ y),
    ("matmul", ((2, 3), (6, 4, 5)), {}, lambda x, y: x @ y),
    ("matmul", ((6, 2, 3), (5, 3, 5)), {}, lambda x, y: x @ y),
    ("matmul", ((), (3,)), {}, lambda x, y: x @ y),
    ("addmm", ((3,), (2, 3), (3, 5)), {}, engine.addmm),
    ("cat", ((2, 3), (3, 3)), {"dim": 1}, lambda *xs: engine.cat(xs, 1)),
    ("stack", ((2, 3), (2, 4)), {}, lambda *xs: engine.stack(xs)),
    ("split", ((4,),), {"split_size_or_sections": [1, 2]}, lambda x: x.split([1, 2])),
    ("narrow", ((3, 4),), {"dim": 0, "start": 2, "length": 2}, lambda x: x.narrow(0, 2, 2)),
    ("getitem", ((3, 4),), {"index": (1, 9)}, lambda x: x[1, 9]),
    ("getitem", ((3, 4),), {"index": [5]}, lambda x: x[[5]]),
]


@pytest.mark.parametrize("name, shapes, attrs, call", BAD, ids=[b[0] for b in BAD])
def test_shape_rule_rejects_as_the_call_does(name, shapes, attrs, call):
    with pytest.raises(engine.ShapeError) as by_call:
        call(*_ones(*shapes))
    with pytest.raises(engine.ShapeError) as by_rule:
        FUNCTIONS[name].shape(*shapes, **attrs)
    assert str(by_rule.value) == str(by_call.value)


def test_out_of_range_indices_are_index_errors_with_torchs_message():
    x = engine.ones(3, 4)
    with pytest.raises(IndexError, match="index 5 is out of bounds for dimension 0 with size 3"):
        x[5]
    with pytest.raises(IndexError, match="index 4 is out of bounds for dimension 1 with size 4"):
        x[:, engine.tensor([0, 4])]
    with pytest.raises(IndexError, match="too many indices for tensor of dimension 2"):
        x[0, 0, 0]
    with pytest.raises(ValueError, match="step must be greater than zero"):
        x[::-1]


def test_split_saves_nothing_so_a_second_backward_works_as_in_torch():
    """SplitBackward0 keeps no tensors: an unused output's zeros come from the input's shape,
    so backward through a split twice needs no retain_graph (torch's behaviour)."""
    x = engine.ones(4, 2, requires_grad=True)
    a, _ = x.split(2)
    u = x.unbind(1)[0]
    for _ in range(2):
        (a.sum() + u.sum()).backward()
    assert x.grad.tolist() == [[4.0, 2.0], [4.0, 2.0], [2.0, 0.0], [2.0, 0.0]]
