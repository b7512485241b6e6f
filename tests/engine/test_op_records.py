"""The op record carries the whole op: a `fast_vjp` (an in-place numpy kernel the numpy
backward runs) must equal its VJP formula, and the cost estimate is the record's rule."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import engine
from engine.ops import costs
from engine.program.check import check
from engine.program.expr import parse_expr
from engine.program.names import resolve
from engine.registry import FUNCTIONS, OPS

# Inputs for every op that declares a fast_vjp: (operand shapes, attributes), float64.
_STATS = {"running_mean": np.linspace(-0.5, 0.5, 3), "running_var": np.linspace(0.5, 2.0, 3)}
SAMPLES = {
    "pow": [
        (((3, 4),), {"exponent": e})
        for e in (2, 3, 4, -1, -2, 0.5, 2.5, 2.0, 3.0, 0, 1, 7)
    ],
    "native_batch_norm": [
        (((4, 3, 5), (3,), (3,)), {"training": True, "eps": 1e-5}),
        (((4, 3), (3,), (3,)), {"training": True, "eps": 1e-3}),
        (((2, 3, 2, 2), (3,), (3,)), {"training": False, **_STATS}),
    ],
}  # fmt: skip

FAST = sorted(name for name, op in OPS.items() if any(f is not None for f in op.fast_vjps))


def test_every_op_declaring_a_fast_vjp_has_samples_here():
    assert FAST, "no op declares a fast_vjp: is the registry loaded?"
    assert [n for n in FAST if n not in SAMPLES] == []


def _args(op, i, arrays, attrs, g, ans):
    """The VJP's arguments, by its parameter names (the plan registry computed for it)."""
    out = []
    for kind, key in op.plans[i]:
        if kind == "g":
            out.append(g)
        elif kind == "in":
            out.append(arrays[key])
        elif kind == "attr":
            out.append(attrs.get(key, op.attrs[key]))
        elif kind == "shape":
            out.append(np.shape(arrays[key]))
        elif kind == "ans":
            out.append(ans)
        else:  # pragma: no cover - variadic ops declare no fast_vjp yet
            raise AssertionError(f"{op.name}: no sample for a {kind!r} argument")
    return out


def _tensors(x):
    if isinstance(x, tuple):
        return tuple(_tensors(v) for v in x)
    return engine.tensor(x) if isinstance(x, np.ndarray) else x


def _numpy(x):
    return x.numpy() if isinstance(x, engine.Tensor) else np.asarray(x)


CASES = [(n, i, s, a) for n in FAST for i, (s, a) in enumerate(SAMPLES.get(n, []))]


@pytest.mark.parametrize(
    ("name", "shapes", "attrs"), [pytest.param(n, s, a, id=f"{n}-{i}") for n, i, s, a in CASES]
)
def test_fast_vjp_equals_the_formula_on_random_float64_inputs(name, shapes, attrs):
    """The kernel on arrays (what the numpy backward runs) against the formula on Tensors
    (what create_graph runs), and on arrays where the formula takes them (pow)."""
    op = OPS[name]
    rng = np.random.default_rng(11)
    arrays = [rng.uniform(0.5, 2.0, s) for s in shapes]
    if all(float(v).is_integer() for v in attrs.values() if type(v) in (int, float)):
        arrays = [a * rng.choice([-1.0, 1.0], a.shape) for a in arrays]  # negatives too
    ans = op.forward(*arrays, **attrs)
    outs = ans if isinstance(ans, tuple) else (ans,)
    gs = tuple(rng.standard_normal(np.shape(a)) for a in outs)
    g = gs if isinstance(ans, tuple) else gs[0]
    for i, (fast, formula) in enumerate(zip(op.fast_vjps, op.vjps, strict=True)):
        if fast is None:
            continue
        assert op.array_vjps[i] is fast  # the numpy backward runs the kernel
        got = fast(*_args(op, i, arrays, attrs, g, ans))
        assert type(got) is np.ndarray and got.dtype == np.float64
        wants = [formula(*_args(op, i, _tensors(tuple(arrays)), attrs, _tensors(g), ans))]
        if name == "pow":
            wants.append(formula(*_args(op, i, arrays, attrs, g, ans)))
        for want in wants:
            want = np.broadcast_to(_numpy(want), got.shape)
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)


