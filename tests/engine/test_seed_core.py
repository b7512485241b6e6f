"""The seed tutorial's first autograd lines, as a smoke test of the core engine."""

import numpy as np

import engine


def test_q_backward_with_gradient():
    a = engine.tensor([2.0, 3.0], requires_grad=True)
    b = engine.tensor([6.0, 4.0], requires_grad=True)
    q = 3 * a**3 - b**2
    assert q.tolist() == [-12.0, 65.0]
    q.backward(gradient=engine.tensor([1.0, 1.0]))
    assert a.grad.tolist() == [36.0, 81.0]
    assert b.grad.tolist() == [-12.0, -8.0]


def test_second_derivative_of_cube_is_6x():
    x = engine.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (g,) = engine.autograd.grad((x * x * x).sum(), x, create_graph=True)
    assert g.tolist() == [3.0, 12.0, 27.0]
    g.sum().backward()
    assert x.grad.tolist() == [6.0, 12.0, 18.0]


def test_long_chain_has_no_recursion_limit():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    z = x
    for _ in range(100_000):
        z = z * 1.0
    z.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0])
