"""The ordinary backward (numpy gradients into leaves' .grad, no create_graph), generated
per node class: the fast path over autograd/backprop.py's loop and autograd/vjp.py's steps.

`Node._back(g, buffers, heap, stack, keep, depth)` (attached by `engine.fast.install`) runs
one node: it calls the VJPs of the
inputs that need a gradient, fits each result to its input (`sum_to`, dtype) and hands it
to the producer. For an op with one output it is generated from the op's registry record
(`Op.plans`: which VJP reads what), so there is one call per node instead of an interpreter
of the record. The VJPs themselves are the registry's: nothing here knows any op by name.
Ops with several outputs or a variadic operand list take the general path (`_general`).

A producer this node was the only recorded consumer of is complete now: the step calls it
directly (nested at most MAX_DEPTH deep; deeper, it goes on `stack` for the loop). Any other
producer collects its gradients in `buffers` and waits on the heap, which the loop empties
newest first once the stack is (every consumer of a node was created after it)."""

from __future__ import annotations

from heapq import heappop, heappush

import numpy as np

from ..autograd.backprop import ONES, accumulate_grad, backward, ones_for, retain, send
from ..autograd.vjp import fit
from ..deadline import check
from ..errors import GradError
from ..graph import FREED_MESSAGE, AccumulateGrad
from ..tensor import Tensor, array_of
from .calls import numpy_vjps
from .source import define

_BACKS: dict = {}  # op -> generated step, shared by the op's node classes
MAX_DEPTH = 32  # nested direct calls of single-use producers (then the stack takes over)
_new = object.__new__


def tensor_backward(t, gradient=None, retain_graph=None, create_graph=False, inputs=None):
    """Tensor.backward: `scalar_backward` for the common case, else the general one."""
    if gradient is None and not create_graph and inputs is None:
        scalar_backward(t, retain_graph)
    else:
        backward([t], [gradient], retain_graph, create_graph, inputs=inputs)


def scalar_backward(t: Tensor, retain_graph=None) -> None:
    """`t.backward()` with no arguments: the common case, straight to the loop."""
    node = t.grad_fn
    a = t._a
    if node is None or a.size != 1:
        backward([t], None, retain_graph)  # a leaf, or the errors of the general path
        return
    g = ONES.get(a.dtype) if not a.ndim else None
    if g is None:
        g = ones_for(a)
    # No grad mode to set: this backward records nothing (its gradients are arrays).
    keep = bool(retain_graph)
    buffers, heap, stack = {}, [], []
    if node.n_out == 1:
        node._back(g, buffers, heap, stack, keep, 0)
    else:
        send(buffers, heap, node, t._nr, g)
    if stack or heap:
        loop(stack, buffers, heap, keep)


def loop(stack, buffers, heap, keep):
    """Run every node the stack and the heap lead to. The time limit is checked here, every
    node the loop runs (a step's direct calls nest at most MAX_DEPTH deep between two)."""
    while True:
        while stack:
            check()
            node, g = stack.pop()
            node._back(g, buffers, heap, stack, keep, 0)
        if not heap:
            return
        check()
        node = heappop(heap)[1]
        node._back(buffers.pop(node), buffers, heap, stack, keep, 0)


def forget() -> None:
    """Drop the generated steps (engine.fast.uninstall removes them from the classes)."""
    _BACKS.clear()


def first_back(node, g, buffers, heap, stack, keep, depth):
    """`Node._back` until a node class has its own: generate it (`install`), then run it."""
    return install(type(node))(node, g, buffers, heap, stack, keep, depth)


def install(cls):
    """Generate the backward step of node class `cls` and attach it as `cls._back`."""
    if cls is AccumulateGrad:
        fn = leaf
    else:
        op = cls.op
        fn = _BACKS.get(op)
        if fn is None:
            simple = op.n_outputs == 1 and not op.variadic and op.differentiable
            fn = _BACKS[op] = _generate(op) if simple else _general
    cls._back = fn
    return fn


def leaf(node, g, buffers, heap, stack, keep, depth):
    """AccumulateGrad's step: g into the leaf's .grad."""
    if not keep:
        node.uses = 0  # the graph's edges into it are spent (see AccumulateGrad)
    v = node._ref()
    if v is None:
        return  # the leaf is gone: nobody can read its gradient
    a = v._a
    if g.dtype is not a.dtype and g.dtype != a.dtype:
        g = g.astype(a.dtype)
    if v.grad is None:
        # (autograd.vjp.own, inlined)
        if g.base is not None or not g.flags.carray:  # (carray: writeable, C-contiguous)
            g = np.array(g, order="C" if a.flags.c_contiguous else "K")
        t = _new(Tensor)  # (Tensor(g), field by field: the fast constructor)
        t._a = g
        t._rg = False
        t.grad = None
        t.grad_fn = None
        t._nr = 0
        t._acc = None
        t._retain = False
        v.grad = t
    else:
        accumulate_grad(v, g, False)


