"""Special functions numpy lacks or spells differently: erf (for gelu), log1p, expm1, log2,
log10.

numpy has no erf: `np_erf` (erf.py) evaluates Cody's rational approximations."""

from __future__ import annotations

import math

import numpy as np

from .. import shapes as S
from ..registry import defop
from . import costs
from . import dual as d
from .erf import TWO_OVER_SQRT_PI, np_erf


@defop(
    "erf",
    vjp=lambda g, input: g * TWO_OVER_SQRT_PI * d.exp(-(input * input)),
    shape=S.same,
    memory=costs.SPECIAL,
    to_float=True,
    method=True,
)
def erf(input):
    """The error function, 2/√π ∫₀ˣ e^(−t²) dt."""
    return np_erf(input)


@defop(
    "log1p",
    vjp=lambda g, input: g / (input + 1),
    grad_fn="Log1PBackward0",
    shape=S.same,
    to_float=True,
    method=True,
)
def log1p(input):
    """log(1 + input), accurate for small input."""
    return np.log1p(input)


@defop("expm1", vjp=lambda g, ans: g * (ans + 1), shape=S.same, to_float=True, method=True)
def expm1(input):
    """e ** input − 1, accurate for small input."""
    return np.expm1(input)


@defop(
    "log2",
    vjp=lambda g, input: g / (input * math.log(2)),
    shape=S.same,
    to_float=True,
    method=True,
)
def log2(input):
    """Base-2 logarithm."""
    return np.log2(input)


@defop(
    "log10",
    vjp=lambda g, input: g / (input * math.log(10)),
    shape=S.same,
    to_float=True,
    method=True,
)
def log10(input):
    """Base-10 logarithm."""
    return np.log10(input)
