"""Elementwise ops: arithmetic, powers, transcendental and activation functions.

Each VJP is one line in terms of `g` (the incoming gradient), the inputs and `ans`; the
backward loop sums it back to the input's shape, so no rule here deals with broadcasting."""

from __future__ import annotations

import numpy as np

from .. import shapes as S
from ..dispatch import apply, apply_unary, unary
from ..dtypes import SCALARS, scalar_array
from ..registry import OPS, default_dtype, deffn, defop
from ..tensor import Tensor
from . import costs
from . import dual as d

ew = S.elementwise
_ndarray = np.ndarray


@defop(
    "add",
    vjp=(lambda g: g, lambda g, alpha: g * alpha if alpha != 1 else g),
    shape=ew,
    promote=True,
    public=False,
)
def _add(input, other, *, alpha=1):
    """input + alpha * other, broadcasting."""
    return input + other if alpha == 1 else input + alpha * other


@defop(
    "sub",
    vjp=(lambda g: g, lambda g, alpha: -g if alpha == 1 else g * -alpha),
    shape=ew,
    promote=True,
    public=False,
)
def _sub(input, other, *, alpha=1):
    """input - alpha * other, broadcasting."""
    return input - other if alpha == 1 else input - alpha * other


@defop(
    "rsub",
    vjp=lambda g, alpha: -g if alpha == 1 else g * -alpha,
    grad_fn="RsubBackward1",
    shape=S.same,
    public=False,
)
def _rsub(input, *, other, alpha=1):
    """other - alpha * input for a number `other`: what `3 - x` runs, as in torch."""
    return other - input if alpha == 1 else other - alpha * input


@defop(
    "mul",
    vjp=(lambda g, other: g * other, lambda g, input: g * input),
    shape=ew,
    promote=True,
    public=False,
)
def _mul(input, other):
    """input * other, broadcasting."""
    return input * other


@defop(
    "div",
    vjp=(lambda g, other: g / other, lambda g, input, other: -g * input / (other * other)),
    shape=ew,
    promote=True,
    to_float=True,
    public=False,
)
def _div(input, other):
    """True division, broadcasting; integers divide as floats."""
    return input / other


@defop("neg", vjp=lambda g: -g, shape=S.same, method=True)
def neg(input):
    """-input."""
    return -input


@defop("reciprocal", vjp=lambda g, ans: -g * ans * ans, shape=S.same, to_float=True, method=True)
def reciprocal(input):
    """1 / input."""
    return 1 / input


# -- pow's numpy kernels ------------------------------------------------------------------------


def _powi(x, e):
    """x ** e: repeated products for e = 2 and 3 (several times faster than np.power on
    arrays); a Tensor (under create_graph) goes through the pow op."""
    if isinstance(x, Tensor):
        return d.pow(x, e)
    return x * x if e == 2 else x * x * x if e == 3 else np.power(x, e)


def _pow_np(input, exponent):
    if type(exponent) is int and input.dtype.kind == "f":  # the common cases first
        if exponent == 2:
            return input * input
        if exponent == 3:
            return input * input * input
    if input.dtype.kind in "biu":  # torch: bool ** 2 is int64, int ** 2.0 is float32
        input = input.astype(np.float32 if type(exponent) is float else np.int64)
    if type(exponent) is int or (
        type(exponent) is float and exponent.is_integer() and abs(exponent) <= 3 and exponent > 1
    ):
        if input.dtype.kind in "biu" and exponent < 0:
            raise ValueError("Integers to negative integer powers are not allowed.")
        if exponent > 1:
            return _powi(input, int(exponent)).astype(input.dtype, copy=False)
    return np.power(input, exponent)


def _pow_fast(g, input, exponent):
    """pow's VJP on arrays with one temporary updated in place (the formula keeps three
    arrays alive at once): (exponent · input^(exponent-1)) · g, as torch rounds it."""
    if type(input) is _ndarray and type(g) is _ndarray and exponent != 0 and exponent != 1:
        if input.dtype is g.dtype:  # (floating: input needs a gradient; g has its shape)
            c = SCALARS[g.dtype].get(exponent)
            if c is None:
                c = scalar_array(exponent, g.dtype)
            if exponent == 2:
                r = input * c
            else:
                r = _powi(input, exponent - 1)
                r *= c
            r *= g
            return r
        if g.shape == input.shape:
            r = input.copy() if exponent == 2 else _powi(input, exponent - 1)
            r = r.astype(np.result_type(r, g), copy=False)
            r *= exponent
            r *= g
            return r
    return OPS["pow"].vjps[0](g, input, exponent)


# -- pow: the op, its overloads (tensor exponent, number base), the front end and square -------


@defop(
    "pow",
    vjp=lambda g, input, exponent: (  # exponent · input^(exponent-1) · g; 0, 1, 2 spelled out
        g * 0 if exponent == 0 else g if exponent == 1 else g * 2 * input if exponent == 2
        else g * exponent * _powi(input, exponent - 1)
    ),
    fast_vjp=_pow_fast,  # the numpy backward runs this kernel (tests/engine/test_op_records.py)
    shape=S.same, cost=costs.pointwise, public=False,  # dtype: the front end's _pow_dtype
)  # fmt: skip
def _pow(input, *, exponent):
    """input ** exponent for a number exponent."""
    return _pow_np(input, exponent)


