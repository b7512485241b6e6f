"""Comparisons and selection: eq/ne/lt/le/gt/ge and the logical ops (bool results, no
gradient; they back Tensor's == != < <= > >=), where, clamp/clip, minimum and maximum.

The selecting ops route the gradient with constant masks, as torch's derivatives.yaml does:
clamp passes it where the input lies inside [min, max] (bounds included), minimum/maximum
split it half/half on ties."""

from __future__ import annotations

import numpy as np

from .. import dtypes as _dt
from .. import shapes as S
from ..dispatch import apply
from ..errors import ArgumentError, DTypeError
from ..registry import OPS, default_dtype, deffn, defop
from ..tensor import Tensor
from . import dual as d

ew = S.elementwise


def _bool_result(*_, **__):
    return _dt.bool_


def _comparison(name, ufunc, doc):
    @defop(
        name,
        differentiable=False,
        promote=True,
        shape=ew,
        dtype=_bool_result,
        method=True,
        doc=doc,
    )
    def compare(input, other):
        return ufunc(input, other)

    return compare


eq = _comparison("eq", np.equal, "input == other elementwise (bool, no gradient).")
ne = _comparison("ne", np.not_equal, "input != other elementwise (bool, no gradient).")
lt = _comparison("lt", np.less, "input < other elementwise (bool, no gradient).")
le = _comparison("le", np.less_equal, "input <= other elementwise (bool, no gradient).")
gt = _comparison("gt", np.greater, "input > other elementwise (bool, no gradient).")
ge = _comparison("ge", np.greater_equal, "input >= other elementwise (bool, no gradient).")
logical_and = _comparison("logical_and", np.logical_and, "Elementwise AND of truth values.")
logical_or = _comparison("logical_or", np.logical_or, "Elementwise OR of truth values.")
logical_xor = _comparison("logical_xor", np.logical_xor, "Elementwise XOR of truth values.")


@defop("logical_not", differentiable=False, shape=S.same, dtype=_bool_result, method=True)
def logical_not(input):
    """Elementwise NOT of truth values (nonzero is True)."""
    return np.logical_not(input)


# -- where ---------------------------------------------------------------------------------
# The condition is an attribute, not an operand: torch's WhereBackward0 has edges to input
# and other only.


def _where_op_shape(input, other, *, condition):
    return S.broadcast(np.shape(condition), input, other, op="where")


@defop(
    "where",
    public=False,
    promote=True,
    shape=_where_op_shape,
    vjp=(
        lambda g, condition: d.where(condition, g, 0),
        lambda g, condition: d.where(condition, 0, g),
    ),
)
def _where(input, other, *, condition):
    """input where condition holds, else other (broadcasting all three)."""
    out = np.where(condition, input, other)
    if type(input) is not np.ndarray and type(other) is not np.ndarray:
        out = out.astype(_dt.result_type([], [input, other]))  # two numbers: torch's dtype
    return out


def _bool_condition(dtype):
    """Checks the condition's dtype (and returns True): torch's where takes bool only."""
    if dtype != _dt.bool_:
        raise DTypeError(
            f"where expected condition to be a boolean tensor, but got a tensor with dtype {dtype}"
        )
    return dtype


@deffn(
    "where",
    op="where",
    shape=lambda condition, input=(), other=(), **_: S.broadcast(
        condition, input, other, op="where"
    ),
    dtype=lambda condition, input=None, other=None, **_: (
        _bool_condition(condition) and default_dtype(OPS["where"], (input, other))
    ),
)
def where(condition, input=None, other=None):
    """torch.where: elements of input where condition holds, else of other (either may be
    a number); where(condition) alone gives the indices of its True elements."""
    cond = condition._a if isinstance(condition, Tensor) else np.asarray(condition)
    if input is None and other is None:
        return tuple(Tensor(i.astype(np.int64)) for i in np.nonzero(cond))
    if input is None or other is None:
        raise TypeError("where() takes a condition and both input and other")
    _bool_condition(cond.dtype)
    return apply(OPS["where"], (input, other), {"condition": cond})


# -- clamp ---------------------------------------------------------------------------------


def _clamp_shape(shape, *_, **__):
    return tuple(shape)


