"""torch.nn.functional's layers: softmax, log_softmax, linear and dropout, plus the
Tensor-by-number primitives and masked_fill that torch's C++ loss decompositions record
(`(1 - s) * loss` is MulBackward1 there, not the MulBackward0 of Python's `x * 2.5`).

linear and dropout are composites, as in torch: linear is addmm (a ViewBackward0 around it
for N-d input) or matmul; training dropout multiplies by a constant scaled Bernoulli mask."""

from __future__ import annotations

import math
import warnings

import numpy as np

from .. import dtypes as _dt
from .. import shapes as S
from ..dispatch import apply
from ..errors import ArgumentError, DTypeError, ShapeError
from ..factories import generator
from ..registry import FUNCTIONS, OPS, deffn, defop
from ..tensor import Tensor
from . import costs
from . import dual as d


def _f(name):
    return FUNCTIONS[name].fn


# -- Tensor (op) number, as ATen's `.Scalar` overloads ----------------------------------------


@defop(
    "mul.Scalar", vjp=lambda g, other: g * other, grad_fn="MulBackward1", shape=S.same, public=False
)
def _mul_scalar(input, *, other):
    """input * number, recorded as torch's C++ `tensor * scalar` (MulBackward1)."""
    return (input * other).astype(input.dtype, copy=False)


@defop(
    "div.Scalar", vjp=lambda g, other: g / other, grad_fn="DivBackward1", shape=S.same, public=False
)
def _div_scalar(input, *, other):
    """input / number, recorded as torch's C++ `tensor / scalar` (DivBackward1)."""
    return (input / other).astype(input.dtype, copy=False)


@defop("add.Scalar", vjp=lambda g: g, grad_fn="AddBackward1", shape=S.same, public=False)
def _add_scalar(input, *, other):
    """input + number, recorded as torch's C++ `tensor + scalar` (AddBackward1)."""
    return (input + other).astype(input.dtype, copy=False)


def mul_scalar(x, number):
    return apply(OPS["mul.Scalar"], (x,), {"other": number})


def div_scalar(x, number):
    return apply(OPS["div.Scalar"], (x,), {"other": number})


def add_scalar(x, number):
    return apply(OPS["add.Scalar"], (x,), {"other": number})


def _masked_fill_shape(input_shape, *, mask, value):
    S.broadcast(input_shape, np.shape(mask), op="masked_fill")
    return tuple(input_shape)


@defop(
    "masked_fill",
    memory=costs.BROADCAST,
    public=False,
    shape=_masked_fill_shape,
    vjp=lambda g, mask: d.mask(~np.asarray(mask), g),
)
def _masked_fill(input, *, mask, value):
    """value where the (constant, broadcast) boolean mask holds, input elsewhere."""
    return np.where(mask, np.asarray(value, input.dtype), input).astype(input.dtype, copy=False)


@deffn("masked_fill", op="masked_fill", method=True)
def masked_fill(input, mask, value):
    """x.masked_fill(mask, value): fill where the bool mask is True (MaskedFillBackward0)."""
    m = mask._a if isinstance(mask, Tensor) else np.asarray(mask)
    if m.dtype != np.bool_:
        raise DTypeError(
            f"masked_fill_ only supports boolean masks, but got mask with dtype {m.dtype}"
        )
    if isinstance(value, Tensor):
        value = value.item()
    return apply(OPS["masked_fill"], (input,), {"mask": m, "value": value})


# -- softmax and log_softmax --------------------------------------------------------------


def _axis(dim, ndim, op):
    return S.norm_dim(dim, ndim, op) if ndim else None


def _softmax_shape(input_shape, *, dim):
    S.norm_dim(dim, len(input_shape), "softmax")
    return tuple(input_shape)


def _check_float(x, op):
    if x.dtype.kind != "f":
        raise DTypeError(
            f'{op}(): "{op}_lastdim_kernel_impl" not implemented for {x.dtype}; '
            "cast the input to a floating dtype first, e.g. x.float()"
        )


@defop(
    "softmax",
    public=False,
    shape=_softmax_shape,
    vjp=lambda g, ans, dim: (
        ans * (g - d.sum(g * ans, axis=_axis(dim, ans.ndim, "softmax"), keepdims=True))
    ),
)
def _softmax(input, *, dim):
    """exp(x) / sum(exp(x)) along dim, shifted by the max so it cannot overflow."""
    _check_float(input, "softmax")
    ax = _axis(dim, input.ndim, "softmax")
    e = np.exp(input - input.max(axis=ax, keepdims=True))
    e /= e.sum(axis=ax, keepdims=True)
    return e


@defop(
    "log_softmax",
    public=False,
    shape=_softmax_shape,
    vjp=lambda g, ans, dim: (
        g - d.exp(ans) * d.sum(g, axis=_axis(dim, ans.ndim, "log_softmax"), keepdims=True)
    ),
)
def _log_softmax(input, *, dim):
    """x - logsumexp(x) along dim, computed from the max-shifted input."""
    _check_float(input, "log_softmax")
    ax = _axis(dim, input.ndim, "log_softmax")
    z = input - input.max(axis=ax, keepdims=True)
    z -= np.log(np.exp(z).sum(axis=ax, keepdims=True))
    return z


