"""Classification losses of torch.nn.functional, recorded as torch records them.

nll_loss is one primitive (NllLossBackward0, or NllLoss2DBackward0 for 4-d input, with
torch's views around other ranks); cross_entropy is composed as torch composes it:
log_softmax + nll_loss, or torch's C++ formulas for label smoothing and probability targets.
Class-index targets, weights and masks are attributes (constants), never graph edges:
torch's nodes have no edge for them either. The shared `reduction` helpers live here."""

from __future__ import annotations

import math

import numpy as np

from ..dispatch import apply
from ..errors import ArgumentError, DTypeError, ShapeError
from ..registry import FUNCTIONS, OPS, deffn, defop
from ..tensor import Tensor
from . import costs
from . import dual as d
from .nn import add_scalar, div_scalar, log_softmax, masked_fill, mul_scalar

_TORCH_NAMES = {"float32": "Float", "float64": "Double", "bool": "Bool", "int64": "Long"}


def _f(name):
    return FUNCTIONS[name].fn


def _reduction(reduction, size_average=None, reduce=None):
    """torch's reduction argument, including the legacy size_average / reduce pair."""
    if size_average is not None or reduce is not None:
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        return "mean" if size_average and reduce else "sum" if reduce else "none"
    if reduction not in ("none", "mean", "sum"):
        raise ArgumentError(
            f"{reduction} is not a valid value for reduction; use 'none', 'mean' or 'sum'"
        )
    return reduction


def _reduced(out, reduction):
    if reduction == "none":
        return out
    return np.asarray(out.sum() if reduction == "sum" else out.mean(), dtype=out.dtype)


# -- nll_loss -------------------------------------------------------------------------------


def _nll_parts(ndim, target, weight, ignore_index, dtype):
    """(class dim, targets with ignored ones at 0, per-target weight: 0 where ignored)."""
    cd = 0 if ndim == 1 else 1
    valid = target != ignore_index
    safe = target if valid.all() else np.where(valid, target, 0)
    if weight is None:
        return cd, safe, valid.astype(dtype)
    return cd, safe, weight[safe].astype(dtype) * valid


def _pick(x, safe, cd):
    """x[..., t, ...] along the class dim; plain fancy indexing for the 2-d case."""
    if x.ndim == 2:
        return x[np.arange(len(safe)), safe]
    return np.take_along_axis(x, np.expand_dims(safe, cd), axis=cd).squeeze(cd)


def _nll_vjp(g, input_shape, target, weight, reduction, ignore_index):
    cd, safe, w = _nll_parts(len(input_shape), target, weight, ignore_index, g.dtype)
    coef = -w
    if reduction == "mean":
        coef = coef / w.sum()
    m = np.zeros(input_shape, g.dtype)
    if len(input_shape) == 2:
        m[np.arange(len(safe)), safe] = coef
    else:
        np.put_along_axis(m, np.expand_dims(safe, cd), np.expand_dims(coef, cd), axis=cd)
    if reduction == "none":
        g = d.expand_dims(g, [cd])
    return g * m


@defop(
    "nll_loss",
    public=False,
    shape=lambda s, *, target, reduction="mean", **_: (
        np.shape(target) if reduction == "none" else ()
    ),
    grad_fn=lambda a: "NllLoss2DBackward0" if np.ndim(a["target"]) == 3 else "NllLossBackward0",
    vjp=_nll_vjp,
)
def _nll_loss(input, *, target, weight=None, reduction="mean", ignore_index=-100):
    """-weight[t] * input[..., t, ...] over the class dim (1, or 0 for 1-d input); the mean
    divides by the summed weights of the targets not ignored."""
    cd, safe, w = _nll_parts(input.ndim, target, weight, ignore_index, input.dtype)
    out = -(w * _pick(input, safe, cd))
    if reduction != "mean":
        return _reduced(out, reduction)
    with np.errstate(invalid="ignore", divide="ignore"):  # all ignored: nan, as torch
        return np.asarray(out.sum() / w.sum(), dtype=out.dtype)


def _nll_shape(input_shape, target_shape, weight_shape=None, *, reduction="mean", **_):
    nd = len(input_shape)
    if nd < 1:
        raise ShapeError("Expected 1 or more dimensions (got 0)", op="nll_loss", shapes=[()])
    shapes = [input_shape, target_shape]
    if nd <= 2 and len(target_shape) > 1:
        raise ShapeError(
            "0D or 1D target tensor expected, multi-target not supported", op="nll_loss",
            shapes=shapes
        )  # fmt: skip
    if nd != 1 and input_shape[0] != (target_shape[0] if target_shape else None):
        raise ShapeError(
            f"Expected input batch_size ({input_shape[0]}) to match target batch_size "
            f"({target_shape[0] if target_shape else 0}).",
            op="nll_loss",
            shapes=shapes,
        )
    if nd > 2 and tuple(target_shape[1:]) != tuple(input_shape[2:]):
        want = [input_shape[0], *input_shape[2:]]
        raise ShapeError(
            f"Expected target size {want}, got {list(target_shape)}", op="nll_loss", shapes=shapes
        )
    c = input_shape[0 if nd == 1 else 1]
    if weight_shape is not None and math.prod(weight_shape) != c:
        raise ShapeError(
            f"weight tensor should be defined either for all {c} classes or no classes but got "
            f"weight tensor of shape: {list(weight_shape)}",
            op="nll_loss",
            shapes=[*shapes, weight_shape],
        )
    return tuple(target_shape) if reduction == "none" else ()