@defop(
    "pow.Tensor_Tensor",
    vjp=(
        lambda g, input, other: g * other * d.pow(input, other - 1),
        lambda g, input, ans: g * ans * d.log(input),
    ),
    grad_fn="PowBackward1", shape=ew, promote=True, cost=costs.pointwise, public=False,
)  # fmt: skip
def _pow_tt(input, other):
    """input ** other elementwise, both tensors."""
    return np.power(input, other)


@defop(
    "pow.Scalar",
    vjp=lambda g, ans, base: g * ans * float(np.log(base)),
    grad_fn="PowBackward2", shape=S.same, to_float=True, cost=costs.pointwise, public=False,
)  # fmt: skip
def _pow_st(exponent, *, base):
    """number ** tensor."""
    return np.power(base, exponent)


def _pow_dtype(input, exponent):
    return default_dtype(OPS["pow.Tensor_Tensor"], (input, exponent))


_POW = unary(OPS["pow"])


@deffn("pow", op="pow", method=True, shape=ew, dtype=_pow_dtype)
def pow(input, exponent):  # noqa: A001 - torch's name
    """input ** exponent; either side may be a tensor or a number."""
    if type(exponent) is int or type(exponent) is float:
        return _POW(input, {"exponent": exponent})
    if isinstance(exponent, Tensor):
        if isinstance(input, Tensor):
            return apply(OPS["pow.Tensor_Tensor"], (input, exponent), {})
        return apply(OPS["pow.Scalar"], (exponent,), {"base": input})
    return apply_unary(OPS["pow"], input, {"exponent": exponent})


@deffn("square", op="pow", method=True, shape=S.same, family="arithmetic",  # as /v1/ops lists it
       dtype=lambda input, **_: _pow_dtype(input, int))  # fmt: skip
def square(input):
    """input * input, as torch's pow(input, 2) (PowBackward0)."""
    return apply(OPS["pow"], (input,), {"exponent": 2})


@defop("exp", vjp=lambda g, ans: g * ans, shape=S.same, to_float=True, method=True)
def exp(input):
    """e ** input."""
    return np.exp(input)


@defop("log", vjp=lambda g, input: g / input, shape=S.same, to_float=True, method=True)
def log(input):
    """Natural logarithm."""
    return np.log(input)


@defop("sqrt", vjp=lambda g, ans: g / (2 * ans), shape=S.same, to_float=True, method=True)
def sqrt(input):
    """Square root."""
    return np.sqrt(input)


@defop(
    "rsqrt", vjp=lambda g, ans: g * -0.5 * ans * ans * ans, shape=S.same, to_float=True, method=True
)
def rsqrt(input):
    """1 / sqrt(input)."""
    return 1 / np.sqrt(input)


@defop("abs", vjp=lambda g, input: d.scale(g, d.sgn(input)), shape=S.same, method=True)
def abs(input):  # noqa: A001
    """|input|; its gradient at 0 is 0, as torch's."""
    return np.abs(input)


@defop("sign", vjp=lambda g: g * 0, shape=S.same, method=True)
def sign(input):
    """-1, 0 or 1; zero gradient everywhere."""
    return d.sgn(input)  # NaN gives 0, as torch.sign


@defop("sin", vjp=lambda g, input: g * d.cos(input), shape=S.same, to_float=True, method=True)
def sin(input):
    """Sine."""
    return np.sin(input)


@defop("cos", vjp=lambda g, input: -g * d.sin(input), shape=S.same, to_float=True, method=True)
def cos(input):
    """Cosine."""
    return np.cos(input)


@defop("tanh", vjp=lambda g, ans: g * (1 - ans * ans), shape=S.same, to_float=True, method=True)
def tanh(input):
    """Hyperbolic tangent."""
    return np.tanh(input)


@defop(
    "sigmoid",
    vjp=lambda g, ans: g * ans * (1 - ans),
    shape=S.same,
    to_float=True,
    method=True,
    memory=costs.buffers(6, 6),
)  # fmt: skip  (_np_sigmoid: exp, masks, both branches)
def sigmoid(input):
    """1 / (1 + e^-input), computed without overflow."""
    return d._np_sigmoid(input)


@defop("relu", vjp=lambda g, ans: d.mask(d.const(ans) > 0, g), shape=S.same, method=True)
def relu(input):
    """max(input, 0)."""
    return np.maximum(input, 0)


@defop(
    "leaky_relu",
    shape=S.same,
    vjp=lambda g, input, negative_slope: d.where(d.const(input) > 0, g, g * negative_slope),
)
def leaky_relu(input, *, negative_slope=0.01):
    """input where positive, negative_slope * input elsewhere."""
    return np.where(input > 0, input, input * negative_slope).astype(input.dtype, copy=False)
