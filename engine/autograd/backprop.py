"""Reverse-mode evaluation of the recorded graph: `backward`, `grad` and the general loop.

Nodes run newest first (a heap on creation order), so a chain of 100,000 ops needs no
recursion and no walk to count dependencies. Gradients flow as numpy arrays; with
`create_graph=True` they flow as Tensors through the same VJPs with recording on, which
makes the backward pass differentiable. The ordinary case (numpy gradients into leaves'
.grad) runs compiled steps: compiled.py. Gradient arrays are never written in place: one
gradient may reach several nodes, so accumulation always allocates, and a leaf's .grad
never shares memory with another gradient (`own`, `distinct`)."""

from __future__ import annotations

from heapq import heappop, heappush

import numpy as np

from ..errors import GradError
from ..grad_mode import _set, is_grad_enabled
from ..graph import AccumulateGrad
from ..tensor import Tensor
from .sum_to import sum_to


def _initial_grad(t: Tensor, g, create: bool):
    if g is None:
        if t._a.size != 1:
            raise GradError(
                "grad can be implicitly created only for scalar outputs: the output has shape "
                f"{tuple(t.shape)}; pass gradient= (a tensor of that shape, the vector v of "
                "the vector-Jacobian product) to backward(), or reduce the output first, e.g. "
                "out.sum().backward()"
            )
        g = _ones(t._a)
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


_ONES = {}  # (shape, dtype) -> ones; dtype -> 0-d ones


def _ones(a):
    """A shared read-only ones array for the implicit gradient of a scalar output."""
    key = (a.shape, a.dtype) if a.ndim else a.dtype
    one = _ONES.get(key)
    if one is None:
        one = np.ones(a.shape, a.dtype)
        one.flags.writeable = False
        _ONES[key] = one
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
    walk to count dependencies first, no recursion. The ordinary case (numpy gradients into
    leaves' .grad) is one call per node to its compiled step (`compiled.py`)."""
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
        if simple and (len(roots) == 1 or all(n.uses != 1 for (n, _), _ in roots)):
            from .compiled import loop

            loop([], buffers, heap, keep)
            return captured
        while heap:
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
                    _accumulate(v, buf, create)
                continue
            if node.retained:
                _retain(node, buf)
            op = node.op
            if create or node.n_out != 1 or op.variadic or node.freed:
                grads = _apply_node(node, buf, create)
            else:
                grads = _numpy_vjps(node, op, buf)
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


def _retain(node, buf):
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


def own(g, leaf):
    """Gradient array g as leaf's new .grad. The .grad is the user's to modify, so g itself
    only when nothing else can reach it: not a view (a broadcast, a reshape, or a second
    hand-out of one gradient, see `distinct`), not read-only (a shared constant); and laid
    out as the leaf is, so optimizers update over matching layouts. Else a copy."""
    if g.base is not None or not g.flags.writeable or not g.flags.c_contiguous:
        return np.array(g, order="C" if leaf.flags.c_contiguous else "K")
    return g


def distinct(grads):
    """The gradients a node hands out, none twice: a VJP may pass its incoming gradient
    through unchanged (add's `g`), and two leaves must not get one array as their .grad.
    A repeat becomes a view (no copy), which a leaf copies (`own`)."""
    for i in range(1, len(grads)):
        gi = grads[i]
        if type(gi) is np.ndarray and any(gi is gj for gj in grads[:i]):
            grads[i] = gi.view()
    return grads


def _accumulate(v: Tensor, g, create: bool):
    if not create and g.dtype != v._a.dtype:
        g = g.astype(v._a.dtype)
    if v.grad is None:
        v.grad = g if isinstance(g, Tensor) else Tensor(own(g, v._a))
    elif create or isinstance(v.grad._a, Tensor):
        v.grad = v.grad + (g if isinstance(g, Tensor) else Tensor(g))
    else:
        v.grad._a = v.grad._a + (g._a if isinstance(g, Tensor) else g)


def _apply_node(node, buf, create):
    if node.freed:
        node.check_alive()
    op = node.op
    if node.n_out != 1:
        # Unused outputs get zeros shaped like the saved outputs; a VJP that does not name
        # `ans` (nothing saved, so a second backward works as torch's) gets None for them.
        buf = tuple(
            g if g is not None or node.ans is None else _zeros_like(a, create)
            for g, a in zip(buf, node.ans or buf, strict=True)
        )
    if op.variadic:
        grads = op.vjps[0](*_args(op.plans[0], node, buf, create))
        grads = [
            None if e is None else _fit(gi, node.shapes[i], node.dtypes[i], create)
            for i, (e, gi) in enumerate(zip(node.edges, grads, strict=True))
        ]
        return grads if create else distinct(grads)
    out = []
    if create:
        for i, e in enumerate(node.edges):
            if e is None:
                out.append(None)
            else:
                gi = op.vjps[i](*_args(op.plans[i], node, buf, True))
                out.append(_fit(gi, node.shapes[i], node.dtypes[i], True))
        return out
    calls = op.calls
    shapes = node.shapes
    dtypes = node.dtypes
    for i, e in enumerate(node.edges):
        if e is None:
            out.append(None)
            continue
        gi = calls[i](node, buf)
        if type(gi) is not np.ndarray or gi.shape != shapes[i] or gi.dtype != dtypes[i]:
            gi = _fit(gi, shapes[i], dtypes[i], False)
        out.append(gi)
    return distinct(out)


def _numpy_vjps(node, op, g):
    """The common case, kept lean: single-output node, numpy gradients."""
    calls = op.calls
    out = []
    for i, e in enumerate(node.edges):
        if e is not None:
            gi = calls[i](node, g)
            if (
                type(gi) is not np.ndarray
                or gi.shape != node.shapes[i]
                or (gi.dtype != node.dtypes[i])
            ):
                gi = _fit(gi, node.shapes[i], node.dtypes[i], False)
            out.append(gi)
        else:
            out.append(None)
    return distinct(out)


def _zeros_like(a, create):
    z = np.zeros_like(a)
    return Tensor(z) if create else z


def _fit(gi, shape, dtype, create):
    if gi is None:
        return None
    if create:
        if not isinstance(gi, Tensor):
            gi = Tensor(np.asarray(gi, dtype=dtype))
        if gi._a.shape != shape:
            gi = sum_to(gi, shape)
        return gi
    if type(gi) is not np.ndarray:
        gi = np.asarray(gi, dtype=dtype)
    if gi.shape != shape:
        gi = sum_to(gi, shape)
    if gi.dtype != dtype:
        gi = gi.astype(dtype)
    return gi


def _args(plan, node, g, create):
    args = []
    for kind, key in plan:
        if kind == "g":
            args.append(g)
        elif kind == "in":
            s = node.saved[key]
            args.append(s if create or not isinstance(s, Tensor) else s._a)
        elif kind == "attr":
            a = node.attrs
            args.append(a[key] if key in a else node.op.attrs[key])
        elif kind == "shape":
            args.append(node.shapes[key])
        elif kind == "ans":
            args.append(_ans(node, create))
        elif kind == "all":
            args.append(
                tuple(s if create or not isinstance(s, Tensor) else s._a for s in node.saved)
            )
        elif kind == "shapes":
            args.append(node.shapes)
    return args


def _ans(node, create):
    if not create:
        return node.ans
    if node.n_out == 1:
        return Tensor(node.ans, True, node, 0)
    return tuple(Tensor(a, True, node, i) for i, a in enumerate(node.ans))
