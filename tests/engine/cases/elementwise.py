"""Cases for the elementwise families: the arithmetic front ends, special functions, gelu and
softplus, comparisons and logical ops, where, clamp/clip, minimum/maximum.

Tricks used below, identical in both libraries:
- `_ste(m, x)` has the values of clamp(x, -0.5, 0.5) exactly but passes the gradient to x
  unchanged, so ops see inputs lying exactly on a bound (clamp's bounds are inclusive).
- `_twin(m, x)` equals x exactly (x + 2·0) with derivative 3, so an op given x and its twin
  sees ties, and how it splits the gradient between them shows in x's gradient.
  Finite differences cannot see either (the detached part moves with x), so those cases
  skip gradcheck.
- `_grad2(f)` returns the first derivative with create_graph=True: its values check the VJP,
  its gradient (the second derivative) checks that the VJP is itself differentiable. The
  backward graph's nodes differ from torch's fused *BackwardBackward nodes, so those cases do
  not compare graphs."""

import math

import numpy as np

from . import Case, F, T

INT = T(3, 4, domain="int:-4:5")
POS_INT = T(3, 4, domain="int:1:4")
MASK = np.array([[True, False, True, False], [False, False, True, True], [True] * 4])


def _ste(m, x):
    return m.clamp(x, -0.5, 0.5).detach() + (x - x.detach())


def _twin(m, x):
    return x + 2 * (x - x.detach())


def _grad2(f):
    def case(m, x, *rest):
        (g,) = m.autograd.grad(f(m, x, *rest).sum(), x, create_graph=True)
        return g

    return case


TIES = dict(gradcheck=False, notes="ties/bounds made exactly; finite differences cannot see them")
HIGHER = dict(check_graph=False, notes="first derivative with create_graph; torch fuses its nodes")