def test_backward_through_pow_runs_the_fast_kernel_and_matches_the_formula():
    x = engine.tensor(np.linspace(-2.0, 2.0, 7), requires_grad=True)
    (x**3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 3 * np.linspace(-2.0, 2.0, 7) ** 2, rtol=1e-15)
    # create_graph runs the formula on Tensors: the same values, and differentiable again.
    y = engine.tensor(np.linspace(-2.0, 2.0, 7), requires_grad=True)
    (gy,) = engine.autograd.grad((y**3).sum(), [y], create_graph=True)
    np.testing.assert_array_equal(gy.detach().numpy(), x.grad.numpy())
    (ggy,) = engine.autograd.grad(gy.sum(), [y])
    np.testing.assert_allclose(ggy.numpy(), 6 * np.linspace(-2.0, 2.0, 7), rtol=1e-15)


# -- cost rules ---------------------------------------------------------------------------


def test_contractions_and_convolutions_declare_their_cost_in_the_record():
    assert OPS["convolution"].cost is costs.convolution
    assert FUNCTIONS["conv2d"].cost is costs.convolution
    for name in ("matmul", "mm", "bmm", "mv", "dot", "addmm", "linear"):
        assert FUNCTIONS[name].cost is not None, name
        assert resolve(name).cost.fn is FUNCTIONS[name].cost
    assert resolve("@").cost.fn is FUNCTIONS["matmul"].cost
    assert resolve("exp").cost.fn is costs.pointwise  # the default


def test_check_sums_the_records_cost_rules():
    prog = parse_expr("y = conv2d(x, w)\nz = y @ m\nout = exp(z)")
    x, w, m = np.zeros((2, 3, 8, 8)), np.zeros((4, 3, 3, 3)), np.zeros((6, 5))
    flops = check(prog, {"x": x, "w": w, "m": m}).flops
    conv = 2 * (2 * 4 * 6 * 6) * (3 * 3 * 3)
    mm = 2 * (2 * 4 * 6 * 5) * 6
    assert flops == conv + mm + 2 * 4 * 6 * 5


# -- one calling convention for shape and dtype rules -------------------------------------

_P = inspect.Parameter
_ATTRIBUTE_NAMES = {"dim", "dtype", "stride", "kernel_size", "keepdim", "p", "unbiased"}


def _rules():
    for name, op in OPS.items():
        for what, rule in (("shape", op.shape), ("dtype", op.dtype_rule)):
            if rule is not None:
                yield f"op {name} {what}", rule, set(op.attrs), set(op.inputs)
    for name, f in FUNCTIONS.items():
        for what, rule in (("shape", f.shape), ("dtype", f.dtype)):
            if rule is not None and (f.op is None or rule not in (f.op.shape, f.op.dtype_rule)):
                yield f"function {name} {what}", rule, None, None


def _positional(rule):
    sig = inspect.signature(rule)
    kinds = (_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD)
    return [p for p in sig.parameters.values() if p.kind in kinds]


def test_every_rule_takes_operand_shapes_positionally_and_attributes_by_keyword():
    """`rule(*operand shapes, **attributes)` (registry's docstring): for an op, its inputs
    are the positional parameters and its attributes keyword-only; for a function, a
    positional parameter with a default is an optional operand (default None or ())."""
    wrong = []
    for label, rule, attrs, inputs in _rules():
        sig = inspect.signature(rule)
        pos = _positional(rule)
        kw_only = {p.name for p in sig.parameters.values() if p.kind is _P.KEYWORD_ONLY}
        if attrs is not None:
            if {p.name for p in pos} & attrs or kw_only & inputs:
                wrong.append(f"{label}{sig}")
        elif any(
            p.name in _ATTRIBUTE_NAMES
            or (p.default is not _P.empty and p.default not in (None, ()))
            for p in pos[1:]
        ):
            wrong.append(f"{label}{sig}")
    assert wrong == []
