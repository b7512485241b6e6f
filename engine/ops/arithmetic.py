"""torch's arithmetic functions over the elementwise primitives: add/sub with alpha, mul,
div with rounding_mode (div.Tensor_mode, DivBackward2, when rounding_mode is given at all),
true_divide and the subtract/multiply/divide aliases (square, torch's pow(input, 2), is with
pow in elementwise.py).

Either operand may be a Python number; type promotion is torch's (see dispatch)."""

from __future__ import annotations

import numpy as np

from .. import shapes as S
from ..dispatch import apply
from ..errors import ArgumentError
from ..registry import OPS, default_dtype, deffn, defop
from ..tensor import Tensor
from . import dual as d
from . import elementwise  # noqa: F401 - its ops (add, sub, mul, div) are registered first

ew = S.elementwise

_KEEP = object()  # div's rounding_mode when not given: torch picks another overload if it is


def _div_other(g, input, other, rounding_mode):
    if rounding_mode is not None:
        return d.zeros_like(g)
    return -g * ((input / other) / other)


@defop(
    "div.Tensor_mode",
    grad_fn="DivBackward2",
    shape=ew,
    promote=True,
    public=False,
    vjp=(
        lambda g, other, rounding_mode: g / other if rounding_mode is None else d.zeros_like(g),
        _div_other,
    ),
)
def _div_mode(input, other, *, rounding_mode=None):
    """input / other rounded as rounding_mode says: None (true division), 'trunc', 'floor'."""
    ints = (
        input.dtype.kind in "biu" and getattr(other, "dtype", np.dtype(type(other))).kind in "biu"
    )
    if rounding_mode is None:
        return input.astype(np.float32) / other if ints else input / other
    _check_rounding(rounding_mode)
    if ints:
        if np.any(np.asarray(other) == 0):
            raise ZeroDivisionError("ZeroDivisionError")
        q = np.floor_divide(input, other)
        if rounding_mode == "trunc":  # C division: round toward zero
            q = q + ((np.remainder(input, other) != 0) & ((input < 0) != (np.asarray(other) < 0)))
        return q
    with np.errstate(divide="ignore", invalid="ignore"):
        if rounding_mode == "trunc":
            return np.trunc(input / other)
        return np.floor_divide(input, other)


def _dtype_of(x):
    return x._a.dtype if isinstance(x, Tensor) else type(x)


def _alpha_dtype(name):
    """The dtype rule of add/sub: torch's promotion, refusing an alpha torch refuses."""

    def rule(input, other, *, alpha=1, **_):
        out = default_dtype(OPS[name], (input, other))
        kind = type(alpha)  # an attribute: its value, from check as from the call
        if kind is bool and out.kind != "b":
            raise ArgumentError("Boolean alpha only supported for Boolean results.")
        if kind is float and out.kind in "biu":
            raise ArgumentError(
                "For integral input tensors, argument alpha must not be a floating point number."
            )
        return out

    return rule


def _check_alpha(name, input, other, alpha):
    _alpha_dtype(name)(_dtype_of(input), _dtype_of(other), alpha=alpha)


@deffn("add", op="add", method=True, dtype=_alpha_dtype("add"))
def add(input, other, *, alpha=1):
    """input + alpha * other, broadcasting; other may be a number."""
    if alpha == 1 and type(alpha) is int:
        return apply(OPS["add"], (input, other), {})
    _check_alpha("add", input, other, alpha)
    return apply(OPS["add"], (input, other), {"alpha": alpha})


@deffn("sub", op="sub", method=True, dtype=_alpha_dtype("sub"))
def sub(input, other, *, alpha=1):
    """input - alpha * other, broadcasting; either may be a number."""
    if alpha == 1 and type(alpha) is int:
        return apply(OPS["sub"], (input, other), {})
    _check_alpha("sub", input, other, alpha)
    return apply(OPS["sub"], (input, other), {"alpha": alpha})


@deffn("mul", op="mul", method=True)
def mul(input, other):
    """input * other, broadcasting; either may be a number."""
    return apply(OPS["mul"], (input, other), {})


def _check_rounding(rounding_mode):
    if rounding_mode not in (None, "trunc", "floor"):
        raise ArgumentError(
            "div expected rounding_mode to be one of None, 'trunc', or 'floor' but found "
            f"'{rounding_mode}'"
        )


def _div_dtype(input, other, rounding_mode=None, **_):
    _check_rounding(rounding_mode)
    op = OPS["div" if rounding_mode is None else "div.Tensor_mode"]
    return default_dtype(op, (input, other))


@deffn("div", op="div", method=True, dtype=_div_dtype)
def div(input, other, *, rounding_mode=_KEEP):
    """input / other (true division), or rounded with rounding_mode='trunc' / 'floor'."""
    if rounding_mode is _KEEP:
        return apply(OPS["div"], (input, other), {})
    return apply(OPS["div.Tensor_mode"], (input, other), {"rounding_mode": rounding_mode})


@deffn("true_divide", op="div", method=True)
def true_divide(input, other):
    """input / other, always true division (DivBackward0)."""
    return apply(OPS["div"], (input, other), {})


@deffn("subtract", op="sub", method=True, dtype=_alpha_dtype("sub"))
def subtract(input, other, *, alpha=1):
    """Alias of sub."""
    return sub(input, other, alpha=alpha)


@deffn("multiply", op="mul", method=True)
def multiply(input, other):
    """Alias of mul."""
    return apply(OPS["mul"], (input, other), {})


@deffn("divide", op="div", method=True, dtype=_div_dtype)
def divide(input, other, *, rounding_mode=_KEEP):
    """Alias of div."""
    return div(input, other, rounding_mode=rounding_mode)