CASES = [
    # add / sub / mul / div front ends, with alpha, numbers on either side, promotion
    Case("add_fn", lambda m, x, y: m.add(x, y), [T(2, 3), T(3)]),
    Case("add_alpha", lambda m, x, y: m.add(x, y, alpha=2), [T(2, 3), T(2, 1)]),
    Case("add_method_alpha", lambda m, x, y: x.add(y, alpha=-0.5), [T(3), T(3)]),
    Case("add_scalar_alpha", lambda m, x: m.add(x, 2, alpha=3), [T(4)]),
    Case("add_number_first", lambda m, x: m.add(2.5, x), [T(4)]),
    Case("add_int_float", lambda m, a: m.add(a, 1.5), [INT]),
    Case("add_int_alpha", lambda m, a, b: m.add(a, b, alpha=3), [INT, POS_INT]),
    Case("sub_fn_alpha", lambda m, x, y: m.sub(x, y, alpha=2), [T(2, 3), T(3)]),
    Case("sub_number_first", lambda m, x: m.sub(2, x), [T(3)]),
    Case("sub_method", lambda m, x, y: x.sub(y), [T(3, 1), T(1, 4)]),
    Case("subtract_alias", lambda m, x, y: m.subtract(x, y, alpha=0.5), [T(3), T(3)]),
    Case("mul_fn", lambda m, x, y: m.mul(x, y), [T(4, 1), T(3)]),
    Case("mul_number", lambda m, x: m.mul(x, 2.5), [T(2, 2)]),
    Case("mul_method_alias", lambda m, x, y: x.multiply(y), [T(3), T(3)]),
    Case("mul_int", lambda m, a, b: m.mul(a, b), [INT, POS_INT]),
    Case("div_fn", lambda m, x, y: m.div(x, y), [T(2, 3), T(3, domain="nonzero")]),
    Case("div_number", lambda m, x: x.div(4.0), [T(3)]),
    Case("true_divide", lambda m, x, y: m.true_divide(x, y), [T(3), T(3, domain="nonzero")]),
    Case("divide_alias", lambda m, x, y: m.divide(x, y), [T(3), T(3, domain="nonzero")]),
    Case("div_int", lambda m, a, b: m.div(a, b), [INT, POS_INT]),
    Case(
        "div_mode_none",
        lambda m, x, y: m.div(x, y, rounding_mode=None),
        [T(2, 3), T(3, domain="nonzero")],
        notes="an explicit rounding_mode selects div.Tensor_mode: DivBackward2",
    ),
    Case(
        "div_floor",
        lambda m, x, y: m.div(x * 4, y, rounding_mode="floor"),
        [T(2, 3), T(3, domain="nonzero")],
    ),
    Case("div_trunc", lambda m, x: m.div(x * 4, 0.75, rounding_mode="trunc"), [T(2, 3)]),
    Case("div_floor_int", lambda m, a, b: m.div(a, -b, rounding_mode="floor"), [INT, POS_INT]),
    Case("div_trunc_int", lambda m, a, b: m.div(a, -b, rounding_mode="trunc"), [INT, POS_INT]),
    Case("square", lambda m, x: m.square(x), [T(3, 2)]),
    Case("square_method", lambda m, x: x.square() + 1, [T(3)]),
    Case("square_int", lambda m, a: m.square(a), [INT]),
    Case("square_bool", lambda m, a: m.square(a > 0), [INT]),
    Case("pow_int_float_exponent", lambda m, a: a**2.0, [INT]),
    # special functions
    Case("erf", lambda m, x: m.erf(x * 3), [T(5, 4)]),
    Case("erf_method_int", lambda m, x, a: x.erf() + m.erf(a), [T(3, 4), INT]),
    Case("log1p", lambda m, x: m.log1p(x), [T(3, 4, domain="unit")]),
    Case("expm1", lambda m, x: x.expm1(), [T(3, 4)]),
    Case("log2", lambda m, x: m.log2(x), [T(3, 4, domain="positive")]),
    Case("log10", lambda m, x: x.log10(), [T(3, 4, domain="positive")]),
    Case("log1p_int", lambda m, a: m.log1p(a), [POS_INT]),
    # activations
    Case("gelu", lambda m, x: F(m).gelu(x * 3), [T(4, 5)]),
    Case("gelu_tanh", lambda m, x: F(m).gelu(x * 3, approximate="tanh"), [T(4, 5)]),
    Case("softplus", lambda m, x: F(m).softplus(x * 4), [T(4, 5)]),
    Case(
        "softplus_beta_threshold",
        lambda m, x: F(m).softplus(x * 5, beta=2, threshold=3),
        [T(4, 5)],
        notes="some beta*x exceed the threshold: those are x itself",
    ),
    Case("softplus_positional", lambda m, x: F(m).softplus(x * 30, 0.5, 10), [T(6)]),
    # comparisons and logical ops: bool results, no gradient
    Case("eq_ties", lambda m, x: x == _ste(m, x), [T(3, 4)], gradcheck=False, covers=("eq",)),
    Case("ne", lambda m, x: m.ne(x, _ste(m, x)), [T(3, 4)], gradcheck=False, covers=("ne",)),
    Case("lt_broadcast", lambda m, x, y: x < y, [T(3, 1), T(4)], gradcheck=False, covers=("lt",)),
    Case("le_ties", lambda m, x: m.le(_ste(m, x), 0.5), [T(3, 4)], gradcheck=False, covers=("le",)),
    Case("gt_method", lambda m, x, y: x.gt(y), [T(3, 4), T(4)], gradcheck=False, covers=("gt",)),
    Case("ge_int_float", lambda m, a: a >= 1.5, [INT], covers=("ge",)),
    Case(
        "comparison_operators",
        lambda m, x, y: (x != y, x <= y, x > y, 0.5 < x, x == 0.25),  # noqa: SIM300 - the reflected form
        [T(3, 4), T(4)],
        gradcheck=False,
        covers=("ne", "le", "gt", "eq"),
    ),
    Case("eq_int_float", lambda m, a, b: m.eq(a, b * 1.0), [INT, POS_INT], covers=("eq",)),
    Case(
        "logical_not",
        lambda m, x, a: (m.logical_not(x > 0), a.logical_not()),
        [T(3, 4), INT],
        gradcheck=False,
        covers=("logical_not",),
    ),
    Case(
        "logical_and_or_xor",
        lambda m, a, b: (m.logical_and(a, b), m.logical_or(a > 0, b), m.logical_xor(a, b > 2)),
        [INT, POS_INT],
        covers=("logical_and", "logical_or", "logical_xor"),
    ),
    # where
    Case("where", lambda m, x, y: m.where(x > 0, x, y), [T(3, 1), T(4)]),
    Case("where_cond_broadcast", lambda m, x, y, c: m.where(c > 0, x, y), [T(3, 4), T(4), T(3, 1)]),
    Case("where_number_other", lambda m, x: m.where(x > 0, x, 0.0), [T(3, 4)]),
    Case("where_number_input", lambda m, x: m.where(x > 0, 1.5, x), [T(3, 4)]),
    Case(
        "where_numbers",
        lambda m, x: m.where(x > 0, 1.0, 0),
        [T(3, 4)],
        gradcheck=False,
        covers=("where",),
        notes="two numbers: float32 (torch's default), no gradient",
    ),
    Case("where_ints", lambda m, a: m.where(a > 0, 1, 0), [INT], covers=("where",)),
    Case("where_int_tensor_number", lambda m, a: m.where(a > 0, a, 0.5), [INT], covers=("where",)),
    Case("where_literal_mask", lambda m, x: m.where(m.tensor(MASK), x, -x), [T(3, 4)]),
    Case(
        "where_nonzero",
        lambda m, x: m.where(x > 0),
        [T(3, 4)],
        gradcheck=False,
        notes="one argument: the indices of the True elements",
    ),
    # clamp / clip
    Case("clamp", lambda m, x: m.clamp(x, -0.5, 0.5), [T(3, 4)]),
    Case("clamp_min_only", lambda m, x: x.clamp(min=-0.2), [T(3, 4)]),
    Case("clamp_max_only", lambda m, x: x.clamp(max=0.3), [T(3, 4)]),
    Case("clamp_min_above_max", lambda m, x: m.clamp(x, 0.5, -0.5), [T(3, 4)]),
    Case("clamp_on_bounds", lambda m, x: m.clamp(_ste(m, x), -0.5, 0.5) * 3, [T(3, 4)], **TIES),
    Case("clip", lambda m, x: m.clip(x, -0.5, 0.5), [T(3, 4)]),
    Case("clip_method", lambda m, x: x.clip(-1, 1), [T(3, 4)]),
    Case("clamp_int", lambda m, a: m.clamp(a, 1, 3), [INT]),
    Case("clamp_int_float_bound", lambda m, a: m.clamp(a, 0.5), [INT]),
    Case(
        "clamp_tensors",
        lambda m, x, lo, hi: m.clamp(x, lo, hi),
        [T(3, 4), T(4), T(3, 1)],
        notes="random bounds: some min > max, where max wins and takes the gradient",
    ),
    Case("clamp_tensor_min", lambda m, x, lo: m.clamp(x, min=lo), [T(3, 4), T(4)]),
    Case("clamp_tensor_max", lambda m, x, hi: x.clamp(max=hi), [T(3, 4), T(3, 1)]),
    Case(
        "clamp_tensor_no_grad_bound", lambda m, x, lo: m.clamp(x, lo), [T(3, 4), T(4, grad=False)]
    ),
    Case("clamp_tensors_ordered", lambda m, x, lo: m.clamp(x, lo - 1, lo + 1), [T(3, 4), T(4)]),
    # minimum / maximum
    Case("maximum", lambda m, x, y: m.maximum(x, y), [T(3, 1), T(4)]),
    Case("minimum", lambda m, x, y: m.minimum(x, y), [T(3, 4), T(4)]),
    Case("maximum_method", lambda m, x, y: x.maximum(y), [T(3), T(3)]),
    Case("maximum_ties", lambda m, x: m.maximum(x, _twin(m, x)), [T(3, 4)], **TIES),
    Case("minimum_ties", lambda m, x: m.minimum(_twin(m, x), x), [T(3, 4)], **TIES),
    Case("maximum_int_float", lambda m, a, x: m.maximum(a, x), [INT, T(4)]),
    Case("maximum_ints", lambda m, a, b: m.minimum(a, b), [INT, POS_INT]),
    # differentiability: second derivatives through the VJPs above
    Case("gelu_grad2", _grad2(lambda m, x: F(m).gelu(x * 2)), [T(3, 4)], **HIGHER),
    Case(
        "gelu_tanh_grad2",
        _grad2(lambda m, x: F(m).gelu(x, approximate="tanh")),
        [T(3, 4)],
        **HIGHER,
    ),
    Case("softplus_grad2", _grad2(lambda m, x: F(m).softplus(x * 8, 1.5, 6)), [T(3, 4)], **HIGHER),
    Case("erf_grad2", _grad2(lambda m, x: m.erf(x) ** 2), [T(3, 4)], **HIGHER),
    Case(
        "special_grad2",
        _grad2(lambda m, x: m.log1p(x * x) * m.expm1(x) + m.log2(x * x + 1)),
        [T(3, 4)],
        **HIGHER,
    ),
    Case("log10_grad2", _grad2(lambda m, x: m.log10(x) * x), [T(4, domain="positive")], **HIGHER),
    Case("clamp_grad2", _grad2(lambda m, x: m.clamp(x, -0.5, 0.5) * x * x), [T(3, 4)], **HIGHER),
    Case(
        "clamp_tensors_grad2",
        _grad2(lambda m, x, lo: m.clamp(x, lo) * x * lo),
        [T(3, 4), T(4)],
        **HIGHER,
    ),
    Case(
        "maximum_grad2", _grad2(lambda m, x, y: m.maximum(x * x, y) * y), [T(3, 4), T(4)], **HIGHER
    ),
    Case("minimum_grad2", _grad2(lambda m, x, y: m.minimum(x, y) * x), [T(3, 4), T(4)], **HIGHER),
    Case(
        "where_grad2", _grad2(lambda m, x: m.where(x > 0, x * x * x, -x * x)), [T(3, 4)], **HIGHER
    ),
    Case(
        "div_mode_grad2",
        _grad2(lambda m, x, y: m.div(x * x, y, rounding_mode=None)),
        [T(3), T(3, domain="nonzero")],
        **HIGHER,
    ),
    Case("square_grad2", _grad2(lambda m, x: m.square(x) * x), [T(4)], **HIGHER),
    Case("math_constants", lambda m, x: m.erf(x * math.sqrt(0.5)), [T(8)]),
]
