"""A leaf's .grad (and a retained .grad) is its own array: changing one in place changes no
other gradient, whichever way backward handed the gradient around (add passes its incoming
gradient through to both operands, a full sum broadcasts one value, views reshape it)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import engine

GRAPHS = {
    "add_then_mul": lambda x, y: ((x + y) * 2).sum(),
    "add_sum": lambda x, y: (x + y).sum(),
    "add_chain": lambda x, y: ((x + y) + (y + x) * 3).sum(),
    "sub_mul": lambda x, y: ((x - y) * 3).sum(),
    "same_leaf_twice": lambda x, y: ((x + x) * y).sum(),
    "reshape": lambda x, y: ((x.reshape(2, 1) + y.reshape(2, 1)) * 2).sum(),
    "cat": lambda x, y: (engine.cat([x + y, x * 1.0]) * 2).sum(),
    "mean": lambda x, y: (x + y).mean(),
    "one_element": lambda x, y: (x[:1] + y[:1]).sum(),
}


def _leaves():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    y = engine.tensor([3.0, 4.0], requires_grad=True)
    return x, y


@pytest.mark.parametrize("name", list(GRAPHS))
def test_leaf_grads_share_no_memory(name):
    x, y = _leaves()
    GRAPHS[name](x, y).backward()
    arrays = [x.grad.numpy(), y.grad.numpy()]
    for a, b in itertools.combinations(arrays, 2):
        assert not np.shares_memory(a, b)
    for a in arrays:
        assert a.flags.writeable and a.flags.c_contiguous
    before = y.grad.numpy().copy()
    x.grad.numpy()[...] += 100.0
    np.testing.assert_array_equal(y.grad.numpy(), before)


def test_retained_grad_is_not_the_leaf_grad():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    s = x * 2
    z = s + 0.0
    z.retain_grad()
    (z * 3).sum().backward()
    assert not np.shares_memory(z.grad.numpy(), x.grad.numpy())
    assert not np.shares_memory(z.grad.numpy(), s.detach().numpy())


def test_second_backward_gets_fresh_grads_and_accumulates():
    x, y = _leaves()
    loss = (x + y).sum()
    loss.backward(retain_graph=True)
    first = x.grad.numpy()
    loss.backward()
    assert x.grad.tolist() == [2.0, 2.0] and y.grad.tolist() == [2.0, 2.0]
    assert first.tolist() == [1.0, 1.0] or first is not x.grad.numpy()
    assert not np.shares_memory(x.grad.numpy(), y.grad.numpy())


def test_a_leaf_keeps_one_accumulate_grad_across_graphs():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    first = (x * 2).grad_fn.next_functions[0][0]
    (x * 2).sum().backward()
    assert (x * 3).grad_fn.next_functions[0][0] is first
    assert first.variable is x


def test_interleaved_graphs_accumulate_every_path():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    y1 = x * 2  # recorded before the next backward runs x's AccumulateGrad
    (x * 5).sum().backward()
    y2 = x * 3
    (y1 + y2).sum().backward()
    assert x.grad.tolist() == [10.0, 10.0]
    dropped = x * 7  # never backpropagated
    del dropped
    (x * x).sum().backward()
    assert x.grad.tolist() == [12.0, 14.0]


def test_deepcopy_of_a_used_leaf_gets_its_own_gradient():
    import copy

    x = engine.tensor([1.0, 2.0], requires_grad=True)
    (x * 2).sum().backward()
    y = copy.deepcopy(x)
    (y * 3).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0] and y.grad.tolist() == [5.0, 5.0]


def test_backward_to_a_leaf_nobody_holds():
    y = (engine.tensor([1.0, 2.0], requires_grad=True) * 2).sum()
    y.backward()  # the gradient has nowhere to go, and that is fine
    leaf = y.grad_fn.next_functions[0][0].next_functions[0][0]
    assert leaf.name() == "AccumulateGrad" and leaf.variable is None
