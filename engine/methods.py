"""Tensor's operators and methods, attached from the registry so there is one definition of
each op: `x.exp()` is `engine.exp(x)`, `x * y` is the `mul` op; and `Tensor.backward`, the
autograd loop's. These are the reference ones: engine.fast attaches generated operators and
backward over them."""

from __future__ import annotations

from .autograd.backprop import tensor_backward
from .dispatch import EMPTY, apply
from .registry import FUNCTIONS, OPS
from .tensor import Tensor


def _rsub(self, other):
    if isinstance(other, Tensor):
        return apply(OPS["sub"], (other, self), EMPTY)
    return apply(OPS["rsub"], (self,), {"other": other})


def _rtruediv(self, other):
    # torch computes `n / x` as reciprocal(x) * n: ReciprocalBackward0 → MulBackward0.
    return apply(OPS["mul"], (FUNCTIONS["reciprocal"].fn(self), other), EMPTY)


def _rpow(self, base):
    return FUNCTIONS["pow"].fn(base, self)


def _compare(name):
    fn = FUNCTIONS[name].fn
    return lambda self, other: fn(self, other)


def _operator(name):
    op = OPS[name]
    return lambda self, other: apply(op, (self, other), EMPTY)


def install() -> None:
    t = Tensor
    t.backward = tensor_backward
    t.__add__ = t.__radd__ = _operator("add")
    t.__sub__ = _operator("sub")
    t.__rsub__ = _rsub
    t.__mul__ = t.__rmul__ = _operator("mul")
    t.__truediv__ = _operator("div")
    t.__rtruediv__ = _rtruediv
    t.__pow__ = FUNCTIONS["pow"].fn
    t.__rpow__ = _rpow
    t.__neg__ = lambda self: apply(OPS["neg"], (self,), EMPTY)
    t.__pos__ = lambda self: self
    t.__abs__ = lambda self: FUNCTIONS["abs"].fn(self)
    for dunder, name in (
        ("__matmul__", "matmul"),
        ("__getitem__", "getitem"),
        ("__eq__", "eq"),
        ("__ne__", "ne"),
        ("__lt__", "lt"),
        ("__le__", "le"),
        ("__gt__", "gt"),
        ("__ge__", "ge"),
    ):
        if name in FUNCTIONS:
            setattr(t, dunder, FUNCTIONS[name].fn)
    if "matmul" in FUNCTIONS:
        mm = FUNCTIONS["matmul"].fn
        t.__rmatmul__ = lambda self, other: mm(other, self)
    for f in FUNCTIONS.values():
        if f.method and not hasattr(t, f.name):
            setattr(t, f.name, f.fn)
    t.T = property(lambda self: FUNCTIONS["permute"].fn(self, *range(self.ndim - 1, -1, -1)))
    t.mT = property(lambda self: FUNCTIONS["transpose"].fn(self, -2, -1))
    t.float = lambda self: FUNCTIONS["to"].fn(self, "float32")
    t.double = lambda self: FUNCTIONS["to"].fn(self, "float64")
    t.long = lambda self: FUNCTIONS["to"].fn(self, "int64")
    t.bool = lambda self: FUNCTIONS["to"].fn(self, "bool")