def _general(node, g, buffers, heap, stack, keep, depth):
    if node.retained:
        retain(node, g)
    grads = numpy_vjps(node, g)  # (distinct)
    if not keep and (node.saved or node.ans is not None):
        node.release()
    for e, nr, gi in zip(node.edges, node.nrs, grads, strict=True):
        if e is not None and gi is not None:
            give(buffers, heap, stack, e, nr, gi)


def give(buffers, heap, stack, node, nr, g):
    """Hand gradient g for output nr to `node`: onto the stack when this was its only
    recorded consumer (so it is complete), else into its buffer, which the heap reaches
    once every newer node has run. (A node with several outputs counts one use from the
    start, so it always takes the buffer.)"""
    if node.uses == 1:
        stack.append((node, g))
    else:
        send(buffers, heap, node, nr, g)


def _fit_give(gi, node, i, buffers, heap, stack):
    """`give` for a VJP result that is not yet the shape and dtype of input i."""
    gi = fit(gi, node.shapes[i], node.dtypes[i], False)
    if gi is not None:
        give(buffers, heap, stack, node.edges[i], node.nrs[i], gi)


_TEMPLATE = """\
def back(node, g, buffers, heap, stack, keep, depth):
    if node.retained:
        retain(node, g)
{check}    {edges} = node.edges
{steps}{release}{calls}"""

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
{reads}        gi = {call}
{distinct}\
        if (
            type(gi) is ndarray
            and (node.same_shape or gi.shape == node.shapes[{i}])
            and gi.dtype is node.dtypes[{i}]
        ):
            if e{i}.uses == 1:
{single}\
            else:
                send(buffers, heap, e{i}, node.nrs[{i}], gi)
        else:
            _fit_give(gi, node, {i}, buffers, heap, stack)
"""

# A producer this node was the only consumer of is complete: it runs now, called directly,
# up to a depth (deeper, from the stack). A node that saved values calls it once it has
# released them (`_LATER`), so they are not held while the producers run.
_NOW = """\
                if depth < {max_depth}:
                    e{i}._back(gi, buffers, heap, stack, keep, depth + 1)
                else:
                    stack.append((e{i}, gi))
"""
_LATER = """\
                n{i} = e{i}
                g{i} = gi
"""
_CALL = """\
    if n{i} is not None:
        if depth < {max_depth}:
            n{i}._back(g{i}, buffers, heap, stack, keep, depth + 1)
        else:
            stack.append((n{i}, g{i}))
"""

# autograd.vjp.distinct, inlined: a gradient this node already handed out goes again as a view.
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
        "retain": retain,
        "_fit_give": _fit_give,
        "array_of": array_of,
    }
    steps, handed = [], []  # handed: inputs whose gradient a later step compares with
    last = max(i for i, fn in enumerate(op.vjps) if fn is not None)
    # What the VJPs read: a node saving nothing is never freed, and hands gradients on at
    # once; one that saves releases its values first.
    reads_saved = any(
        kind in ("in", "ans")
        for fn, plan in zip(op.vjps, op.plans, strict=True)
        if fn is not None
        for kind, _ in plan
    )
    for i, (fn, plan) in enumerate(zip(op.array_vjps, op.plans, strict=True)):  # fast_vjp
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
                reads.append(f"    s{j} = array_of(s{j})")
                args.append(f"s{j}")
            elif kind == "attr":  # (a node's attrs hold every attribute: dispatch.complete)
                args.append(f"node.attrs[{key!r}]")
            elif kind == "shape":
                args.append(f"node.shapes[{key}]")
            elif kind == "ans":
                args.append("node.ans")
            else:  # pragma: no cover - variadic plans take the general path
                raise ValueError(f"op {op.name!r}: cannot compile a {kind!r} argument")
        call = f"vjp{i}({', '.join(args)})"
        distinct = _REPEAT.format(same=" or ".join(f"gi is h{j}" for j in handed)) if handed else ""
        if i < last:
            distinct += f"        h{i} = gi\n"
            handed.append(i)
        steps.append(
            _STEP.format(
                i=i,
                reads="".join(f"        {r}\n" for r in reads),
                call=call,
                distinct=distinct,
                single=(_LATER if reads_saved else _NOW).format(i=i, max_depth=MAX_DEPTH),
            )
        )
    later = [i for i, fn in enumerate(op.vjps) if fn is not None] if reads_saved else []
    src = _TEMPLATE.format(
        check=(_CHECK if reads_saved else "")
        + "".join(f"    h{j} = None\n" for j in handed)
        + "".join(f"    n{i} = None\n" for i in later),
        edges=", ".join(f"e{i}" for i in range(len(op.inputs))) + ",",
        steps="".join(steps),
        release=_RELEASE if reads_saved else "",
        calls="".join(_CALL.format(i=i, max_depth=MAX_DEPTH) for i in later),
    )
    return define(src, f"<engine.fast backward of {op.name}>", scope, "back")