def _implicit_dim(ndim, name=None, stacklevel=3):
    # torch.nn.functional._get_softmax_dim (deprecated in torch, kept for parity)
    if name is not None:
        warnings.warn(
            f"Implicit dimension choice for {name} has been deprecated. Change the call to "
            "include dim=X as an argument.",
            stacklevel=stacklevel,
        )
    return 0 if ndim in (0, 1, 3) else 1


def _cast(input, dtype):
    return input if dtype is None else _f("to")(input, dtype)


def _fn_shape(input_shape, *, dim=None, _stacklevel=3, dtype=None):
    """The rule of softmax/log_softmax as called: dim may be left out (torch's legacy choice)."""
    S.norm_dim(_implicit_dim(len(input_shape)) if dim is None else dim, len(input_shape), "softmax")
    return tuple(input_shape)


def _fn_dtype(input, *, dim=None, _stacklevel=3, dtype=None):
    out = input if dtype is None else _dt.canonical(dtype)
    if out.kind != "f":
        raise DTypeError(f"softmax(): expected a floating point input, got {out}")
    return out


@deffn("softmax", op="softmax", method=True, shape=_fn_shape, dtype=_fn_dtype)
def softmax(input, dim=None, _stacklevel=3, dtype=None):
    """Softmax along dim (SoftmaxBackward0); dtype casts the input first."""
    dim = _implicit_dim(input.ndim, "softmax", _stacklevel) if dim is None else dim
    return apply(OPS["softmax"], (_cast(input, dtype),), {"dim": dim})


@deffn("log_softmax", op="log_softmax", method=True, shape=_fn_shape, dtype=_fn_dtype)
def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    """Log-softmax along dim (LogSoftmaxBackward0); dtype casts the input first."""
    dim = _implicit_dim(input.ndim, "log_softmax", _stacklevel) if dim is None else dim
    return apply(OPS["log_softmax"], (_cast(input, dtype),), {"dim": dim})


# -- linear -------------------------------------------------------------------------------


def _linear_shape(input_shape, weight_shape, bias_shape=None):
    if len(weight_shape) != 2 or not input_shape:
        raise ShapeError(
            f"linear(): expected a 2-D weight and an input of at least 1 dim, got input "
            f"{tuple(input_shape)} and weight {tuple(weight_shape)}",
            op="linear",
            shapes=[input_shape, weight_shape],
        )
    rows = math.prod(input_shape[:-1])
    if input_shape[-1] != weight_shape[1]:
        raise ShapeError(
            f"mat1 and mat2 shapes cannot be multiplied ({rows}x{input_shape[-1]} and "
            f"{weight_shape[1]}x{weight_shape[0]}): linear's weight (out_features, "
            f"in_features) must have in_features == input.shape[-1]",
            op="linear",
            shapes=[input_shape, weight_shape],
        )
    out = tuple(input_shape[:-1]) + (weight_shape[0],)
    if bias_shape is not None:
        S.broadcast(out, bias_shape, op="linear")
    return out


@deffn("linear", shape=_linear_shape, cost=costs.contraction(0), memory=costs.CONTRACTION)
def linear(input, weight, bias=None):
    """input @ weight.T + bias, recorded as torch records it: addmm for 2-D input (TBackward0
    on the weight), addmm between views for contiguous N-d input, matmul otherwise."""
    _linear_shape(input.shape, weight.shape, None if bias is None else bias.shape)
    wt = _f("t")(weight)
    if bias is not None and input.ndim == 2:
        return _f("addmm")(bias, input, wt)
    if bias is not None and bias.ndim == 1 and input._a.flags.c_contiguous:
        flat = _f("reshape")(input, math.prod(input.shape[:-1]), input.shape[-1])
        out = _f("addmm")(bias, flat, wt)
        return _f("view")(out, *input.shape[:-1], out.shape[1])
    out = _f("matmul")(input, wt)
    return out if bias is None else out + bias


# -- dropout --------------------------------------------------------------------------------


@deffn("dropout", shape=S.same)
def dropout(input, p=0.5, training=True, inplace=False):
    """Zero each element with probability p and scale the rest by 1/(1-p) (MulBackward0 by a
    constant mask, as torch on CPU); the input itself when not training or p == 0. The mask
    is drawn from the generator `engine.manual_seed` seeds."""
    if not 0.0 <= p <= 1.0:
        raise ArgumentError(f"dropout probability has to be between 0 and 1, but got {p}")
    if inplace:
        raise ArgumentError("dropout(): inplace=True is not supported; use the returned tensor")
    if p == 0 or not training or input.numel() == 0:
        return input
    dt = input.dtype
    if p == 1:
        return input * Tensor(np.zeros((), dt))
    keep = generator().random(input.shape) < 1.0 - p
    noise = keep.astype(dt) / dt.type(1.0 - p)
    return input * Tensor(noise)
