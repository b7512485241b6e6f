"""Bad input raises the engine's own exceptions (engine.errors) with messages that name the
op, the shapes and the fix, in torch's words: each case runs against both libraries and our
message must contain torch's (case-insensitively; ours may add the op name and the fix)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import engine
from engine.errors import (
    ArgumentError,
    DTypeError,
    EngineError,
    GradError,
    ShapeError,
    SignatureError,
)
from engine.graph import FREED_MESSAGE
from engine.registry import FUNCTIONS


def _raise(fn):
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - the exception is the result
        return exc
    raise AssertionError("no exception raised")


def _second_backward(m):
    x = m.tensor([1.0, 2.0], requires_grad=True)
    y = (m.exp(x) * x).sum()
    y.backward()
    y.backward()


def _nonleaf(m, flag):
    y = m.tensor([1.0], requires_grad=True) * 2
    y.requires_grad = flag


def _unused(m):
    x = m.tensor([1.0], requires_grad=True)
    z = m.tensor([1.0], requires_grad=True)
    m.autograd.grad((x * 2).sum(), [x, z])


# (id, fn(m), our class, substrings our message must contain, compare with torch's message)
CASES = [
    (
        "backward_non_scalar",
        lambda m: (m.tensor([1.0, 2.0], requires_grad=True) * 2).backward(),
        GradError,
        ["grad can be implicitly created only for scalar outputs", "gradient=", "(2,)"],
        True,
    ),
    ("second_backward", _second_backward, GradError, [FREED_MESSAGE, "retain_graph=True"], True),
    (
        "requires_grad_on_non_leaf_off",
        lambda m: _nonleaf(m, False),
        GradError,
        ["only change requires_grad flags of leaf variables", "var.detach()"],
        True,
    ),
    (
        "requires_grad_on_non_leaf_on",
        lambda m: _nonleaf(m, True),
        GradError,
        ["only change requires_grad flags of leaf variables"],
        True,
    ),
    (
        "int_requires_grad",
        lambda m: m.tensor([1, 2]).requires_grad_(),
        DTypeError,
        ["only Tensors of floating point dtype can require gradients", "int64"],
        True,
    ),
    (
        "int_requires_grad_factory",
        lambda m: m.tensor([1, 2], requires_grad=True),
        DTypeError,
        ["Tensors of floating point", "can require gradients"],
        False,  # torch: "... floating point and complex dtype ..."; we have no complex
    ),
    (
        "broadcast_mismatch",
        lambda m: m.tensor([1.0, 2.0, 3.0]) + m.tensor([1.0, 2.0]),
        ShapeError,
        ["add()", "(3,)", "(2,)"],
        True,
    ),
    (
        "broadcast_mismatch_2d",
        lambda m: m.ones(2, 3) * m.ones(4, 1, 2),
        ShapeError,
        ["mul()", "(2, 3)", "(4, 1, 2)", "dimension 2"],
        True,
    ),
    (
        "bad_dim_sum",
        lambda m: m.ones(2, 2).sum(dim=5),
        ArgumentError,
        ["sum()"],
        True,
    ),
    (
        "bad_dim_negative",
        lambda m: m.ones(2, 2).mean(dim=-3),
        ArgumentError,
        ["mean()"],
        True,
    ),
    (
        "bad_dim_unsqueeze",
        lambda m: m.ones(2, 2).unsqueeze(7),
        ArgumentError,
        ["unsqueeze()"],
        True,
    ),
    (
        "bad_dim_transpose",
        lambda m: m.ones(2, 2).transpose(0, 3),
        ArgumentError,
        ["transpose()"],
        True,
    ),
    (
        "repeated_dim",
        lambda m: m.ones(2, 2).sum(dim=(0, 0)),
        ArgumentError,
        ["dim", "appears multiple times"],
        True,
    ),
    ("bad_view", lambda m: m.ones(2, 2).view(3, 2), ShapeError, ["view()", "[3, 2]"], True),
    (
        "bad_expand",
        lambda m: m.ones(2, 3).expand(4, 3, 4),
        ShapeError,
        ["expand()", "Target sizes: [4, 3, 4]", "Tensor sizes: [2, 3]"],
        True,
    ),
    (
        "expand_no_size",
        lambda m: m.ones(2).expand(),
        SignatureError,
        ['expand() missing 1 required positional arguments: "size"'],
        True,
    ),
    (
        "expand_no_size_0d",  # not a no-op on a 0-d tensor: torch refuses the call itself
        lambda m: m.ones(()).expand(),
        SignatureError,
        ['expand() missing 1 required positional arguments: "size"'],
        True,
    ),
    (
        "repeat_no_sizes",
        lambda m: m.ones(2, 3).repeat(),
        SignatureError,
        ['repeat() missing 1 required positional arguments: "repeats"'],
        True,
    ),
    (
        "repeat_no_sizes_0d",
        lambda m: m.ones(()).repeat(),
        SignatureError,
        ['repeat() missing 1 required positional arguments: "repeats"'],
        True,
    ),
    (
        "gradient_shape_mismatch",
        lambda m: (m.ones(2, 2, requires_grad=True) * 2).backward(m.ones(3)),
        GradError,
        ["Mismatch in shape", "(3,)", "(2, 2)"],
        False,  # torch prints torch.Size([3]); we print tuples
    ),
    (
        "output_without_grad",
        lambda m: m.ones(2).sum().backward(),
        GradError,
        ["element 0 of tensors does not require grad and does not have a grad_fn"],
        True,
    ),
    (
        "grad_input_without_grad",
        lambda m: m.autograd.grad((m.ones(2, requires_grad=True) * 2).sum(), m.ones(2)),
        GradError,
        ["One of the differentiated Tensors does not require grad"],
        True,
    ),
    ("grad_unused_input", _unused, GradError, ["index 1", "allow_unused=True"], True),
    (
        "numpy_requires_grad",
        lambda m: m.ones(2, requires_grad=True).numpy(),
        GradError,
        ["Use tensor.detach().numpy() instead."],
        True,
    ),
    (
        "retain_grad_without_grad",
        lambda m: m.ones(2).retain_grad(),
        GradError,
        ["can't retain_grad on Tensor that has requires_grad=False"],
        True,
    ),
    (
        "item_of_many",
        lambda m: m.ones(3).item(),
        ArgumentError,
        ["a Tensor with 3 elements cannot be converted to Scalar"],
        True,
    ),
    (
        "backward_inputs_empty",
        lambda m: (m.ones(2, requires_grad=True) * 2).sum().backward(inputs=[]),
        GradError,
        ["`inputs` argument to `backward()` cannot be empty."],
        True,
    ),
]


def _norm(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip().lower()


@pytest.mark.parametrize(
    "name, fn, cls, needles, compare",
    [pytest.param(*c, id=c[0]) for c in CASES],
)
def test_error_class_and_message(name, fn, cls, needles, compare):
    err = _raise(lambda: fn(engine))
    assert type(err) is cls, f"{type(err).__name__}: {err}"
    assert isinstance(err, EngineError)
    msg = str(err)
    for needle in needles:
        assert needle in msg, f"{needle!r} not in {msg!r}"
    if compare:
        theirs = _raise(lambda: fn(torch))
        assert _norm(str(theirs)) in _norm(msg), f"torch says {theirs!s}; we say {msg}"


@pytest.mark.skipif("matmul" not in FUNCTIONS, reason="the matmul op is not registered yet")
@pytest.mark.parametrize(
    "shapes, needles",
    [
        (((2, 3), (4, 5)), ["2x3", "4x5"]),
        (((3,), (4, 5)), ["1x3", "4x5"]),
        (((2, 3), (4,)), ["2x3", "(4)"]),
        (((5, 2, 3), (5, 4, 2)), ["[5, 3]", "[5, 4]"]),
    ],
    ids=["matrix", "vector_matrix", "matrix_vector", "batched"],
)
def test_matmul_mismatch_prints_both_shapes(shapes, needles):
    a, b = shapes
    err = _raise(lambda: engine.ones(*a) @ engine.ones(*b))
    assert type(err) is ShapeError, f"{type(err).__name__}: {err}"
    for needle in needles:
        assert needle in str(err)
    theirs = _raise(lambda: torch.ones(*a) @ torch.ones(*b))
    assert _norm(str(theirs)) in _norm(str(err))


def test_errors_are_also_the_builtin_exceptions_torch_users_catch():
    """Code ported from torch that catches RuntimeError / ValueError keeps working."""
    assert issubclass(GradError, RuntimeError)
    assert issubclass(ShapeError, ValueError) and issubclass(ArgumentError, ValueError)
    assert issubclass(DTypeError, TypeError)
    assert issubclass(SignatureError, TypeError) and issubclass(SignatureError, ArgumentError)
    with pytest.raises(RuntimeError, match="Trying to backward through the graph"):
        _second_backward(engine)


def test_shape_error_carries_op_and_shapes():
    err = _raise(lambda: engine.ones(2, 3) + engine.ones(4, 3))
    assert err.op == "add" and err.shapes == [(2, 3), (4, 3)]


def test_gradcheck_failure_names_the_worst_entry():
    def wrong(x):  # the value is x^3, but detached factors hide 2/3 of its gradient
        return x * x.detach() * x.detach()

    x = engine.tensor(np.array([1.0, 2.0]), requires_grad=True)
    err = _raise(lambda: engine.autograd.gradcheck(wrong, (x,)))
    assert isinstance(err, engine.autograd.GradcheckError) and isinstance(err, GradError)
    assert "Jacobian mismatch for output 0 with respect to input 0" in str(err)
    assert engine.autograd.gradcheck(wrong, (x,), raise_exception=False) is False


def test_unknown_op():
    from engine.registry import get

    err = _raise(lambda: get("no_such_op"))
    assert isinstance(err, engine.UnknownOpError) and str(err) == "unknown op 'no_such_op'"
