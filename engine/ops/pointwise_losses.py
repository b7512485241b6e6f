"""Pointwise losses of torch.nn.functional: mse_loss (MseLossBackward0), l1_loss (torch's
composite: abs(input - target) reduced) and binary_cross_entropy_with_logits (one
numerically stable primitive; weight and pos_weight are constants, as in torch)."""

from __future__ import annotations

import math
import warnings

import numpy as np

from .. import shapes as S
from ..dispatch import apply
from ..errors import ShapeError
from ..registry import FUNCTIONS, OPS, deffn, defop
from ..tensor import Tensor
from . import costs
from . import dual as d
from .losses import _reduced, _reduction


def _f(name):
    return FUNCTIONS[name].fn


# -- mse_loss, l1_loss ----------------------------------------------------------------------


def _pair_shape(input_shape, target_shape, weight_shape=None, *, reduction="mean", **_):
    out = S.broadcast(input_shape, target_shape, op="mse_loss")
    if weight_shape is not None and tuple(weight_shape) != tuple(input_shape):
        raise ShapeError(
            "Weights and input must have the same size.", shapes=[input_shape, weight_shape]
        )
    return out if reduction == "none" else ()


def _mse_vjp(sign):
    def vjp(g, input, target, input_shape, reduction):
        scale = 2.0 / math.prod(input_shape) if reduction == "mean" else 2.0
        return (input - target) * (g * (sign * scale))

    return vjp


@defop(
    "mse_loss",
    public=False,
    promote=True,
    shape=_pair_shape,
    vjp=(_mse_vjp(1.0), _mse_vjp(-1.0)),
)
def _mse_loss(input, target, *, reduction="mean"):
    """(input - target)² reduced."""
    diff = input - target
    return _reduced(diff * diff, reduction)


def _broadcast_pair(input, target, op):
    if tuple(target.shape) != tuple(input.shape):
        warnings.warn(
            f"Using a target size ({tuple(target.shape)}) that is different to the input size "
            f"({tuple(input.shape)}). This will likely lead to incorrect results due to "
            "broadcasting. Please ensure they have the same size.",
            stacklevel=3,
        )
    shape = S.broadcast(input.shape, target.shape, op=op)
    return tuple(t if t.shape == shape else _f("expand")(t, *shape) for t in (input, target))


def _weighted(err, weight, input, reduction):
    if tuple(weight.shape) != tuple(input.shape):
        raise ShapeError(
            "Weights and input must have the same size.", shapes=[input.shape, weight.shape]
        )
    err = err * weight
    if reduction == "none":
        return err
    total = _f("sum")(err)
    return total if reduction == "sum" else total / _f("sum")(weight)


@deffn("mse_loss", shape=_pair_shape, memory=costs.BROADCAST)
def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean squared error (MseLossBackward0); weight gives torch's weighted composite."""
    reduction = _reduction(reduction, size_average, reduce)
    x, y = _broadcast_pair(input, target, "mse_loss")
    if weight is not None:
        return _weighted(_f("pow")(x - y, 2), weight, input, reduction)
    return apply(OPS["mse_loss"], (x, y), {"reduction": reduction})


@deffn("l1_loss", shape=_pair_shape, memory=costs.BROADCAST)
def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean absolute error, composed as torch does: abs(input - target) then mean/sum."""
    reduction = _reduction(reduction, size_average, reduce)
    x, y = _broadcast_pair(input, target, "l1_loss")
    err = _f("abs")(x - y)
    if weight is not None:
        return _weighted(err, weight, input, reduction)
    if reduction == "none":
        return err
    return _f("sum")(err) if reduction == "sum" else _f("mean")(err)


# -- binary_cross_entropy_with_logits -------------------------------------------------------


def _log_sigmoid(x):
    """log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)): no overflow for any x."""
    if isinstance(x, np.ndarray):
        return np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))
    a = d.const(x)
    absx = x * np.where(a >= 0, 1, -1).astype(a.dtype)
    return d.mask(a < 0, x) - d.log(1 + d.exp(-absx))


def _bce_scale(g, grad, weight, reduction, input_shape):
    if weight is not None:
        grad = grad * weight
    if reduction == "mean":
        grad = grad / math.prod(input_shape)
    return grad * g


def _bce_input_vjp(g, input, target, input_shape, weight, pos_weight, reduction):
    s = d.sigmoid(input)
    if pos_weight is None:
        grad = s - target
    else:
        t = target * pos_weight
        grad = (t + 1 - target) * s - t
    return _bce_scale(g, grad, weight, reduction, input_shape)


def _bce_target_vjp(g, input, input_shape, weight, pos_weight, reduction):
    # d/dt of (1 - t)·x - (1 + (pw - 1)·t)·log σ(x) = log σ(-x) - pw·log σ(x)
    grad = -input if pos_weight is None else _log_sigmoid(-input) - _log_sigmoid(input) * pos_weight
    return _bce_scale(g, grad, weight, reduction, input_shape)


def _bce_shape(input_shape, target_shape, *, weight=None, pos_weight=None, reduction="mean"):
    if tuple(input_shape) != tuple(target_shape):
        raise ShapeError(
            f"Target size ({tuple(target_shape)}) must be the same as input size "
            f"({tuple(input_shape)})",
            op="binary_cross_entropy_with_logits",
            shapes=[input_shape, target_shape],
        )
    for extra in (weight, pos_weight):
        if extra is not None and S.broadcast(input_shape, np.shape(extra)) != tuple(input_shape):
            raise ShapeError(
                f"weight of shape {np.shape(extra)} does not broadcast to the input's shape "
                f"{tuple(input_shape)}",
                op="binary_cross_entropy_with_logits",
                shapes=[input_shape, np.shape(extra)],
            )
    return tuple(input_shape) if reduction == "none" else ()


@defop(
    "binary_cross_entropy_with_logits",
    public=False,
    promote=True,
    shape=_bce_shape,
    vjp=(_bce_input_vjp, _bce_target_vjp),
)
def _bce_with_logits(input, target, *, weight=None, pos_weight=None, reduction="mean"):
    """(1 - t)·x - w_pos·log σ(x), with w_pos = 1 + (pos_weight - 1)·t, times weight."""
    log_sig = _log_sigmoid(input)
    if pos_weight is not None:
        log_sig = log_sig * ((pos_weight - 1) * target + 1)
    loss = (1 - target) * input - log_sig
    if weight is not None:
        loss = loss * weight
    return _reduced(loss.astype(input.dtype, copy=False), reduction)


def _const(x, dtype):
    return None if x is None else np.asarray(x._a if isinstance(x, Tensor) else x, dtype)


@deffn("binary_cross_entropy_with_logits", shape=_bce_shape, memory=costs.BROADCAST)
def binary_cross_entropy_with_logits(
    input, target, weight=None, size_average=None, reduce=None, reduction="mean",
    pos_weight=None,
):  # fmt: skip
    """Sigmoid + binary cross-entropy in one numerically stable op; pos_weight weighs the
    positive term per class, weight each element (both constants, as in torch)."""
    reduction = _reduction(reduction, size_average, reduce)
    attrs = {
        "weight": _const(weight, input.dtype),
        "pos_weight": _const(pos_weight, input.dtype),
        "reduction": reduction,
    }
    _bce_shape(input.shape, target.shape, **attrs)
    return apply(OPS["binary_cross_entropy_with_logits"], (input, target), attrs)
