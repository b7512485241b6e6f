"""Reverse-mode evaluation of the recorded graph: `backward`, `grad` and the loop (`run`).

Nodes run newest first (a heap on creation order), so a chain of 100,000 ops needs no
recursion and no walk to count dependencies. Each node's gradients come from its op's VJPs
as the registry declares them (vjp.py). Gradients flow as numpy arrays; with
`create_graph=True` they flow as Tensors through the same VJPs with recording on, which
makes the backward pass differentiable. Gradient arrays are never written in place: one
gradient may reach several nodes, so accumulation always allocates, and a leaf's .grad
never shares memory with another gradient (`own`, `distinct`).

This is the reference path. engine.fast, installed when the engine starts unless
ENGINE_FAST=0, fills the slots of `FAST` with generated steps for the ordinary case
(numpy gradients into leaves' .grad); the results are the same, bit for bit."""

from __future__ import annotations

from heapq import heappop, heappush

import numpy as np

from ..deadline import check
from ..errors import GradError
from ..grad_mode import _set, is_grad_enabled
from ..graph import AccumulateGrad
from ..tensor import Tensor
from .vjp import node_vjps, own


class FastSlots:
    """What engine.fast installs over the reference loop; None runs the reference."""

    # loop(stack, buffers, heap, keep): the ordinary backward (numpy gradients into
    # leaves' .grad, nothing captured), from gradients already sent into the heap.
    loop = None
    # numpy_vjps(node, g): node_vjps(node, g, create=False), generated per op.
    numpy_vjps = None


FAST = FastSlots()


def _initial_grad(t: Tensor, g, create: bool):
    if g is None:
        if t._a.size != 1:
            raise GradError(
                "grad can be implicitly created only for scalar outputs: the output has shape "
                f"{tuple(t.shape)}; pass gradient= (a tensor of that shape, the vector v of "
                "the vector-Jacobian product) to backward(), or reduce the output first, e.g. "
                "out.sum().backward()"
            )
        g = ones_for(t._a)
        return Tensor(g) if create else g
    arr = g._a if isinstance(g, Tensor) else np.asarray(g, dtype=t._a.dtype)
    if arr.shape != t._a.shape:
        raise GradError(
            f"Mismatch in shape: grad_output[0] has a shape of {tuple(arr.shape)} and output[0] "
            f"has a shape of {tuple(t._a.shape)}."
        )
    if create:
        return g if isinstance(g, Tensor) else Tensor(arr.astype(t._a.dtype, copy=True))
    return arr.astype(t._a.dtype, copy=True)


ONES = {}  # (shape, dtype) -> ones; dtype -> 0-d ones


def ones_for(a):
    """A shared read-only ones array for the implicit gradient of a scalar output."""
    key = (a.shape, a.dtype) if a.ndim else a.dtype
    one = ONES.get(key)
    if one is None:
        one = np.ones(a.shape, a.dtype)
        one.flags.writeable = False
        ONES[key] = one
    return one


def _roots(tensors, grads, create):
    roots = []
    for i, (t, g) in enumerate(zip(tensors, grads, strict=True)):
        if not t._rg:
            raise GradError(
                f"element {i} of tensors does not require grad and does not have a grad_fn"
            )
        roots.append(
            (
                (t.grad_fn, t._nr) if t.grad_fn is not None else (t.accumulator(), 0),
                _initial_grad(t, g, create),
            )
        )
    return roots


def tensor_backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
    """Tensor.backward (attached by engine.methods): the gradient of self into leaves'
    .grad."""
    backward([self], [gradient], retain_graph, create_graph, inputs=inputs)


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """torch.autograd.backward: accumulate d(sum of tensors·grads)/d(leaf) into leaf.grad."""
    tensors = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    if grad_tensors is None or isinstance(grad_tensors, Tensor):
        grad_tensors = [grad_tensors] * len(tensors)
    keep = create_graph if retain_graph is None else retain_graph
    only = None
    if inputs is not None:
        inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
        if not inputs:
            raise GradError("`inputs` argument to `backward()` cannot be empty.")
        only = set()
        for t in inputs:  # as torch: a non-leaf input gets its .grad through retain_grad()
            if t.grad_fn is None and t._rg:
                only.add(id(t.accumulator()))
            else:
                t.retain_grad()
    run(_roots(tensors, grad_tensors, create_graph), keep, create_graph, accumulate=True, only=only)


