"""The ordinary backward step (numpy gradients, no create_graph), compiled per node class.

`Node._back(g, buffers, heap, keep)` runs one node: it calls the VJPs of the inputs that
need a gradient, fits each result to its input (`sum_to`, dtype) and hands it to the
producer's buffer, pushing the producer on the heap the first time. For an op with one
output it is generated from the op's registry record (`Op.plans`: which VJP reads what), so
the loop in backprop.run does one call per node instead of interpreting the record. The
VJPs themselves are the registry's: nothing here knows any op by name.

Ops with several outputs or a variadic operand list take the general path (`_general`)."""

from __future__ import annotations

from heapq import heappush

import numpy as np

from ..errors import GradError
from ..graph import FREED_MESSAGE, AccumulateGrad
from ..tensor import Tensor
from .backprop import _accumulate, _apply_node, _fit, _retain, send

_BACKS: dict = {}  # op name -> compiled step, shared by the op's node classes


def install(cls):
    """Compile the backward step of node class `cls` and attach it as `cls._back`."""
    if cls is AccumulateGrad:
        fn = _leaf
    else:
        op = cls.op
        fn = _BACKS.get(op.name)
        if fn is None:
            simple = op.n_outputs == 1 and not op.variadic and op.differentiable
            fn = _BACKS[op.name] = _generate(op) if simple else _general
    cls._back = fn
    return fn


def _leaf(node, g, buffers, heap, stack, keep):
    v = node.variable
    a = v._a
    if g.dtype is not a.dtype and g.dtype != a.dtype:
        g = g.astype(a.dtype)
    if v.grad is None:
        # A leaf's .grad is the user's to modify: never a broadcast or shared read-only
        # view; and laid out as the leaf is, so optimizers update over matching layouts.
        flags = g.flags
        if not flags.writeable or not flags.c_contiguous:
            g = np.array(g, order="C" if a.flags.c_contiguous else "K")
        v.grad = Tensor(g)
    else:
        _accumulate(v, g, False)


def _general(node, g, buffers, heap, stack, keep):
    if node.retained:
        _retain(node, g)
    grads = _apply_node(node, g, False)
    if not keep and (node.saved or node.ans is not None):
        node.release()
    for e, gi in zip(node.edges, grads, strict=True):
        if e is not None and gi is not None:
            if e[0].uses == 1 and e[0].n_out == 1:
                stack.append((e[0], gi))
            else:
                send(buffers, heap, e, gi)


_TEMPLATE = """\
def back(node, g, buffers, heap, stack, keep):
    if node.retained:
        _retain(node, g)
    if node.freed:
        raise GradError(FREED_MESSAGE)
    shapes = node.shapes
    dtypes = node.dtypes
    {edges} = node.edges
{steps}    if not keep and (node.saved or node.ans is not None):
        node.freed = True
        node.saved = None
        node.ans = None
"""

_STEP = """\
    if e{i} is not None:
{reads}        gi = vjp{i}({args})
        if (
            type(gi) is not ndarray
            or gi.shape != shapes[{i}]
            or (gi.dtype is not dtypes[{i}] and gi.dtype != dtypes[{i}])
        ):
            gi = _fit(gi, shapes[{i}], dtypes[{i}], False)
        if gi is not None:
            n = e{i}[0]
            if n.uses == 1 and n.n_out == 1:  # its only consumer: complete, no heap
                stack.append((n, gi))
            elif n.n_out == 1:
                p = buffers.get(n)
                if p is None:
                    buffers[n] = gi
                    heappush(heap, (n.key, n))
                else:
                    buffers[n] = p + gi
            else:
                send(buffers, heap, e{i}, gi)
"""


def _generate(op):
    scope = {
        "ndarray": np.ndarray,
        "Tensor": Tensor,
        "GradError": GradError,
        "FREED_MESSAGE": FREED_MESSAGE,
        "heappush": heappush,
        "send": send,
        "_retain": _retain,
        "_fit": _fit,
    }
    scope.update({f"d_{k}": v for k, v in op.attrs.items()})
    steps = []
    for i, (fn, plan) in enumerate(zip(op.vjps, op.plans, strict=True)):
        if fn is None:
            continue
        scope[f"vjp{i}"] = fn
        reads, args = [], []
        for j, (kind, key) in enumerate(plan):
            if kind == "g":
                args.append("g")
            elif kind == "in":
                # A saved operand: a Tensor (its array), or a number or constant array.
                reads.append(f"s{j} = node.saved[{key}]")
                reads.append(f"s{j} = s{j}._a if isinstance(s{j}, Tensor) else s{j}")
                args.append(f"s{j}")
            elif kind == "attr":
                args.append(f"node.attrs.get({key!r}, d_{key})")
            elif kind == "shape":
                args.append(f"shapes[{key}]")
            elif kind == "ans":
                args.append("node.ans")
            else:  # pragma: no cover - variadic plans take the general path
                raise ValueError(f"op {op.name!r}: cannot compile a {kind!r} argument")
        steps.append(
            _STEP.format(i=i, reads="".join(f"        {r}\n" for r in reads), args=", ".join(args))
        )
    edges = ", ".join(f"e{i}" for i in range(len(op.inputs))) + ","
    src = _TEMPLATE.format(edges=edges, steps="".join(steps))
    exec(compile(src, f"<backward of {op.name}>", "exec"), scope)  # noqa: S102 - our template
    return scope["back"]
