"""Small helpers shared by the layers: empty parameters, torch's _pair, registry lookups."""

from __future__ import annotations

import math

import numpy as np

from ... import dtypes as _dt
from ...registry import FUNCTIONS
from ...tensor import Parameter, Tensor
from .. import init


def parameter(shape, dtype=None) -> Parameter:
    """An uninitialised parameter (float32 unless dtype says otherwise)."""
    dt = _dt.canonical(dtype) or _dt.default_float
    return Parameter(Tensor(np.empty(shape, dt)))


def buffer(fill, shape, dtype=None) -> Tensor:
    dt = _dt.canonical(dtype) or _dt.default_float
    return Tensor(np.full(shape, fill, dt))


def pair(x) -> tuple:
    """torch's _pair: 3 → (3, 3); a sequence stays as given (as a tuple)."""
    if isinstance(x, (list, tuple)):
        return tuple(x)
    return (x, x)


def fn(name: str):
    """The registry's function `name` (looked up when called, so ops may register later)."""
    return FUNCTIONS[name].fn


def reset_weight_and_bias(weight, bias) -> None:
    """torch's default for Linear and Conv: kaiming_uniform_(a=√5) weights, and biases
    uniform in ±1/√fan_in."""
    init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = init._fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        init.uniform_(bias, -bound, bound)


def typename(obj) -> str:
    """The type name torch's messages print (`engine.Tensor`, `int`, `pkg.Class`)."""
    if isinstance(obj, Tensor):
        return f"engine.{type(obj).__name__}"
    t = type(obj)
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def addindent(s: str, spaces: int) -> str:
    """s with every line but the first indented (a child module's repr)."""
    lines = s.split("\n")
    if len(lines) == 1:
        return s
    return lines[0] + "\n" + "\n".join(" " * spaces + line for line in lines[1:])


def check_name(kind: str, name) -> None:
    """Refuse a parameter, buffer or module name as torch does."""
    if not isinstance(name, str):
        raise TypeError(f"{kind} name should be a string. Got {typename(name)}")
    if "." in name:
        raise KeyError(f'{kind} name can\'t contain "."')
    if name == "":
        raise KeyError(f'{kind} name can\'t be empty string ""')
