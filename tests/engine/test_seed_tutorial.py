"""The seed tutorial ("A Gentle Introduction to torch.autograd"), its autograd part ported
line for line with `torch` replaced by `engine`.

Each cell is a function of the library module `m`, its lines as in the tutorial with
`torch.` spelled `m.`; the tests run it with `m = engine`, assert the numbers the tutorial
shows, and run it again with `m = torch` to check that both print the same thing.
(The ResNet-18 and SGD cells come with later issues.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import engine
from engine.registry import FUNCTIONS

needs_eq = pytest.mark.skipif(
    "eq" not in FUNCTIONS,
    reason="`9*a**2 == a.grad` needs the eq comparison op (not yet registered)",
)


def differentiation_in_autograd(m):
    """Cells "Differentiation in Autograd"."""
    a = m.tensor([2.0, 3.0], requires_grad=True)
    b = m.tensor([6.0, 4.0], requires_grad=True)

    Q = 3 * a**3 - b**2  # noqa: N806 - the tutorial's name

    external_grad = m.tensor([1.0, 1.0])
    Q.backward(gradient=external_grad)
    return a, b, Q


def check_collected_gradients(a, b):
    # check if collected gradients are correct
    print(9 * a**2 == a.grad)
    print(-2 * b == b.grad)


def exclusion_from_the_dag(m):
    """Cell "Exclusion from the DAG"."""
    x = m.rand(5, 5)
    y = m.rand(5, 5)
    z = m.rand((5, 5), requires_grad=True)

    a = x + y
    print(f"Does `a` require gradients?: {a.requires_grad}")
    b = x + z
    print(f"Does `b` require gradients?: {b.requires_grad}")
    return a, b


def walk(fn):
    """Q.grad_fn.next_functions, followed down to the AccumulateGrad nodes."""
    if fn is None:
        return None
    return (type(fn).__name__, tuple((walk(f), i) for f, i in fn.next_functions))


# ---------------------------------------------------------------------------------------


def test_q_backward_with_external_grad_gives_the_tutorials_gradients():
    a, b, Q = differentiation_in_autograd(engine)  # noqa: N806
    assert Q.tolist() == [-12.0, 65.0]
    assert a.grad.tolist() == [36.0, 81.0]
    assert b.grad.tolist() == [-12.0, -8.0]
    # dQ/da = 9a^2, dQ/db = -2b, compared as arrays while the comparison ops are pending.
    np.testing.assert_array_equal((9 * a**2).detach().numpy(), a.grad.numpy())
    np.testing.assert_array_equal((-2 * b).detach().numpy(), b.grad.numpy())
    # The same numbers as torch, dtype included.
    ta, tb, tq = differentiation_in_autograd(torch)
    for ours, theirs in ((a.grad, ta.grad), (b.grad, tb.grad), (Q, tq)):
        assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch.")
        np.testing.assert_array_equal(ours.detach().numpy(), theirs.detach().numpy())


@needs_eq
def test_check_if_collected_gradients_are_correct(capsys):
    a, b, _ = differentiation_in_autograd(engine)
    assert (9 * a**2 == a.grad).tolist() == [True, True]
    assert (-2 * b == b.grad).tolist() == [True, True]
    check_collected_gradients(a, b)
    ours = capsys.readouterr().out
    ta, tb, _ = differentiation_in_autograd(torch)
    check_collected_gradients(ta, tb)
    theirs = capsys.readouterr().out
    assert ours == theirs == "tensor([True, True])\ntensor([True, True])\n"


def test_gradient_given_as_a_list():
    """The issue's spelling, Q.backward(gradient=[1, 1]): a list is taken as the tensor."""
    a = engine.tensor([2.0, 3.0], requires_grad=True)
    b = engine.tensor([6.0, 4.0], requires_grad=True)
    Q = 3 * a**3 - b**2  # noqa: N806
    Q.backward(gradient=[1, 1])
    assert a.grad.tolist() == [36.0, 81.0] and a.grad.dtype == engine.float32
    assert b.grad.tolist() == [-12.0, -8.0]


def test_q_needs_gradient_because_it_is_a_vector():
    a = engine.tensor([2.0, 3.0], requires_grad=True)
    b = engine.tensor([6.0, 4.0], requires_grad=True)
    Q = 3 * a**3 - b**2  # noqa: N806
    with pytest.raises(engine.GradError, match="grad can be implicitly created only for scalar"):
        Q.backward()


def test_q_sum_backward_is_equivalent():
    """ "Equivalently, we can also aggregate Q into a scalar and call backward implicitly,
    like Q.sum().backward()"."""
    a = engine.tensor([2.0, 3.0], requires_grad=True)
    b = engine.tensor([6.0, 4.0], requires_grad=True)
    Q = 3 * a**3 - b**2  # noqa: N806
    Q.sum().backward()
    assert a.grad.tolist() == [36.0, 81.0]
    assert b.grad.tolist() == [-12.0, -8.0]


