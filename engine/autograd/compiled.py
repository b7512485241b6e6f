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
from ..registry import _arr
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
        # (backprop.own, inlined)
        if g.base is not None or not g.flags.writeable or not g.flags.c_contiguous:
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
            give(buffers, heap, stack, e, gi)


def give(buffers, heap, stack, edge, g):
    """Hand gradient g to the producer at `edge`: straight onto the stack when this was its
    only recorded consumer (so it is complete), else into its buffer, which the heap
    reaches once every newer node has run. (A node with several outputs counts one use
    from the start, so it always takes the buffer.)"""
    if edge[0].uses == 1:
        stack.append((edge[0], g))
    else:
        send(buffers, heap, edge, g)


def _fit_give(gi, node, i, buffers, heap, stack):
    """`give` for a VJP result that is not yet the shape and dtype of input i."""
    gi = _fit(gi, node.shapes[i], node.dtypes[i], False)
    if gi is not None:
        give(buffers, heap, stack, node.edges[i], gi)


_TEMPLATE = """\
def back(node, g, buffers, heap, stack, keep):
    if node.retained:
        _retain(node, g)
{check}    {edges} = node.edges
{steps}{release}"""

_CHECK = """\
    if node.freed:
        raise GradError(FREED_MESSAGE)
"""

_RELEASE = """\
    if not keep and (node.saved or node.ans is not None):
        node.freed = True
        node.saved = None
        node.ans = None
"""

_STEP = """\
    if e{i} is not None:
{reads}        gi = vjp{i}({args})
{distinct}\
        if type(gi) is ndarray and gi.shape == node.shapes[{i}] and gi.dtype is node.dtypes[{i}]:
            if e{i}[0].uses == 1:
                stack.append((e{i}[0], gi))
            else:
                send(buffers, heap, e{i}, gi)
        else:
            _fit_give(gi, node, {i}, buffers, heap, stack)
"""

# backprop.distinct, inlined: a gradient this node already handed out goes again as a view.
_REPEAT = """\
        if ({same}) and type(gi) is ndarray:
            gi = gi.view()
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
        "_fit_give": _fit_give,
        "_arr": _arr,
    }
    steps, handed = [], []  # handed: inputs whose gradient a later step compares with
    last = max(i for i, fn in enumerate(op.vjps) if fn is not None)
    reads_saved = False  # what the VJPs read: a node saving nothing is never freed
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
                reads.append(f"if type(s{j}) is Tensor:")
                reads.append(f"    s{j} = s{j}._a")
                reads.append(f"elif type(s{j}) is not ndarray:")
                reads.append(f"    s{j} = _arr(s{j})")
                args.append(f"s{j}")
                reads_saved = True
            elif kind == "attr":  # (a node's attrs hold every attribute: dispatch.complete)
                args.append(f"node.attrs[{key!r}]")
            elif kind == "shape":
                args.append(f"node.shapes[{key}]")
            elif kind == "ans":
                args.append("node.ans")
                reads_saved = True
            else:  # pragma: no cover - variadic plans take the general path
                raise ValueError(f"op {op.name!r}: cannot compile a {kind!r} argument")
        distinct = _REPEAT.format(same=" or ".join(f"gi is h{j}" for j in handed)) if handed else ""
        if i < last:
            distinct += f"        h{i} = gi\n"
            handed.append(i)
        steps.append(
            _STEP.format(
                i=i,
                reads="".join(f"        {r}\n" for r in reads),
                args=", ".join(args),
                distinct=distinct,
            )
        )
    src = _TEMPLATE.format(
        check=(_CHECK if reads_saved else "") + "".join(f"    h{j} = None\n" for j in handed),
        edges=", ".join(f"e{i}" for i in range(len(op.inputs))) + ",",
        steps="".join(steps),
        release=_RELEASE if reads_saved else "",
    )
    exec(compile(src, f"<backward of {op.name}>", "exec"), scope)  # noqa: S102 - our template
    return scope["back"]
