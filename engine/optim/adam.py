"""Adam and AdamW with torch 2.13's exact rule (torch.optim.Adam, single-tensor path):
bias-corrected moments, L2 weight decay added to the gradient (Adam) or decoupled
(AdamW: the parameter is first scaled by 1 - lr·weight_decay), AMSGrad keeping the running
max of the raw second moment in `max_exp_avg_sq`, maximize. State names are torch's."""

from __future__ import annotations

import numpy as np

from ..errors import ArgumentError
from ..tensor import Tensor
from .optimizer import Optimizer, writable


def _lerp(start, end, weight):
    # torch's lerp: the formula depends on |weight| < 0.5, for accuracy at both ends
    if abs(weight) < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (1 - weight)


class Adam(Optimizer):
    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0,
        amsgrad=False,
        *,
        foreach=None,
        maximize=False,
        capturable=False,
        differentiable=False,
        fused=None,
        decoupled_weight_decay=False,
    ):
        if capturable or differentiable or fused:
            raise ArgumentError(
                f"{type(self).__name__}: capturable, differentiable and fused are not supported"
            )
        if not all(isinstance(b, float) for b in betas):
            raise ArgumentError("betas must be either both floats or both Tensors")
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "differentiable": differentiable,
            "fused": fused,
            "decoupled_weight_decay": decoupled_weight_decay,
        }
        self._check_group(defaults)
        super().__init__(params, defaults)

    def _check_group(self, group):
        lr, eps, (b1, b2), wd = group["lr"], group["eps"], group["betas"], group["weight_decay"]
        if not lr >= 0.0:
            raise ArgumentError(f"Invalid learning rate: {lr}")
        if not eps >= 0.0:
            raise ArgumentError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= b1 < 1.0:
            raise ArgumentError(f"Invalid beta parameter at index 0: {b1}")
        if not 0.0 <= b2 < 1.0:
            raise ArgumentError(f"Invalid beta parameter at index 1: {b2}")
        if not wd >= 0.0:
            raise ArgumentError(f"Invalid weight_decay value: {wd}")

    def _update(self, group, params):
        lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        amsgrad, decoupled = group["amsgrad"], group["decoupled_weight_decay"]
        for p in params:
            a = writable(p)
            dt = a.dtype.type
            grad = p.grad._a.astype(a.dtype, copy=False)
            if group["maximize"]:
                grad = -grad
            state = self.state[p]
            if not state:
                state["step"] = Tensor(np.zeros((), np.float32))
                state["exp_avg"] = Tensor(np.zeros_like(a))
                state["exp_avg_sq"] = Tensor(np.zeros_like(a))
                if amsgrad:
                    state["max_exp_avg_sq"] = Tensor(np.zeros_like(a))
            step_t = state["step"]
            step_t._a = step_t._a + np.float32(1)
            if wd != 0:
                if decoupled:
                    a *= dt(1 - lr * wd)
                else:
                    grad = grad + dt(wd) * a
            m, v = state["exp_avg"], state["exp_avg_sq"]
            m._a = _lerp(m._a, grad, dt(1 - beta1))
            v._a = v._a * dt(beta2) + dt(1 - beta2) * grad * grad
            step = float(step_t._a)
            bias1 = 1 - beta1**step
            bias2_sqrt = (1 - beta2**step) ** 0.5
            if amsgrad:
                vmax = state["max_exp_avg_sq"]
                vmax._a = np.maximum(vmax._a, v._a)
                v_hat = vmax._a
            else:
                v_hat = v._a
            denom = np.sqrt(v_hat) / dt(bias2_sqrt) + dt(eps)
            a += dt(-lr / bias1) * (m._a / denom)


class AdamW(Adam):
    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=1e-2,
        amsgrad=False,
        *,
        maximize=False,
        foreach=None,
        capturable=False,
        differentiable=False,
        fused=None,
    ):
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            foreach=foreach,
            maximize=maximize,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
            decoupled_weight_decay=True,
        )