def _class_targets(input, target, ignore_index):
    t = target._a if isinstance(target, Tensor) else np.asarray(target)
    if t.dtype.kind not in "iu":
        name = _TORCH_NAMES.get(str(t.dtype), str(t.dtype))
        raise DTypeError(
            f"expected target dtype to be Long or Byte, but got {name}: class-index targets "
            "are int64 (pass probabilities with the input's shape for soft targets)"
        )
    c = input.shape[0 if input.ndim == 1 else 1]
    if t.size and (t.min() < 0 or t.max() >= c):  # then find which, ignore_index aside
        bad = (t != ignore_index) & ((t < 0) | (t >= c))
        if bad.any():
            raise ArgumentError(
                f"Target {t[bad].flat[0]} is out of bounds. Class indices must lie in "
                f"[0, {c}) or equal ignore_index ({ignore_index})."
            )
    return t.astype(np.int64, copy=False)


def _nll_nd(input, target, weight, reduction, ignore_index):
    """torch's nll_loss_nd: 1-d/2-d input → nll_loss, 4-d → nll_loss2d, else views to 4-d."""
    _nll_shape(input.shape, target.shape, None if weight is None else weight.shape)
    t = _class_targets(input, target, ignore_index)
    w = None if weight is None else weight._a.reshape(-1)
    attrs = {"target": t, "weight": w, "reduction": reduction, "ignore_index": ignore_index}
    nd = input.ndim
    if nd <= 2 or nd == 4:
        return apply(OPS["nll_loss"], (input,), attrs)
    n, c = input.shape[:2]
    x = input if input._a.flags.c_contiguous else _f("clone")(input)
    attrs["target"] = t.reshape(n, 1, -1)
    out = apply(OPS["nll_loss"], (_f("view")(x, n, c, 1, -1),), attrs)
    return out if reduction != "none" else _f("view")(out, n, *input.shape[2:])


@deffn("nll_loss", shape=_nll_shape)
def nll_loss(
    input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
    reduction="mean",
):  # fmt: skip
    """Negative log-likelihood of class-index targets, given log-probabilities."""
    return _nll_nd(input, target, weight, _reduction(reduction, size_average, reduce), ignore_index)


# -- cross_entropy --------------------------------------------------------------------------


def _ce_shape(input_shape, target_shape, weight_shape=None, *, reduction="mean", **_):
    if tuple(input_shape) == tuple(target_shape):
        if reduction != "none":
            return ()
        return tuple(input_shape[:1]) + tuple(input_shape[2:]) if len(input_shape) > 1 else ()
    return _nll_shape(input_shape, target_shape, weight_shape, reduction=reduction)


def _class_view(weight, ndim, cd):
    shape = [1] * ndim
    shape[cd] = -1
    return weight.reshape(*shape) if ndim > 1 else weight


def _smoothed(input, target, weight, reduction, ignore_index, ls):
    """torch's cross_entropy_loss_label_smoothing, node for node."""
    cd = 0 if input.ndim == 1 else 1
    logp = log_softmax(input, cd)
    nll = _nll_nd(logp, target, weight, reduction, ignore_index)
    ignore = np.asarray(target._a == ignore_index)
    if weight is not None:
        wv = Tensor(_class_view(weight._a, input.ndim, cd).astype(input.dtype))
        smooth = -_f("sum")(logp * wv, cd)
    else:
        smooth = -_f("sum")(logp, cd)
    smooth = masked_fill(smooth, ignore, 0.0)
    if reduction == "mean":
        kept = target._a[~ignore]
        denom = (
            Tensor(np.asarray(weight._a.reshape(-1)[kept].sum(), input.dtype))
            if weight is not None
            else Tensor(np.asarray((~ignore).sum(), np.int64))
        )
        ret = _f("sum")(smooth) / denom
    elif reduction == "sum":
        ret = _f("sum")(smooth)
    else:
        ret = smooth
    return mul_scalar(nll, 1 - ls) + mul_scalar(ret, ls / input.shape[cd])


def _soft(input, target, weight, reduction, ls):
    """torch's cross_entropy_loss_prob_target: -(log_softmax * p [* weight]) reduced."""
    cd = 0 if input.ndim == 1 else 1
    n_classes = input.shape[cd]
    if target.dtype.kind != "f":
        name = _TORCH_NAMES.get(str(target.dtype), str(target.dtype))
        raise DTypeError(
            f"Expected floating point type for target with class probabilities, got {name}"
        )
    logp = log_softmax(input, cd)
    if ls > 0:
        target = add_scalar(mul_scalar(target, 1 - ls), ls / n_classes)
    prod = logp * target
    if weight is not None:
        prod = prod * Tensor(_class_view(weight._a, input.ndim, cd))
    if reduction == "none":
        return -_f("sum")(prod, cd)
    total = -_f("sum")(prod)
    return total if reduction == "sum" else div_scalar(total, input.numel() // n_classes)


@deffn("cross_entropy", shape=_ce_shape, memory=costs.buffers(5, 8))  # log_softmax + nll_loss
def cross_entropy(
    input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
    reduction="mean", label_smoothing=0.0,
):  # fmt: skip
    """log_softmax over the class dim then nll_loss (class indices), or the soft-target
    formula when target has the input's shape (probabilities); label_smoothing mixes in the
    uniform distribution as torch does."""
    reduction = _reduction(reduction, size_average, reduce)
    if label_smoothing > 1.0 or label_smoothing < 0.0:
        raise ArgumentError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    if tuple(input.shape) == tuple(target.shape):
        if ignore_index >= 0:
            raise ArgumentError("ignore_index is not supported for floating point target")
        return _soft(input, target, weight, reduction, label_smoothing)
    if label_smoothing > 0:
        return _smoothed(input, target, weight, reduction, ignore_index, label_smoothing)
    logp = log_softmax(input, 0 if input.ndim == 1 else 1)
    return _nll_nd(logp, target, weight, reduction, ignore_index)
