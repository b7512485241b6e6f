"""check()'s memo: a program checked again for inputs of the same shapes, dtypes and
requires_grad (and the same limits and backward flag) answers from the memo; anything that
read an input's values, and any refusal, is checked afresh every time."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import engine
from engine.program import Limits, ProgramError, TensorSpec, check, parse_expr, run

check_module = sys.modules["engine.program.check"]  # `engine.program.check` is the function


def _x(*shape, grad=True, dtype=None):
    return engine.ones(*shape, requires_grad=grad, dtype=dtype)


def test_same_signature_answers_from_the_memo():
    prog = parse_expr("h = x @ w; z = h.sum()")
    first = check(prog, {"x": _x(3, 4), "w": _x(4, 5)})
    again = check(prog, {"x": _x(3, 4), "w": _x(4, 5)})
    assert again is check(prog, {"x": _x(3, 4), "w": _x(4, 5)})  # the memoized result
    assert (again.flops, again.elements, again.outputs) == (
        first.flops,
        first.elements,
        first.outputs,
    )
    # The memo holds shapes, never a request's tensors.
    assert all(s.value is None for s in again.specs.values() if isinstance(s, TensorSpec))


@pytest.mark.parametrize(
    "other",
    [
        {"x": _x(2, 4), "w": _x(4, 5)},  # shape
        {"x": _x(3, 4, dtype=engine.float64), "w": _x(4, 5, dtype=engine.float64)},  # dtype
        {"x": _x(3, 4, grad=False), "w": _x(4, 5, grad=False)},  # requires_grad
    ],
)
def test_any_difference_in_the_signature_is_checked_afresh(other):
    prog = parse_expr("h = x @ w; z = h.sum()")
    base = check(prog, {"x": _x(3, 4), "w": _x(4, 5)})
    checked = check(prog, other)
    assert checked is not base
    fresh = check(parse_expr("h = x @ w\nz = h.sum()"), other)  # another program object
    assert checked.outputs == fresh.outputs
    assert [s.requires_grad for s in checked.outputs.values()] == [
        s.requires_grad for s in fresh.outputs.values()
    ]


def test_limits_and_backward_are_part_of_the_key():
    prog = parse_expr("z = x * 2; y = z + 1")
    x = _x(10)
    assert check(prog, {"x": x}).elements == 30
    assert check(prog, {"x": x}, backward=True).elements == 60
    with pytest.raises(ProgramError) as info:
        check(prog, {"x": x}, Limits(max_total_elements=25))
    assert info.value.limit == "max_total_elements"
    assert check(prog, {"x": x}).elements == 30


def test_a_result_that_read_input_values_is_never_memoized():
    # An input mask is read (the result's shape depends on its values), so the same shapes
    # with other values must give another answer.
    prog = parse_expr("z = x[m]")
    x = engine.tensor([[-1.0, 2.0], [3.0, -4.0]])
    one = engine.tensor([[True, False], [False, False]])
    three = engine.tensor([[True, True], [False, True]])
    assert check(prog, {"x": x, "m": one}).outputs["z"].shape == (1,)
    assert check(prog, {"x": x, "m": three}).outputs["z"].shape == (3,)
    assert check(prog, {"x": x, "m": one}).outputs["z"].shape == (1,)
    assert run(prog, {"x": x, "m": three})["z"].shape == (3,)


def test_refusals_are_not_memoized():
    prog = parse_expr("z = x @ w")
    for _ in range(2):
        with pytest.raises(ProgramError) as info:
            check(prog, {"x": _x(3, 4), "w": _x(5, 6)})
        assert info.value.kind == "shape"


def test_inputs_given_as_specs_arrays_and_numbers_are_keyed_too():
    prog = parse_expr("z = x * y + c")
    inputs = {"x": TensorSpec((2, 1), "float64"), "y": np.ones(3, np.float32), "c": 2}
    check(prog, inputs)
    memoized = check(prog, dict(inputs))
    assert check(prog, dict(inputs)) is memoized
    assert check(prog, {**inputs, "c": 2.5}).outputs["z"].dtype == memoized.outputs["z"].dtype
    assert check(prog, {**inputs, "c": True}) is not memoized


def test_the_memo_is_bounded():
    prog = parse_expr("z = x + 1")
    for n in range(1, check_module.MEMO_SIZE + 10):
        check(prog, {"x": _x(n)})
    assert len(prog.__dict__[check_module._MEMO_ATTR]) == check_module.MEMO_SIZE
