"""Stochastic gradient descent with torch 2.13's exact rule (torch.optim.SGD, single-tensor
path): weight decay added to the gradient, a momentum buffer that starts as a copy of the
first gradient, dampening, Nesterov, maximize."""

from __future__ import annotations

import numpy as np

from ..errors import ArgumentError
from ..tensor import Tensor
from .optimizer import Optimizer, writable


class SGD(Optimizer):
    def __init__(
        self,
        params,
        lr=1e-3,
        momentum=0,
        dampening=0,
        weight_decay=0,
        nesterov=False,
        *,
        maximize=False,
        foreach=None,
        differentiable=False,
        fused=None,
    ):
        if differentiable or fused:
            raise ArgumentError("SGD: differentiable and fused steps are not supported")
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": maximize,
            "foreach": foreach,
            "differentiable": differentiable,
            "fused": fused,
        }
        self._check_group(defaults)
        super().__init__(params, defaults)

    def _check_group(self, group):
        if group["lr"] < 0.0:
            raise ArgumentError(f"Invalid learning rate: {group['lr']}")
        if group["momentum"] < 0.0:
            raise ArgumentError(f"Invalid momentum value: {group['momentum']}")
        if group["weight_decay"] < 0.0:
            raise ArgumentError(f"Invalid weight_decay value: {group['weight_decay']}")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ArgumentError(
                "Nesterov momentum requires a momentum and zero dampening (got momentum="
                f"{group['momentum']}, dampening={group['dampening']}): set momentum > 0 "
                "and dampening=0, or nesterov=False"
            )

    def _update(self, group, params):
        lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
        weight_decay, nesterov = group["weight_decay"], group["nesterov"]
        for p in params:
            a = writable(p)
            dt = a.dtype.type
            grad = p.grad._a.astype(a.dtype, copy=False)
            if group["maximize"]:
                grad = -grad
            if weight_decay != 0:
                grad = grad + dt(weight_decay) * a
            if momentum != 0:
                state = self.state[p]
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = Tensor(np.array(grad, copy=True))
                else:
                    b = buf._a
                    b *= dt(momentum)
                    b += grad if dampening == 0 else dt(1 - dampening) * grad
                grad = grad + dt(momentum) * buf._a if nesterov else buf._a
            a += dt(-lr) * grad  # in place, as torch's param.add_(grad, alpha=-lr)
