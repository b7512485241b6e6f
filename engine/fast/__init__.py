"""The fast path: code generated per op from its registry record, installed over the
reference path (dispatch.apply, autograd/backprop.py, autograd/vjp.py) when the engine
starts, unless the environment says ENGINE_FAST=0.

- forward.py: the Tensor operators (`x * y`, `x ** 3`) and one-operand ops (`x.sum()`),
  each a function doing what `apply` does with the op's record resolved in advance;
- backward.py: one generated step per node class for `.backward()`, which calls the next
  node directly when it was its only consumer;
- calls.py: the VJP calls of `autograd.grad` and of the nodes backward.py leaves general.

They compute what the reference computes, bit for bit (tests/engine/test_fast_paths.py runs
the per-op suite on both). Generated source is registered with `linecache`, so a traceback
through it shows its lines (`File "<engine.fast backward of mul>"`).

`install()` and `uninstall()` switch between the two in a running process; `reference()` is
a context manager running its block on the reference path."""

from __future__ import annotations

import contextlib
import os

from .. import dispatch, methods
from ..autograd.backprop import FAST
from ..graph import AccumulateGrad, Node
from ..registry import FUNCTIONS, OPS
from ..tensor import Tensor
from . import backward, calls, forward

_installed = [False]


def enabled_by_env() -> bool:
    """Whether the environment asks for the fast path (anything but ENGINE_FAST=0)."""
    return os.environ.get("ENGINE_FAST", "1").strip() != "0"


def is_installed() -> bool:
    return _installed[0]


def install() -> None:
    """Put the generated paths over the reference ones."""
    if _installed[0]:
        return
    dispatch.UNARY.clear()
    dispatch.UNARY.make = forward.unary
    FAST.loop = backward.loop
    FAST.numpy_vjps = calls.numpy_vjps
    Node._back = backward.first_back
    AccumulateGrad._back = backward.leaf
    t = Tensor
    t.__add__ = t.__radd__ = forward.binary(OPS["add"])
    t.__sub__ = forward.binary(OPS["sub"])
    t.__mul__ = t.__rmul__ = forward.binary(OPS["mul"])
    t.__truediv__ = forward.binary(OPS["div"])
    t.__pow__ = forward.unary(OPS["pow"], "exponent", FUNCTIONS["pow"].fn)
    t.backward = backward.tensor_backward
    _installed[0] = True


def uninstall() -> None:
    """Back to the reference path: nothing generated runs any more."""
    dispatch.UNARY.clear()
    dispatch.UNARY.make = None
    FAST.loop = None
    FAST.numpy_vjps = None
    for cls in _node_classes():
        if "_back" in cls.__dict__:
            delattr(cls, "_back")
    backward.forget()
    calls.CALLS.clear()
    methods.install()  # the reference operators and Tensor.backward
    _installed[0] = False


def _node_classes():
    yield Node
    yield AccumulateGrad
    for op in OPS.values():
        yield from op.node_classes.values()


@contextlib.contextmanager
def reference():
    """Run the block on the reference path, then restore the path that was installed."""
    was = _installed[0]
    uninstall()
    try:
        yield
    finally:
        if was:
            install()


@contextlib.contextmanager
def fast():
    """Run the block on the fast path, then restore the path that was installed."""
    was = _installed[0]
    install()
    try:
        yield
    finally:
        if not was:
            uninstall()
