"""gradcheck: compare the engine's Jacobian with central finite differences, in float64."""

from __future__ import annotations

import numpy as np

from ..errors import GradError
from ..tensor import Tensor
from .backprop import grad


class GradcheckError(GradError):
    """The analytical and numerical Jacobians differ; the message names the worst entry."""


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def numerical_jacobians(fn, inputs, eps):
    """One (out.numel, in.numel) matrix per (output, input) pair, by central differences."""
    # Grad mode stays on, as in torch: fn may itself call autograd.grad (a gradient's
    # gradcheck), which needs the graph.
    outs = [o._a.astype(np.float64) for o in _as_tuple(fn(*inputs))]
    jac = [[np.zeros((o.size, x._a.size)) for x in inputs] for o in outs]
    for j, x in enumerate(inputs):
        flat = x._a.reshape(-1)
        for k in range(flat.size):
            orig = flat[k]
            flat[k] = orig + eps
            plus = [o._a.astype(np.float64).ravel() for o in _as_tuple(fn(*inputs))]
            flat[k] = orig - eps
            minus = [o._a.astype(np.float64).ravel() for o in _as_tuple(fn(*inputs))]
            flat[k] = orig
            for i in range(len(outs)):
                jac[i][j][:, k] = (plus[i] - minus[i]) / (2 * eps)
    return jac


def analytical_jacobians(fn, inputs):
    outs = _as_tuple(fn(*inputs))
    jac = []
    for o in outs:
        rows = [np.zeros((o._a.size, x._a.size)) for x in inputs]
        if o.requires_grad:
            for r in range(o._a.size):
                v = np.zeros(o._a.size, dtype=o._a.dtype)
                v[r] = 1
                gs = grad(
                    o, inputs, Tensor(v.reshape(o.shape)), retain_graph=True, allow_unused=True
                )
                for j, g in enumerate(gs):
                    if g is not None:
                        rows[j][r] = g._a.reshape(-1)
        jac.append(rows)
    return jac


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True) -> bool:
    """True when d fn / d inputs from backward matches finite differences (float64 copies of
    the inputs are used); otherwise raise GradcheckError naming the worst entry."""
    inputs = _as_tuple(inputs)
    xs = []
    for x in inputs:
        if not isinstance(x, Tensor) or not x.requires_grad:
            raise GradError("gradcheck expects input tensors with requires_grad=True")
        xs.append(Tensor(x._a.astype(np.float64), requires_grad=True))
    num = numerical_jacobians(fn, xs, eps)
    ana = analytical_jacobians(fn, xs)
    worst = None
    for i, (nrow, arow) in enumerate(zip(num, ana, strict=True)):
        for j, (n, a) in enumerate(zip(nrow, arow, strict=True)):
            err = np.abs(a - n) - (atol + rtol * np.abs(n))
            if err.size and err.max() > 0:
                k = np.unravel_index(np.argmax(err), err.shape)
                cand = (err[k], i, j, k, a[k], n[k])
                if worst is None or cand[0] > worst[0]:
                    worst = cand
    if worst is None:
        return True
    if not raise_exception:
        return False
    _, i, j, k, a, n = worst
    raise GradcheckError(
        f"Jacobian mismatch for output {i} with respect to input {j}: at (output element "
        f"{k[0]}, input element {k[1]}) the analytical value is {a!r} but finite differences "
        f"give {n!r} (eps={eps}, atol={atol}, rtol={rtol})"
    )
