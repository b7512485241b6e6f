"""The expr form: the seed notation, Python syntax, positions in errors, the parse cache."""

from __future__ import annotations

import pytest

import engine
from engine.program import ProgramError, check, parse_expr, run, to_python

from .conftest import values


@pytest.mark.parametrize(
    "text",
    [
        "Q = 3a³ − b²",
        "Q = 3*a**3 - b**2",
        "Q = 3·a³ - b²",
        "Q = 3 × a**3 − b ** 2",
        "Q = torch.mul(3, a**3) - torch.pow(b, 2)",
        "t = a³\nQ = 3t - b²",
        "t = a**3; Q = 3*t - b.pow(2)",
    ],
)
def test_seed_q_in_every_notation(text, seed_inputs):
    prog = parse_expr(text)
    check(prog, seed_inputs)
    out = run(prog, seed_inputs)
    q = out["Q"]
    assert values(q) == [-12.0, 65.0]
    q.backward(gradient=engine.tensor([1.0, 1.0]))
    assert values(seed_inputs["a"].grad) == [36.0, 81.0]
    assert values(seed_inputs["b"].grad) == [-12.0, -8.0]
    assert type(q.grad_fn).__name__ == "SubBackward0"


@pytest.mark.parametrize(
    ("seed", "python"),
    [
        ("Q = 3a³ − b²", "Q = 3*a**3 - b**2"),
        ("y = 2.5x", "y = 2.5*x"),
        ("y = x⁻¹", "y = x**(-1)"),
        ("y = x¹²", "y = x**12"),
        ("y = x⁻¹⁰", "y = x**(-10)"),
        ("y = 2(a + b)", "y = 2*(a + b)"),
        ("y = x2 + 1e5 + 2e-3x", "y = x2 + 1e5 + 2e-3*x"),
        ("y = 0x1F + a", "y = 0x1F + a"),
        ("y = a·b × c ÷ d", "y = a*b * c / d"),
        ("y = f(x, reduction='3a²')", "y = f(x, reduction='3a²')"),
        ("y = α²", "y = α**2"),
        ("y = 3e", "y = 3*e"),
    ],
)
def test_seed_notation_rewrites_to_python(seed, python):
    assert to_python(seed)[0] == python


def test_number_times_name_never_splits_identifiers_or_numbers():
    prog = parse_expr("y = x2 * 1e5 + x_3")
    assert prog.inputs == ("x2", "x_3")
    assert [e.fn for e in prog.eqns] == ["*", "+"]


def test_prefixed_and_bare_names_compile_alike():
    a = parse_expr("y = torch.nn.functional.softmax(x, dim=-1)")
    b = parse_expr("y = F.softmax(x, dim=-1)")
    c = parse_expr("y = softmax(x, dim=-1)")
    d = parse_expr("y = x.softmax(dim=-1)")
    assert [(e.fn, e.args, e.kwargs) for e in a.eqns] == [(e.fn, e.args, e.kwargs) for e in c.eqns]
    assert [(e.fn, e.args, e.kwargs) for e in b.eqns] == [(e.fn, e.args, e.kwargs) for e in c.eqns]
    assert d.eqns[0].fn == "softmax" and d.eqns[0].kwargs == (("dim", -1),)


def test_constants_fold_only_when_small():
    prog = parse_expr("y = x * (2**10 - 1) / -4 + x ** 10 ** 2")
    consts = [a for e in prog.eqns for a in e.args if not hasattr(a, "id")]
    assert 1023 in consts and -4 in consts and 100 in consts


def test_outputs_are_assigned_tensors_and_reassignment_keeps_the_last():
    prog = parse_expr("n = 2\nh = x * n\nh = h + 1\nz = h.sum()")
    assert prog.output_names == ("h", "z")
    x = engine.tensor([1.0, 2.0])
    out = run(prog, {"x": x})
    assert values(out["h"]) == [3.0, 5.0] and values(out["z"]) == 8.0


def test_tuple_unpacking_of_tuple_results():
    x = engine.tensor([[1.0, 5.0], [7.0, 2.0]], requires_grad=True)
    prog = parse_expr("v, i = max(x, dim=1)")
    checked = check(prog, {"x": x})
    assert checked.outputs["i"].dtype == engine.int64
    out = run(prog, {"x": x})
    assert values(out["v"]) == [5.0, 7.0] and values(out["i"]) == [1, 0]


@pytest.mark.parametrize(
    ("text", "kind", "line", "col"),
    [
        ("Q = 3a³ − b²\nR = Q @ Q", "shape", 2, 7),
        ("y = x +", "syntax", 1, 8),
        ("y = x\nz = frob(x)", "unknown_function", 2, 5),
        ("y = x.__class__", "forbidden", 1, 5),
        ("y = 3a³ − q", "undefined", 1, 11),
        ("y = x.sum(dim=3)", "argument", 1, 7),
        ("y = relu(x, x)", "arity", 1, 5),
        ("y = α² + ω", "undefined", 1, 10),
    ],
)
def test_errors_point_at_the_clients_text(text, kind, line, col):
    x = engine.ones(2, 3)
    with pytest.raises(ProgramError) as info:
        prog = parse_expr(text)
        check(prog, {"x": x, "a": x, "b": x, "α": x})
    e = info.value
    assert (e.kind, e.line, e.col) == (kind, line, col), str(e)
    assert e.to_dict()["kind"] == kind


def test_shape_errors_carry_the_shapes():
    with pytest.raises(ProgramError) as info:
        check(parse_expr("y = x @ w"), {"x": engine.ones(2, 3), "w": engine.ones(2, 3)})
    assert info.value.kind == "shape"
    assert info.value.shapes == [[2, 3], [2, 3]]
    assert info.value.op == "operator @"


def test_parse_is_cached_by_text():
    text = "y = x * 2 + 1  # cached"
    assert parse_expr(text) is parse_expr(text)
    assert parse_expr(text) is not parse_expr(text + " ")
