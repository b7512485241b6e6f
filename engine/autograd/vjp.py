"""One node's gradients, by the book: call each input's VJP as its registry record declares
it (`Op.vjps`, arguments found through `Op.plans`), then fit the result to the input.

This is the reference semantics of a backward step; the backward loop (backprop.py) calls
`node_vjps` once per node. engine.fast installs generated steps that compute the same
gradients with fewer Python calls, and is tested equal to this."""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor, array_of
from .sum_to import sum_to


def node_vjps(node, buf, create):
    """The gradients of node's inputs (None where none flows) given `buf`, the gradient of
    its output (a list of them for a node with several outputs). With `create`, they are
    Tensors computed by recorded ops, so they can be differentiated again."""
    if node.freed:
        node.check_alive()
    op = node.op
    # On arrays an op's record may name a faster in-place kernel equal to the formula
    # (fast_vjp); a graph that will be differentiated again runs the formulas on Tensors.
    vjps = op.vjps if create else op.array_vjps
    if op.n_outputs != 1:
        if node.n_out == 1:
            # A split into one piece: the loop keeps a one-output node's gradient bare
            # (backprop.send), but the op's VJPs take the tuple of its outputs' gradients.
            buf = (buf,)
        # Unused outputs get zeros shaped like the saved outputs; a VJP that does not name
        # `ans` (nothing saved, so a second backward works as torch's) gets None for them.
        buf = tuple(
            g if g is not None or node.ans is None else zeros_like(a, create)
            for g, a in zip(buf, node.ans or buf, strict=True)
        )
    if op.variadic:  # one VJP returns the gradients of all the operands
        grads = vjps[0](*vjp_args(op.plans[0], node, buf, create))
        grads = [
            None if e is None else fit(gi, node.shapes[i], node.dtypes[i], create)
            for i, (e, gi) in enumerate(zip(node.edges, grads, strict=True))
        ]
    else:
        grads = []
        for i, e in enumerate(node.edges):
            if e is None:
                grads.append(None)
            else:
                gi = vjps[i](*vjp_args(op.plans[i], node, buf, create))
                grads.append(fit(gi, node.shapes[i], node.dtypes[i], create))
    return grads if create else distinct(grads)


def vjp_args(plan, node, g, create):
    """The arguments of one VJP, in the order its parameters name them (registry._plan)."""
    args = []
    for kind, key in plan:
        if kind == "g":
            args.append(g)
        elif kind == "in":
            s = node.saved[key]
            args.append(s if create else array_of(s))
        elif kind == "attr":
            a = node.attrs
            args.append(a[key] if key in a else node.op.attrs[key])
        elif kind == "shape":
            args.append(node.shapes[key])
        elif kind == "ans":
            args.append(ans(node, create))
        elif kind == "all":
            args.append(tuple(node.saved) if create else tuple(map(array_of, node.saved)))
        elif kind == "shapes":
            args.append(node.shapes)
    return args


def ans(node, create):
    """The node's saved output(s): arrays, or with `create` Tensors on the node itself."""
    if not create:
        return node.ans
    if node.op.n_outputs == 1:
        return Tensor(node.ans, True, node, 0)
    return tuple(Tensor(a, True, node, i) for i, a in enumerate(node.ans))


def fit(gi, shape, dtype, create):
    """A VJP's result as the gradient of an input of this shape and dtype: broadcast axes
    summed away (`sum_to`), numbers made arrays, the dtype the input's."""
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


def distinct(grads):
    """The gradients a node hands out, none twice: a VJP may pass its incoming gradient
    through unchanged (add's `g`), and two leaves must not get one array as their .grad.
    A repeat becomes a view (no copy), which a leaf copies (`own`)."""
    for i in range(1, len(grads)):
        gi = grads[i]
        if type(gi) is np.ndarray and any(gi is gj for gj in grads[:i]):
            grads[i] = gi.view()
    return grads


def own(g, leaf):
    """Gradient array g as leaf's new .grad. The .grad is the user's to modify, so g itself
    only when nothing else can reach it: not a view (a broadcast, a reshape, or a second
    hand-out of one gradient, see `distinct`), not read-only (a shared constant); and laid
    out as the leaf is, so optimizers update over matching layouts. Else a copy."""
    if g.base is not None or not g.flags.writeable or not g.flags.c_contiguous:
        return np.array(g, order="C" if leaf.flags.c_contiguous else "K")
    return g


def zeros_like(a, create):
    z = np.zeros_like(a)
    return Tensor(z) if create else z
