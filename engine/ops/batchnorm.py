"""torch.nn.functional.batch_norm, as ATen's native_batch_norm (NativeBatchNormBackward0).

The op returns (output, save_mean, save_invstd) like torch's; the front end hands out the
output. Training normalizes with the batch statistics over every dim but 1 and updates
running_mean / running_var IN PLACE with `momentum` (the running variance takes the
unbiased batch variance, as torch); eval normalizes with the running statistics. An absent
weight or bias is the number 1 or 0, so its edge is None, as torch's.

Gradients are the full formulas (in training the batch statistics depend on the input):
dx = w*invstd * (g - mean(g) - xhat*mean(g*xhat)), dw = sum(g*xhat), db = sum(g), written
with differentiable ops (the VJPs create_graph runs); the numpy backward runs their
fast_vjp kernels (_dx, _dw, _db: torch's CPU kernel, sums in float64), tested equal."""

from __future__ import annotations

import math

import numpy as np

from .. import dtypes as _dt
from ..dispatch import apply
from ..errors import ArgumentError, DTypeError, ShapeError
from ..registry import OPS, deffn, defop
from ..tensor import Tensor
from . import costs
from . import dual as d


def _axes(ndim):
    return (0, *range(2, ndim))


def _bshape(ndim, c):
    return (1, c) + (1,) * (ndim - 2)


def _sum_c(x3):
    """Per-channel sum of an (N, C, L) array, accumulated in float64 as torch's CPU kernel
    (its accscalar_t): float32 sums of a whole channel would drift from torch's."""
    return x3.sum(axis=2, dtype=np.float64).sum(axis=0)


def _three(x):
    return x.reshape(x.shape[0], x.shape[1], math.prod(x.shape[2:]))


def _update(buf, stat, momentum):
    buf *= 1 - momentum
    buf += momentum * stat


@defop(
    "native_batch_norm",
    public=False,
    n_outputs=3,
    grad_fn="NativeBatchNormBackward0",
    shape=lambda input, weight, bias, **_: (tuple(input), (input[1],), (input[1],)),
    dtype=lambda input, *_, **__: (input, input, input),
    vjp=(  # the formulas, differentiable again (create_graph runs them on Tensors)
        lambda g, input, weight, ans, training, eps: _dx_graph(
            g[0], input, weight, ans, training, eps
        ),
        lambda g, input, ans, training, eps: d.sum(
            g[0] * _xhat(input, ans, training, eps), axis=_axes(g[0].ndim)
        ),
        lambda g: d.sum(g[0], axis=_axes(g[0].ndim)),
    ),
    fast_vjp=(  # torch's CPU kernel on arrays: float64 sums, one pass, in place
        lambda g, input, weight, ans, training, eps: _dx(g[0], input, weight, ans, training, eps),
        lambda g, input, ans, training, eps: _dw(g[0], input, ans, training, eps),
        lambda g: _db(g[0]),
    ),
)
def native_batch_norm(
    input, weight, bias, *, running_mean=None, running_var=None, training=False, momentum=0.1,
    eps=1e-5,
):  # fmt: skip
    """(output, batch or running mean, invstd) of batch normalization over dim 1."""
    dt = input.dtype
    if input.size == 0:  # torch: an empty output, running statistics untouched
        c = input.shape[1] if input.ndim > 1 else 0
        return input.copy(), np.zeros(c, dt), np.zeros(c, dt)
    x3 = _three(input)
    if training:
        n = x3.shape[0] * x3.shape[2]
        mean = _sum_c(x3) / n
        xc = x3 - mean.astype(dt)[:, None]
        var = _sum_c(xc * xc) / n
        invstd = 1 / np.sqrt(var + eps)
        if running_mean is not None:
            _update(running_mean, mean, momentum)
        if running_var is not None:
            _update(running_var, var * (n / (n - 1)), momentum)
        mean, invstd = mean.astype(dt), invstd.astype(dt)
    else:
        mean = np.array(running_mean, dtype=dt)
        invstd = (1 / np.sqrt(running_var + eps)).astype(dt, copy=False)
    # torch's transform: input * alpha + beta, alpha = invstd * weight, beta = bias - mean*alpha
    alpha = (invstd * weight).astype(dt, copy=False)
    beta = (bias - mean * alpha).astype(dt, copy=False)
    out = x3 * alpha[:, None]
    out += beta[:, None]
    return out.reshape(input.shape), mean, invstd


def _dx(g, input, weight, ans, training, eps):
    mean, invstd = ans[1], ans[2]
    scale = (invstd * weight).astype(g.dtype, copy=False)
    g3 = _three(g)
    if not training or g.size == 0:
        return (g3 * scale[:, None]).reshape(g.shape)
    # torch's batch_norm_cpu_backward: sums in float64, then
    # (g - mean(g) - (x - mean) * dotp * invstd**2 / n) * invstd * weight
    xc = _three(input) - mean[:, None]
    n = xc.shape[0] * xc.shape[2]
    k = (_sum_c(g3 * xc) * invstd.astype(np.float64) ** 2 / n).astype(g.dtype)
    grad_mean = (_sum_c(g3) / n).astype(g.dtype)
    xc *= k[:, None]
    dx = g3 - grad_mean[:, None]
    dx -= xc
    dx *= scale[:, None]
    return dx.reshape(g.shape)


