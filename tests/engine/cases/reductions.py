"""Cases for reductions (sum, mean, prod, var, std, logsumexp, norm) and extrema (amax, amin,
max, min, argmax, argmin): dim as int, tuple, negative or None, keepdim, integer dtypes,
zeros, ties and empty reductions.

`_twin`, `_grad2` and the finite-difference caveats are explained in cases/elementwise.py."""

import numpy as np

from . import Case, T
from .elementwise import HIGHER, TIES, _grad2, _twin

INT = T(3, 4, domain="int:-4:5")
BOOL = T(3, 4, domain="bool")
ZEROS = np.array([[True, False, False, False], [True, False, True, False], [False] * 4])
ONE_ZERO = np.zeros((3, 4), bool)
ONE_ZERO[1, 2] = True
PAIR = np.array([True, False])
NAN_AT = np.zeros((3, 4), bool)
NAN_AT[0, 1] = NAN_AT[1, 3] = True
INF = float("inf")


def _zeroed(m, x, mask=ZEROS):
    """x with exact zeros: one in row 0, two in row 1, none in row 2 (by default)."""
    return m.where(m.tensor(mask), 0.0, x)


def _nan(m, x):
    """x with a NaN in row 0 and row 1 (where ZEROS has its first True)."""
    return m.where(m.tensor(NAN_AT), float("nan"), x)


def _tied(m, x):
    """Shape (2, *x.shape): x over its twin, so every extreme along dim 0 (and of the whole)
    is tied."""
    return m.where(m.tensor(PAIR.reshape((2,) + (1,) * x.ndim)), x, _twin(m, x))


