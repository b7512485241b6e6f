"""Smooth activations built on the special functions: gelu (exact, with erf, or tanh
approximated) and softplus. Forward and backward follow torch's CPU kernels formula for
formula, so float64 results agree to the last few ulps.

(relu, leaky_relu, sigmoid and tanh live with the elementwise ops.)"""

from __future__ import annotations

import math

import numpy as np

from .. import shapes as S
from ..errors import ArgumentError
from ..registry import defop
from . import costs
from . import dual as d
from .special import np_erf

_SQRT1_2 = math.sqrt(0.5)
_ALPHA = 1 / math.sqrt(2 * math.pi)  # torch's kAlpha = M_2_SQRTPI * M_SQRT1_2 * 0.5
_BETA = math.sqrt(2 / math.pi)  # torch's kBeta = M_SQRT2 * M_2_SQRTPI * 0.5
_KAPPA = 0.044715


def _check_approximate(approximate):
    if approximate not in ("none", "tanh"):
        raise ArgumentError(f"gelu(): approximate must be 'none' or 'tanh', got {approximate!r}")


def _gelu_vjp(g, input, approximate):
    x = input
    if approximate == "tanh":
        x_sq = x * x
        t = d.tanh(_BETA * (x + _KAPPA * x_sq * x))
        left = 0.5 * x
        right = 1 + t
        dright = left * (1 - t * t) * _BETA * (1 + 3 * _KAPPA * x_sq)
        return g * (0.5 * right + dright)
    cdf = 0.5 * (1 + d.erf(x * _SQRT1_2))
    pdf = _ALPHA * d.exp(-0.5 * x * x)
    return g * (cdf + x * pdf)


def _float_only(name):
    def rule(input, *_, **__):
        if getattr(input, "kind", "f") != "f":
            raise NotImplementedError(f"\"{name}\" not implemented for '{input}'")
        return input

    return rule


def _gelu_shape(shape, *, approximate="none"):
    _check_approximate(approximate)
    return tuple(shape)


@defop("gelu", vjp=_gelu_vjp, shape=_gelu_shape, dtype=_float_only("gelu"), memory=costs.SPECIAL)
def gelu(input, *, approximate="none"):
    """x·Φ(x), Φ the standard normal CDF; approximate='tanh' uses torch's tanh formula."""
    _check_approximate(approximate)
    if input.dtype.kind != "f":
        raise NotImplementedError(f"\"GeluKernelImpl\" not implemented for '{input.dtype}'")
    x = input
    if approximate == "tanh":
        return 0.5 * x * (1 + np.tanh(_BETA * (x + _KAPPA * (x * x * x))))
    return x * 0.5 * (1 + np_erf(x * _SQRT1_2))


def _softplus_vjp(g, input, beta, threshold):
    bx = input * beta
    linear = d.const(bx) > threshold
    if type(g) is np.ndarray:
        z = np.exp(np.minimum(bx, threshold))  # capped: those entries take the linear branch
        return np.where(linear, g, g * z / (z + 1))
    return d.where(linear, g, g * d.sigmoid(bx))


@defop("softplus", vjp=_softplus_vjp, shape=S.same, dtype=_float_only("softplus"),
       memory=costs.SPECIAL)  # fmt: skip
def softplus(input, *, beta=1.0, threshold=20.0):
    """log(1 + e^(beta·x)) / beta, and x itself where beta·x > threshold (as torch)."""
    if input.dtype.kind != "f":
        raise NotImplementedError(f"\"softplus_cpu\" not implemented for '{input.dtype}'")
    bx = input * beta
    soft = np.log1p(np.exp(np.minimum(bx, threshold))) / beta
    return np.where(bx > threshold, input, soft).astype(input.dtype, copy=False)
