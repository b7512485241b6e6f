"""One node's numpy gradients with generated calls: `node_vjps(node, g, create=False)` of
autograd/vjp.py without interpreting the VJPs' argument plans on every call.

For each VJP a function `call(node, g)` is generated from its plan (registry._plan) that
reads the VJP's arguments straight from the node (Tensors unwrapped to their arrays)."""

from __future__ import annotations

import numpy as np

from ..autograd.vjp import distinct, fit, node_vjps
from ..tensor import array_of
from .source import define


class Calls(dict):
    """op -> per VJP, its generated `call(node, g)` (None where no gradient flows)."""

    def __missing__(self, op):
        calls = self[op] = tuple(
            None if fn is None else _call(op, i, fn, plan)
            for i, (fn, plan) in enumerate(zip(op.array_vjps, op.plans, strict=True))
        )
        return calls


CALLS = Calls()


def numpy_vjps(node, g):
    """The numpy gradients of node's inputs, as `node_vjps(node, g, False)` gives them."""
    op = node.op
    # An op with several outputs goes by its record, not by node.n_out: a split into one
    # piece has one output, but its VJPs still take a tuple of gradients.
    if op.n_outputs != 1 or op.variadic or node.freed:
        return node_vjps(node, g, False)
    calls = CALLS[op]
    out = []
    for i, e in enumerate(node.edges):
        if e is not None:
            gi = calls[i](node, g)
            if (
                type(gi) is not np.ndarray
                or gi.shape != node.shapes[i]
                or (gi.dtype != node.dtypes[i])
            ):
                gi = fit(gi, node.shapes[i], node.dtypes[i], False)
            out.append(gi)
        else:
            out.append(None)
    return distinct(out)


def _call(op, index, fn, plan):
    lines, args = [], []
    for i, (kind, key) in enumerate(plan):
        if kind == "g":
            args.append("g")
        elif kind == "in":
            lines.append(f"a{i} = node.saved[{key}]; a{i} = getattr(a{i}, '_a', a{i})")
            args.append(f"a{i}")
        elif kind == "attr":
            args.append(f"node.attrs.get({key!r}, d_{key})")
        elif kind == "shape":
            args.append(f"node.shapes[{key}]")
        elif kind == "ans":
            args.append("node.ans")
        elif kind == "all":
            args.append("tuple(array_of(s) for s in node.saved)")
        elif kind == "shapes":
            args.append("node.shapes")
    body = "".join(f"    {line}\n" for line in lines)
    src = f"def call(node, g):\n{body}    return fn({', '.join(args)})\n"
    scope = {"fn": fn, "array_of": array_of}
    scope.update({f"d_{k}": v for k, v in op.attrs.items()})
    return define(src, f"<engine.fast vjp {index} of {op.name}>", scope, "call")