def test_vector_jacobian_product_with_external_grad_as_v():
    """ "external_grad represents v": Q.backward(v) computes J^T·v, for any v."""
    v = [0.5, -2.0]
    a = engine.tensor([2.0, 3.0], requires_grad=True)
    b = engine.tensor([6.0, 4.0], requires_grad=True)
    Q = 3 * a**3 - b**2  # noqa: N806
    Q.backward(gradient=engine.tensor(v))
    assert a.grad.tolist() == [36.0 * 0.5, 81.0 * -2.0]
    assert b.grad.tolist() == [-12.0 * 0.5, -8.0 * -2.0]
    ja, jb = engine.autograd.functional.jacobian(
        lambda a, b: 3 * a**3 - b**2, (engine.tensor([2.0, 3.0]), engine.tensor([6.0, 4.0]))
    )
    np.testing.assert_array_equal(ja.numpy().T @ np.array(v, np.float32), a.grad.numpy())
    np.testing.assert_array_equal(jb.numpy().T @ np.array(v, np.float32), b.grad.numpy())


def test_computational_graph_names_match_torch():
    """ "The nodes represent the backward functions of each operation in the forward pass";
    the leaves a and b are reached through AccumulateGrad nodes."""
    _, _, Q = differentiation_in_autograd(engine)  # noqa: N806
    _, _, tq = differentiation_in_autograd(torch)
    assert walk(Q.grad_fn) == walk(tq.grad_fn)
    acc = ("AccumulateGrad", ())
    assert walk(Q.grad_fn) == (
        "SubBackward0",
        (
            (("MulBackward0", ((("PowBackward0", ((acc, 0),)), 0), (None, 0))), 0),
            (("PowBackward0", ((acc, 0),)), 0),
        ),
    )


def test_accumulate_grad_variables_are_a_and_b():
    a = engine.tensor([2.0, 3.0], requires_grad=True)
    b = engine.tensor([6.0, 4.0], requires_grad=True)
    Q = 3 * a**3 - b**2  # noqa: N806
    mul, pow_b = (f for f, _ in Q.grad_fn.next_functions)
    pow_a = mul.next_functions[0][0]
    assert mul.next_functions[1] == (None, 0)  # the constant 3
    assert pow_a.next_functions[0][0].variable is a
    assert pow_b.next_functions[0][0].variable is b
    assert Q.grad_fn.next_functions[0][0].name() == "MulBackward0"


def test_graph_is_recreated_after_each_backward():
    """ "after each .backward() call, autograd starts populating a new graph"."""
    a = engine.tensor([2.0, 3.0], requires_grad=True)
    for step in range(3):
        Q = (3 * a**3).sum() if step % 2 else (a * a).sum()  # noqa: N806 - control flow
        Q.backward()
        with pytest.raises(engine.GradError, match="backward through the graph a second time"):
            Q.backward()
    assert a.grad.tolist() == [36.0 + 4.0 * 2, 81.0 + 6.0 * 2]


def test_exclusion_from_the_dag_prints_as_torch(capsys):
    a, b = exclusion_from_the_dag(engine)
    ours = capsys.readouterr().out
    assert not a.requires_grad and b.requires_grad
    assert a.grad_fn is None and b.grad_fn.name() == "AddBackward0"
    exclusion_from_the_dag(torch)
    theirs = capsys.readouterr().out
    assert (
        ours
        == theirs
        == ("Does `a` require gradients?: False\nDoes `b` require gradients?: True\n")
    )


def test_frozen_parameters():
    """Freeze all the parameters, replace the classifier with a new (unfrozen) one: only the
    classifier's weight and bias compute gradients. A small stand-in for resnet18."""
    engine.manual_seed(0)
    features = [engine.Parameter(engine.randn(4, 3)), engine.Parameter(engine.randn(4))]
    fc = [engine.Parameter(engine.randn(2, 4)), engine.Parameter(engine.randn(2))]
    # Freeze all the parameters in the network
    for param in features + fc:
        param.requires_grad = False
    # model.fc = nn.Linear(...): a new classifier, unfrozen by default
    fc = [engine.Parameter(engine.randn(2, 4)), engine.Parameter(engine.randn(2))]

    data = engine.rand(3)
    hidden = engine.relu((features[0] * data).sum(dim=1) + features[1])
    assert not hidden.requires_grad and hidden.grad_fn is None  # frozen: no graph recorded
    prediction = (fc[0] * hidden).sum(dim=1) + fc[1]
    loss = (prediction - engine.rand(2)).sum()
    loss.backward()
    assert all(p.grad is None for p in features)
    assert fc[0].grad is not None and fc[1].grad is not None
    np.testing.assert_allclose(fc[0].grad.numpy(), np.tile(hidden.numpy(), (2, 1)), rtol=1e-6)
    assert fc[1].grad.tolist() == [1.0, 1.0]


def test_no_grad_gives_the_same_exclusion():
    """ "The same exclusionary functionality is available as a context manager in
    torch.no_grad()"."""
    x = engine.rand(5, 5)
    z = engine.rand((5, 5), requires_grad=True)
    with engine.no_grad():
        b = x + z
    assert not b.requires_grad and b.grad_fn is None
    b = x + z
    assert b.requires_grad