@defop(
    "clamp",
    public=False,
    grad_fn="ClampBackward1",
    shape=_clamp_shape,
    vjp=lambda g, input, min, max: d.mask(_inside(input, min, max), g),  # noqa: A006
)
def _clamp(input, *, min=None, max=None):  # noqa: A002 - torch's names
    """input limited to [min, max] (numbers; either may be None)."""
    if min is None and max is None:
        raise ArgumentError("torch.clamp: At least one of 'min' or 'max' must not be None")
    if input.dtype.kind != "f":  # an int tensor clamped to 0.5 becomes float32, as in torch
        input = input.astype(_dt.result_type([input], [b for b in (min, max) if b is not None]))
    out = input if min is None else np.maximum(input, min)
    return out if max is None else np.minimum(out, max)


def _absent(bound):
    return bound is None or type(bound) is bool  # clamp.Tensor's placeholder for no bound


def _inside(input, min, max):  # noqa: A002
    x = d.const(input)
    lo = None if _absent(min) else x >= d.const(min)
    hi = None if _absent(max) else x <= d.const(max)
    return hi if lo is None else lo if hi is None else lo & hi


def _min_grad(g, input, min, max):  # noqa: A002
    x, lo = d.const(input), d.const(min)
    m = x < lo
    if not _absent(max):
        m = m & (lo < d.const(max))
    return d.mask(m, g)


def _max_grad(g, input, min, max):  # noqa: A002
    x, hi = d.const(input), d.const(max)
    m = x > hi
    if not _absent(min):
        m = m | (hi < d.const(min))
    return d.mask(m, g)


@defop(
    "clamp.Tensor",
    public=False,
    grad_fn="ClampBackward0",
    promote=True,
    shape=lambda *shapes, **_: S.broadcast(*shapes, op="clamp"),
    vjp=(lambda g, input, min, max: d.mask(_inside(input, min, max), g), _min_grad, _max_grad),  # noqa: A006
)
def _clamp_t(input, min, max):  # noqa: A002
    """input limited to tensor bounds; an absent bound is passed as the number False."""
    out = input if type(min) is not np.ndarray else np.maximum(input, min)
    return out if type(max) is not np.ndarray else np.minimum(out, max)


def _clamp_dtype(input, min=None, max=None, **_):
    bounds = tuple(b for b in (min, max) if b is not None)
    return default_dtype(OPS["clamp.Tensor"], (input, *bounds))


def _clamp_fn_shape(input, min=None, max=None, **_):  # noqa: A002
    if min is None and max is None:
        raise ArgumentError("torch.clamp: At least one of 'min' or 'max' must not be None")
    bounds = (() if b is None else b for b in (min, max))
    return S.broadcast(input, *bounds, op="clamp")


@deffn("clamp", op="clamp", method=True, shape=_clamp_fn_shape, dtype=_clamp_dtype)
def clamp(input, min=None, max=None):  # noqa: A002
    """input limited to [min, max]; the bounds are numbers or tensors (not one of each)."""
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        if not all(b is None or isinstance(b, Tensor) for b in (min, max)):
            raise TypeError(
                "clamp(): min and max must both be tensors or both be numbers, got "
                f"min={type(min).__name__}, max={type(max).__name__}"
            )
        bounds = (False if min is None else min, False if max is None else max)
        return apply(OPS["clamp.Tensor"], (input, *bounds), {})
    return apply(OPS["clamp"], (input,), {"min": min, "max": max})


@deffn("clip", op="clamp", method=True, shape=_clamp_fn_shape, dtype=_clamp_dtype)
def clip(input, min=None, max=None):  # noqa: A002
    """Alias of clamp."""
    return clamp(input, min, max)


# -- minimum / maximum ---------------------------------------------------------------------


def _tie_split(a, b, loses):
    """The constant factor of the gradient to `a`: ½ on ties, 0 where `a` loses, else 1
    (so NaN, which neither wins nor ties, passes the gradient to both, as in torch)."""
    a, b = d.const(a), d.const(b)
    return np.where(a == b, 0.5, ~loses(a, b))


@defop(
    "maximum",
    promote=True,
    shape=ew,
    method=True,
    vjp=(
        lambda g, input, other: d.scale(g, _tie_split(input, other, np.less)),
        lambda g, input, other: d.scale(g, _tie_split(other, input, np.less)),
    ),
)
def maximum(input, other):
    """Elementwise maximum (NaN propagates); ties split the gradient half/half."""
    return np.maximum(input, other)


@defop(
    "minimum",
    promote=True,
    shape=ew,
    method=True,
    vjp=(
        lambda g, input, other: d.scale(g, _tie_split(input, other, np.greater)),
        lambda g, input, other: d.scale(g, _tie_split(other, input, np.greater)),
    ),
)
def minimum(input, other):
    """Elementwise minimum (NaN propagates); ties split the gradient half/half."""
    return np.minimum(input, other)
