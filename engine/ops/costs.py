"""Cost rules shared by op families: the FLOP estimate `program.check` holds to `max_flops`.

An op's record names its rule (`defop(..., cost=...)`, `deffn(..., cost=...)`); a record
without one costs `pointwise`. A rule takes the shapes of the call's tensor operands
positionally (numbers are not operands here) and the result's shapes as `out`, a tuple with
one shape per output; it may name attributes to receive them by keyword (see registry).

These are estimates of the forward's work; `check` triples the total when the backward
pass will run too (it costs about twice the forward)."""

from __future__ import annotations

import math

from .pool_rules import pool_pair


def _elements(shapes) -> int:
    return sum(math.prod(s) for s in shapes)


def pointwise(*shapes, out):
    """The larger of the output's and the operands' element counts: one operation per
    element read or written."""
    return max(_elements(out), _elements(shapes))


def contraction(at: int | None):
    """2·(output elements)·k, k the last dimension of the operand at index `at` (the
    contracted size), or with `at=None` the largest last dimension of any operand (an upper
    bound): matmul, mm, bmm, mv, dot, addmm, linear."""

    def cost(*shapes, out):
        if at is not None and at < len(shapes) and shapes[at]:
            k = shapes[at][-1]
        else:
            k = max((s[-1] for s in shapes if s), default=1)
        return 2 * _elements(out) * max(k, 1)

    cost.__qualname__ = f"contraction({at})"
    return cost


def convolution(*shapes, out):
    """Each output element is a dot product over the weight's C_in/groups × kH × kW entries
    (operand 1 is the weight): 2·(output elements)·k."""
    if len(shapes) > 1 and len(shapes[1]) > 2:
        return 2 * _elements(out) * math.prod(shapes[1][1:])
    return pointwise(*shapes, out=out)


def window(*shapes, out, kernel_size):
    """Pooling: each output element reads a kH·kW window, so (output elements)·kH·kW, and
    no less than `pointwise` (a kernel of 150 on a 300x300 input is 5·10⁸, not 9·10⁴)."""
    n = math.prod(pool_pair("", "kernel_size", kernel_size))  # (the shape rule checked it)
    return max(pointwise(*shapes, out=out), _elements(out[:1]) * n)