def grad(
    outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False
):
    """torch.autograd.grad: the gradients of outputs w.r.t. inputs, leaving .grad alone."""
    single = isinstance(outputs, Tensor)
    outputs = [outputs] if single else list(outputs)
    inputs_t = isinstance(inputs, Tensor)
    inputs = [inputs] if inputs_t else list(inputs)
    if grad_outputs is None or isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs] * len(outputs)
    keep = create_graph if retain_graph is None else retain_graph
    for t in inputs:
        if not t._rg:
            raise GradError("One of the differentiated Tensors does not require grad")
    targets = {}
    for i, t in enumerate(inputs):
        key = (t.grad_fn, t._nr) if t.grad_fn is not None else (t.accumulator(), 0)
        targets.setdefault(key, []).append(i)
    captured = run(
        _roots(outputs, grad_outputs, create_graph),
        keep,
        create_graph,
        accumulate=False,
        targets=targets,
    )
    result = []
    for i in range(len(inputs)):
        g = captured.get(i)
        if g is None:
            if not allow_unused:
                raise GradError(
                    f"The differentiated Tensor at index {i} appears to not have been used in "
                    "the graph. Set allow_unused=True if this is the desired behavior."
                )
            result.append(None)
        else:
            result.append(g if isinstance(g, Tensor) else Tensor(g))
    return tuple(result)


def _add(a, b):
    return b if a is None else a + b


def run(roots, keep, create, accumulate=True, targets=None, only=None):
    """Propagate root gradients to every reachable node. Returns captured target grads.

    Nodes are visited newest first (a heap on creation order): every consumer of a node was
    created after it, so by the time a node is popped all gradient into it has arrived. No
    walk to count dependencies first, no recursion."""
    buffers = {}
    heap = []
    for (node, nr), g in roots:
        send(buffers, heap, node, nr, g)
    captured = {}
    prev_mode = is_grad_enabled()
    _set(create)
    try:
        # A root that is some other root's single consumer's input would be run from the
        # stack before its own gradient was added: such runs take the general loop.
        simple = not create and not targets and only is None and accumulate
        fast = FAST.loop
        if fast and simple and (len(roots) == 1 or all(n.uses != 1 for (n, _), _ in roots)):
            fast([], buffers, heap, keep)
            return captured
        numpy_vjps = None if create else FAST.numpy_vjps
        while heap:
            check()  # a time limit set by the caller stops the pass between nodes
            node = heappop(heap)[1]
            buf = buffers.pop(node)
            if targets:
                for nr in range(node.n_out):
                    hit = targets.get((node, nr))
                    if hit:
                        g = buf[nr] if node.n_out != 1 else buf
                        for i in hit:
                            captured[i] = g
            if type(node) is AccumulateGrad:
                v = node.variable
                if accumulate and (only is None or id(node) in only) and v is not None:
                    accumulate_grad(v, buf, create)
                continue
            if node.retained:
                retain(node, buf)
            grads = numpy_vjps(node, buf) if numpy_vjps else node_vjps(node, buf, create)
            if not keep and (node.saved or node.ans is not None):
                node.release()
            for e, nr, gi in zip(node.edges, node.nrs, grads, strict=True):
                if e is not None and gi is not None:
                    send(buffers, heap, e, nr, gi)
    finally:
        _set(prev_mode)
    return captured


def send(buffers, heap, node, nr, g):
    """Add gradient g for output nr of node; a node enters the heap with its first
    gradient."""
    if node.n_out == 1:
        prev = buffers.get(node)
        if prev is None:
            buffers[node] = g
            heappush(heap, (node.key, node))
        else:
            buffers[node] = prev + g
        return
    buf = buffers.get(node)
    if buf is None:
        buf = buffers[node] = [None] * node.n_out
        heappush(heap, (node.key, node))
    buf[nr] = _add(buf[nr], g)


def retain(node, buf):
    """Give the tensors that asked for retain_grad() their gradient."""
    for nr, refs in node.retained.items():
        g = buf if node.n_out == 1 else buf[nr]
        if g is None:
            continue
        for ref in refs:
            t = ref()
            if t is not None:
                t.grad = _accumulated(t.grad, g)


def _accumulated(old, g):
    if isinstance(g, Tensor):
        return g if old is None else old + g
    if old is None:
        return Tensor(np.array(g, order="C"))  # torch clones it: backward goes on with g
    return Tensor(old._a + g)


def accumulate_grad(v: Tensor, g, create: bool):
    """Add gradient g into leaf v's .grad."""
    if not create and g.dtype != v._a.dtype:
        g = g.astype(v._a.dtype)
    if v.grad is None:
        v.grad = g if isinstance(g, Tensor) else Tensor(own(g, v._a))
    elif create or isinstance(v.grad._a, Tensor):
        v.grad = v.grad + (g if isinstance(g, Tensor) else Tensor(g))
    else:
        v.grad._a = v.grad._a + (g._a if isinstance(g, Tensor) else g)
