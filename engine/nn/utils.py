"""torch.nn.utils' gradient clipping: clip_grad_norm_ (and clip_grad_value_), as torch 2.13."""

from __future__ import annotations

import numpy as np

from ..errors import GradError
from ..tensor import Tensor


def _vector_norm(a: np.ndarray, p: float) -> np.ndarray:
    """torch.linalg.vector_norm of a flattened array, kept in its dtype."""
    x = np.abs(a.reshape(-1))
    if p == np.inf:
        out = x.max(initial=0)
    elif p == -np.inf:
        out = x.min(initial=np.inf)
    elif p == 0:
        out = np.count_nonzero(x)
    elif p == 1:
        out = x.sum()
    elif p == 2:
        out = np.sqrt(np.dot(x, x))
    else:
        out = np.sum(x**p) ** (1.0 / p)
    return np.asarray(out, dtype=a.dtype)


def _grads(parameters):
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    return params, [p.grad for p in params if p.grad is not None]


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scale the gradients of `parameters` so that their joint norm (the norm of the
    per-tensor norms) is at most max_norm; returns that total norm, before clipping.

    As torch: the scale is max_norm / (total_norm + 1e-6), clamped to 1, so gradients that
    are already small are left unchanged. The gradients get new arrays (never written in
    place: a gradient array may be shared)."""
    params, grads = _grads(parameters)
    norm_type = float(norm_type)
    if not grads:
        return Tensor(np.asarray(0.0, np.float32))
    norms = np.stack([_vector_norm(g._a, norm_type) for g in grads])
    total = _vector_norm(norms, norm_type)
    if error_if_nonfinite and not np.isfinite(total):
        raise GradError(
            f"The total norm of order {norm_type} for gradients from `parameters` is "
            "non-finite, so it cannot be clipped. To disable this error and scale the "
            "gradients by the non-finite norm anyway, set `error_if_nonfinite=False`"
        )
    dt = total.dtype.type
    # torch: max_norm / (total + 1e-6) is `reciprocal(total + 1e-6) * max_norm`, clamped to 1
    coef = np.minimum((dt(1) / (total + dt(1e-6))) * dt(max_norm), dt(1.0))
    for g in grads:
        g._a = g._a * coef.astype(g._a.dtype)
    return Tensor(total)


def clip_grad_value_(parameters, clip_value, foreach=None) -> None:
    """Clamp every gradient element into [-clip_value, clip_value]."""
    _, grads = _grads(parameters)
    c = float(clip_value)
    for g in grads:
        g._a = np.clip(g._a, -c, c).astype(g._a.dtype, copy=False)
