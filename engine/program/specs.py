"""Abstract values of a checked program: `TensorSpec` (a shape with a dtype), `Multi` (a
tuple-valued result's specs) and `spec_of`, for check.py and the rules' inference (infer.py)."""

from __future__ import annotations

import math
from contextvars import ContextVar

import numpy as np

from .. import dtypes as _dt
from ..tensor import Tensor
from .errors import ProgramError

#: Set while `check` runs: whether a rule read an input's values (an index tensor given as an
#: input: `x[idx]`); such a result depends on more than shapes and is never memoized.
values_read: ContextVar[list | None] = ContextVar("values_read", default=None)


class TensorSpec(tuple):
    """An abstract tensor: the shape itself (a tuple, so shape rules take it as one) with
    `.shape`, `.ndim`, `.dtype` and `.requires_grad`."""

    def __new__(cls, shape, dtype, requires_grad=False, value=None):
        self = super().__new__(cls, (int(n) for n in shape))
        self.dtype = _dt.canonical(dtype)
        self.requires_grad = bool(requires_grad)
        self.value = value  # the Tensor, for a program input given as one (indices read it)
        return self

    @property
    def shape(self) -> tuple:
        return tuple(self)

    @property
    def ndim(self) -> int:
        return len(self)

    @property
    def size(self) -> int:
        return math.prod(self)

    def __repr__(self) -> str:
        rg = ", requires_grad" if self.requires_grad else ""
        return f"TensorSpec({tuple(self)}, {self.dtype}{rg})"

    def to_dict(self) -> dict:
        return {
            "shape": list(self),
            "dtype": str(self.dtype),
            "requires_grad": self.requires_grad,
        }


class Multi(tuple):
    """The specs of a tuple-valued result (split, unbind, max with dim...)."""


def spec_of(x) -> TensorSpec:
    """A TensorSpec for an engine Tensor, a numpy array, a number or a TensorSpec."""
    if isinstance(x, TensorSpec):
        return x
    if isinstance(x, Tensor):
        return TensorSpec(x.shape, x.dtype, x.requires_grad, value=x)
    if isinstance(x, np.ndarray):
        return TensorSpec(x.shape, x.dtype)
    if isinstance(x, bool):
        return TensorSpec((), _dt.bool_)
    if isinstance(x, int):
        return TensorSpec((), _dt.int64)
    if isinstance(x, float):
        return TensorSpec((), _dt.default_float)
    raise ProgramError(f"cannot use {type(x).__name__} as a tensor input", kind="input")