CASES = [
    # sum / mean
    Case("sum_tuple_neg", lambda m, x: m.sum(x, (0, -1)), [T(2, 3, 4)]),
    Case("sum_keepdim_method", lambda m, x: x.sum(-2, keepdim=True), [T(2, 3, 4)]),
    Case("sum_int", lambda m, a: (a.sum(), m.sum(a, 1)), [INT]),
    Case("sum_bool", lambda m, b: (b.sum(), b.sum(0, keepdim=True)), [BOOL]),
    Case("sum_0d_dim0", lambda m, x: x.sum().sum(0), [T(3)]),
    Case("mean_neg_keepdim", lambda m, x: x.mean(-1, keepdim=True), [T(3, 4)]),
    Case("int_sum_plus_int", lambda m, a: a.sum() + a, [INT], notes="0-d int64 stays int64"),
    # prod
    Case("prod_all", lambda m, x: x.prod(), [T(3, 4, domain="nonzero")]),
    Case("prod_dim", lambda m, x: m.prod(x, 1), [T(3, 4, domain="nonzero")]),
    Case("prod_neg_keepdim", lambda m, x: m.prod(x, -1, keepdim=True), [T(2, 3, 4)]),
    Case("prod_dim0_3d", lambda m, x: x.prod(0), [T(2, 3, 4)]),
    Case(
        "prod_zeros_dim",
        lambda m, x: m.prod(_zeroed(m, x), 1),
        [T(3, 4)],
        notes="one zero in a row: only it gets a gradient; two zeros: none",
    ),
    Case("prod_zeros_all", lambda m, x: _zeroed(m, x, ONE_ZERO).prod(), [T(3, 4)]),
    Case("prod_zeros_all_two", lambda m, x: _zeroed(m, x).prod(), [T(3, 4)]),
    Case("prod_zeros_keepdim", lambda m, x: m.prod(_zeroed(m, x), 0, keepdim=True), [T(3, 4)]),
    Case("prod_int_bool", lambda m, a, b: (a.prod(), m.prod(a, 0), b.prod(1)), [INT, BOOL]),
    Case(
        "prod_grad2",
        _grad2(lambda m, x: m.prod(x, 1) * x.prod()),
        [T(3, 4, domain="nonzero")],
        **HIGHER,
    ),
    Case(
        "prod_zeros_grad2",
        _grad2(lambda m, x: m.prod(_zeroed(m, x), 1) + _zeroed(m, x, ONE_ZERO).prod()),
        [T(3, 4)],
        **HIGHER,
    ),
    Case(
        "prod_zeros_grad2_keepdim",
        _grad2(lambda m, x: m.prod(_zeroed(m, x), 0, True) * x),
        [T(3, 4)],
        **HIGHER,
    ),
    Case("prod_0d", lambda m, x: x.sum().prod(), [T(3)]),
    # var / std
    Case("var_all", lambda m, x: x.var(), [T(3, 4)]),
    Case("var_dim", lambda m, x: m.var(x, 1), [T(3, 4)]),
    Case("var_tuple_keepdim", lambda m, x: x.var((0, 2), keepdim=True), [T(2, 3, 4)]),
    Case("var_correction0", lambda m, x: m.var(x, -1, correction=0), [T(3, 4)]),
    Case("var_correction_frac", lambda m, x: m.var(x, 0, correction=1.5), [T(4, 3)]),
    Case("var_legacy_unbiased", lambda m, x: m.var(x, 1, False, True), [T(3, 4)]),
    Case("var_legacy_bool", lambda m, x: (m.var(x, True), x.var(unbiased=False)), [T(3, 4)]),
    Case("std_all", lambda m, x: x.std(), [T(3, 4)]),
    Case(
        "std_dim_keepdim", lambda m, x: m.std(x, dim=(0, 1), correction=2, keepdim=True), [T(3, 4)]
    ),
    Case("std_legacy", lambda m, x: x.std(0, True), [T(3, 4)]),
    Case(
        "std_zero",
        lambda m, x: m.std(x - x.detach(), 1),
        [T(3, 4)],
        notes="std 0: torch's gradient there is 0",
    ),
    Case("var_std_grad2", _grad2(lambda m, x: x.var(1) * x.std(0).sum()), [T(3, 4)], **HIGHER),
    # logsumexp
    Case("logsumexp", lambda m, x: m.logsumexp(x, 1), [T(3, 4)]),
    Case("logsumexp_tuple_keepdim", lambda m, x: x.logsumexp((0, 2), keepdim=True), [T(2, 3, 4)]),
    Case("logsumexp_neg", lambda m, x: x.logsumexp(-1), [T(2, 3, 4)]),
    Case(
        "logsumexp_large",
        lambda m, x: m.logsumexp(x * 1000, 1),
        [T(3, 4)],
        notes="stable for magnitudes ~1e3",
    ),
    Case(
        "logsumexp_neg_inf",
        lambda m, x: m.logsumexp(m.where(m.tensor(ZEROS), -INF, x), 1),
        [T(3, 4)],
    ),
    Case(
        "logsumexp_int",
        lambda m, a: m.logsumexp(a, 0),
        [INT],
        atol=1e-6,
        notes="int input: a float32 result even in the float64 run, so float32's tolerance",
    ),
    Case("logsumexp_grad2", _grad2(lambda m, x: m.logsumexp(x * x, 0)), [T(3, 4)], **HIGHER),
    # norm (torch.linalg.vector_norm semantics)
    Case("norm_default", lambda m, x: x.norm(), [T(3, 4)]),
    Case("norm_p1", lambda m, x: m.norm(x, 1), [T(3, 4)]),
    Case("norm_dim", lambda m, x: m.norm(x, 2, 1), [T(3, 4)]),
    Case("norm_inf", lambda m, x: m.norm(x, INF, dim=-1), [T(3, 4)]),
    Case("norm_neg_inf", lambda m, x: x.norm(-INF), [T(3, 4)]),
    Case("norm_p3_keepdim", lambda m, x: x.norm(3, dim=(0, 1), keepdim=True), [T(2, 3, 4)]),
    Case("norm_p_half", lambda m, x: m.norm(x, 0.5, dim=-1), [T(3, 4)]),
    Case("norm_p1_5", lambda m, x: m.norm(x, 1.5), [T(3, 4)]),
    Case("norm_p_neg1", lambda m, x: m.norm(x, -1, 0), [T(3, 4)]),
    Case(
        "norm_p0",
        lambda m, x: m.norm(_zeroed(m, x), 0, 1),
        [T(3, 4)],
        gradcheck=True,
        notes="counts nonzeros; no gradient (torch's is None, ours zeros)",
    ),
    Case("norm_fro_dims", lambda m, x: m.norm(x, "fro", dim=(0, 1)), [T(3, 4)]),
    Case(
        "norm_at_zero",
        lambda m, x: (m.norm(x - x.detach()), m.norm(x - x.detach(), 3, 1)),
        [T(3, 4)],
        notes="gradient 0 at a zero norm, as torch",
    ),
    Case(
        "norm_zero_entries",
        lambda m, x: (m.norm(_zeroed(m, x), 0.5, 1), _zeroed(m, x).norm(1)),
        [T(3, 4)],
    ),
    Case("norm_inf_ties", lambda m, x: m.norm(_tied(m, x), INF, 0), [T(3, 4)], **TIES),
    Case(
        "norm_grad2",
        _grad2(lambda m, x: m.norm(x, 2, 1).sum() * m.norm(x, 3) + m.norm(x, 0.5, 0).sum()),
        [T(3, 4, domain="nonzero")],
        **HIGHER,
    ),
    Case(
        "norm_p1_5_grad2",
        _grad2(lambda m, x: m.norm(x, 1.5, 1) * m.norm(x, -2, 1)),
        [T(3, 4, domain="nonzero")],
        **HIGHER,
    ),
    Case(
        "norm_inf_grad2",
        _grad2(lambda m, x: m.norm(x * x, INF, 1) * x.norm(1)),
        [T(3, 4)],
        **HIGHER,
    ),
    # amax / amin
    Case("amax_all", lambda m, x: x.amax(), [T(3, 4)]),
    Case("amax_dim", lambda m, x: m.amax(x, 1), [T(3, 4)]),
    Case("amax_tuple_keepdim", lambda m, x: m.amax(x, (0, 2), keepdim=True), [T(2, 3, 4)]),
    Case("amin_neg", lambda m, x: x.amin(-1), [T(2, 3, 4)]),
    Case("amax_ties", lambda m, x: m.amax(_tied(m, x), 0), [T(3, 4)], **TIES),
    Case("amin_ties_all", lambda m, x: m.amin(_tied(m, x)), [T(3, 4)], **TIES),
    Case("amax_int_bool", lambda m, a, b: (m.amax(a, 0), b.amax(1), a.amin()), [INT, BOOL]),
    Case(
        "amax_grad2", _grad2(lambda m, x: m.amax(x * x, 1) * x.amin(0).sum()), [T(3, 4)], **HIGHER
    ),
    # max / min
    Case("max_all", lambda m, x: x.max(), [T(3, 4)]),
    Case("min_all", lambda m, x: m.min(x), [T(3, 4)]),
    Case("max_dim", lambda m, x: m.max(x, 1), [T(3, 4)]),
    Case("max_dim_keepdim", lambda m, x: x.max(dim=-1, keepdim=True), [T(2, 3, 4)]),
    Case("min_dim", lambda m, x: m.min(x, 0), [T(3, 4)]),
    Case("max_dim_fields", lambda m, x: (x.max(1).values * 2, x.min(1).indices), [T(3, 4)]),
    Case("max_ties_all", lambda m, x: m.max(_tied(m, x)), [T(3, 4)], **TIES),
    Case("min_ties_all", lambda m, x: _tied(m, x).min(), [T(3, 4)], **TIES),
    Case(
        "max_ties_dim",
        lambda m, x: m.max(_tied(m, x), 0),
        [T(3, 4)],
        gradcheck=False,
        notes="ties made exactly: along a dim the first index takes the whole gradient",
    ),
    Case("max_binary", lambda m, x, y: m.max(x, y), [T(3, 4), T(4)]),
    Case("min_binary_method", lambda m, x, y: x.min(y), [T(3, 4), T(3, 1)]),
    Case("max_int", lambda m, a: (a.max(), *m.max(a, 1), *a.min(0)), [INT]),
    Case("max_0d_dim", lambda m, x: m.max(x.sum(), 0), [T(3)]),
    Case("max_grad2", _grad2(lambda m, x: m.max(x * x, 1).values * x.min()), [T(3, 4)], **HIGHER),
    # argmax / argmin: int64, no gradient
    Case("argmax_all", lambda m, x: m.argmax(x), [T(3, 4)], covers=("argmax",)),
    Case(
        "argmax_dim_keepdim",
        lambda m, x: (x.argmax(1), m.argmax(x, -1, True)),
        [T(3, 4)],
        covers=("argmax",),
    ),
    Case(
        "argmin",
        lambda m, x: (x.argmin(), m.argmin(x, 0), x.argmin(keepdim=True)),
        [T(2, 3, 4)],
        covers=("argmin",),
    ),
    Case(
        "argmax_int_ties",
        lambda m, a: (a.argmax(), m.argmin(a, 1)),
        [INT],
        covers=("argmax", "argmin"),
        notes="ties: the first index, as torch on CPU",
    ),
    # NaN: amax's gradient is NaN (nothing equals a NaN maximum), max() shares it among the
    # NaNs, the inf-norm and sign treat NaN's sign as 0 (torch.sign)
    Case(
        "nan_extremes",
        lambda m, x: (m.amax(_nan(m, x), 1), _nan(m, x).max(), m.norm(_nan(m, x), INF, 1)),
        [T(3, 4)],
        gradcheck=False,
        notes="NaN inputs: finite differences are NaN",
    ),
    Case(
        "nan_sign_abs",
        lambda m, x: (m.sign(_nan(m, x)), _nan(m, x).abs(), m.norm(_nan(m, x), 1)),
        [T(3, 4)],
        gradcheck=False,
        notes="NaN inputs: finite differences are NaN",
    ),
    # empty reductions
    Case(
        "empty_reductions",
        lambda m, x: (x.sum(1), x.prod(1), x.var(1), x.norm(dim=1)),
        [T(2, 0)],
        gradcheck=False,
        notes="0, 1, nan and 0 per row, as torch",
    ),
    Case(
        "empty_logsumexp",
        lambda m, x: x.logsumexp(1),
        [T(1, 0)],
        gradcheck=False,
        notes="-inf, as torch (one row, so the harness's weighted sum stays -inf or inf)",
    ),
]
