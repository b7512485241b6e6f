"""Parameters built on the server from an init spec, with `torch.nn.init`'s formulas.

The random draws are numpy's (PCG64 seeded by `seed`), not torch's generator: the same spec
gives the same values every time, and the distribution is torch's, but the numbers differ
from `torch.manual_seed(seed); nn.init.xxx_(t)`.
"""

import math

import numpy as np

from service.schemas_sessions import InitSpec


class InitError(ValueError):
    """The spec cannot be built (torch raises ValueError for the same cases)."""


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """torch.nn.init.calculate_gain."""
    if nonlinearity in ("linear", "conv1d", "conv2d", "conv3d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise InitError(f"Unsupported nonlinearity {nonlinearity}")


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """torch.nn.init._calculate_fan_in_and_fan_out."""
    if len(shape) < 2:
        raise InitError(
            "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions"
        )
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def build(spec: InitSpec) -> np.ndarray:
    """The parameter's values; InitError for a spec torch would refuse."""
    shape = tuple(spec.shape)
    dtype = np.dtype(spec.dtype)
    if spec.init == "zeros":
        return np.zeros(shape, dtype)
    if spec.init == "ones":
        return np.ones(shape, dtype)
    rng = np.random.default_rng(spec.seed)
    if spec.init == "normal":
        return rng.normal(spec.mean, spec.std, shape).astype(dtype)
    if spec.init == "uniform":
        return _uniform(rng, spec.a, spec.b, shape, dtype)
    fan_in, fan_out = fans(shape)
    if math.prod(shape) == 0:  # torch warns and leaves a zero-element tensor as it is
        return np.zeros(shape, dtype)
    if spec.init == "kaiming_uniform":
        fan = fan_in if spec.mode == "fan_in" else fan_out
        gain = calculate_gain(spec.nonlinearity, spec.a)
        bound = math.sqrt(3.0) * gain / math.sqrt(fan)
    else:  # xavier_uniform
        bound = math.sqrt(3.0) * spec.gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return _uniform(rng, -bound, bound, shape, dtype)


def _uniform(rng, low: float, high: float, shape, dtype) -> np.ndarray:
    if low > high:
        raise InitError(
            f"uniform_ expects to return a [from, to) range, but found from={low} > to={high}"
        )
    return rng.uniform(low, high, shape).astype(dtype)