def _dw(g, input, ans, training, eps):
    mean, invstd = ans[1], ans[2]
    dotp = _sum_c(_three(g) * (_three(input) - mean[:, None]))
    return (dotp * invstd).astype(g.dtype)


def _db(g):
    return _sum_c(_three(g)).astype(g.dtype)


def _xhat(input, ans, training, eps):
    """The normalized input as a differentiable function of the input (create_graph)."""
    nd = input.ndim
    shape = _bshape(nd, input.shape[1])
    if not training:
        mean, invstd = d.const(ans[1]).reshape(shape), d.const(ans[2]).reshape(shape)
        return (input - Tensor(mean)) * Tensor(invstd)
    xc = input - d.mean(input, axis=_axes(nd), keepdims=True)
    var = d.mean(xc * xc, axis=_axes(nd), keepdims=True)
    return xc * d.pow(var + eps, -0.5)


def _dx_graph(g, input, weight, ans, training, eps):
    nd = g.ndim
    shape = _bshape(nd, g.shape[1])
    w = d.reshape(weight, shape) if isinstance(weight, (Tensor, np.ndarray)) else weight
    if not training:
        return g * (w * Tensor(d.const(ans[2]).reshape(shape)))
    if not isinstance(input, Tensor):
        input = Tensor(input)
    xc = input - d.mean(input, axis=_axes(nd), keepdims=True)
    invstd = d.pow(d.mean(xc * xc, axis=_axes(nd), keepdims=True) + eps, -0.5)
    xhat = xc * invstd
    ax = _axes(nd)
    inner = g - d.mean(g, axis=ax, keepdims=True) - xhat * d.mean(g * xhat, axis=ax, keepdims=True)
    return inner * (invstd * w)


# -- torch.nn.functional.batch_norm -----------------------------------------------------------

_NAMES = {"float32": "Float", "float64": "Double", "int64": "Long", "bool": "Bool"}


def _bn_shape(input, running_mean, running_var, weight=None, bias=None, *, training=False,
              momentum=0.1, eps=1e-5):  # fmt: skip
    """The output shape (the input's), after torch's checks of every operand's size."""
    shape = tuple(input)
    if training and (len(shape) < 1 or shape[0] * math.prod(shape[2:]) == 1):
        raise ShapeError(
            "Expected more than 1 value per channel when training, got input size "
            f"torch.Size([{', '.join(map(str, shape))}])",
            op="batch_norm",
            shapes=[shape],
        )
    if training and not eps > 0:
        raise ArgumentError(f"batch_norm eps must be positive during training, but got {eps}")
    if not training and running_mean is None:
        raise ArgumentError("running_mean must be defined in evaluation mode")
    if not training and running_var is None:
        raise ArgumentError("running_var must be defined in evaluation mode")
    c = shape[1] if len(shape) > 1 else 0
    for name, s in (("weight", weight), ("bias", bias), ("running_mean", running_mean),
                    ("running_var", running_var)):  # fmt: skip
        if s is not None and math.prod(s) != c:
            raise ShapeError(
                f"{name} should contain {c} elements not {math.prod(s)}",
                op="batch_norm",
                shapes=[shape, tuple(s)],
            )
    return shape


def _bn_dtype(input, running_mean=None, running_var=None, weight=None, bias=None, *,
              training=False, momentum=0.1, eps=1e-5):  # fmt: skip
    dt = _dt.canonical(input)
    if dt.kind != "f":
        raise DTypeError(f"\"batch_norm\" not implemented for '{_NAMES.get(str(dt), dt)}'")
    # torch's is_mixed_type / check_mixed_data_type (mixed_type.h), parameters in its order
    params = [_dt.canonical(p) for p in (weight, bias, running_mean, running_var) if p is not None]
    if any(p != dt for p in params):
        if params[0] != dt and any(p != _dt.float32 for p in params):
            raise DTypeError("mixed dtype (CPU): expect parameter to have scalar type of Float")
        raise DTypeError("mixed dtype (CPU): all inputs must share same datatype.")
    return dt


def _buffer(t):
    """The array a running statistic is updated in: the tensor's own (made writeable)."""
    if t is None:
        return None
    if not (t._a.flags.writeable and t._a.flags.c_contiguous):
        t._a = np.array(t._a)
    return t._a


def _shape_of(t):
    return None if t is None else tuple(t.shape)


def _dtype_of(t):
    return None if t is None else t.dtype


@deffn("batch_norm", shape=_bn_shape, dtype=_bn_dtype, memory=costs.buffers(4, 8))
def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):  # fmt: skip
    """Batch normalization over dim 1 of a (N, C, ...) input; in training, batch statistics
    and an in-place update of running_mean / running_var (if given) with momentum."""
    ts = (running_mean, running_var, weight, bias)
    _bn_shape(input.shape, *map(_shape_of, ts), training=training, eps=eps)
    _bn_dtype(input.dtype, *map(_dtype_of, ts))
    attrs = {
        "running_mean": _buffer(running_mean) if training else _arr(running_mean),
        "running_var": _buffer(running_var) if training else _arr(running_var),
        "training": bool(training),
        "momentum": momentum,
        "eps": eps,
    }
    operands = (input, 1.0 if weight is None else weight, 0.0 if bias is None else bias)
    return apply(OPS["native_batch_norm"], operands, attrs)[0]


def _arr(t):
    return None if t is None else t._a
