"""The common forward cases, generated per op from its registry record.

`binary(op)` is a Tensor operator (`x + y`, `3 * x`): a Tensor and a Tensor of the same
floating dtype, or a floating Tensor and a Python number. `unary(op)` runs an op on one
Tensor with its attributes (`x ** 3`, `x.sum()`). Both do what `dispatch.apply` does (call
the numpy forward, record the node) with everything the record says resolved when the code
is made: which operands the node saves for the inputs that need a gradient, the node class,
the attribute names of the forward. Anything else goes to `apply`.

A Python number goes to numpy as a cached 0-d array of the tensor's dtype
(`dtypes.scalar_array`), which the node saves in its place: the same values under numpy 2's
weak-scalar rule, half numpy's cost on small arrays.

Tensors and nodes are made field by field (a class call without `__init__` costs half of
one with): this is the documented fast constructor of `Tensor` and of `Node`, so every slot
of both is set here too (tests/engine/test_constructors.py checks it)."""

from __future__ import annotations

import numpy as np

from .. import dtypes as _dt
from ..dispatch import EMPTY, apply, defaults, explain
from ..grad_mode import _state, off
from ..graph import ZEROS, node_keys
from ..shapes import same
from ..tensor import Parameter, Tensor
from .source import define

_F32, _F64 = _dt.float32, _dt.float64

_SCOPE = {
    "ndarray": np.ndarray,
    "asarray": np.asarray,
    "Tensor": Tensor,
    "Parameter": Parameter,
    "new": object.__new__,
    "apply": apply,
    "explain": explain,
    "state": _state,
    "off": off,
    "keys": node_keys,
    "ZERO1": ZEROS[1],
    "ZERO2": ZEROS[2],
    "EMPTY": EMPTY,
    "F32": _F32,
    "F64": _F64,
    "C32": _dt.SCALARS[_F32],
    "C64": _dt.SCALARS[_F64],
    "scalar": _dt.scalar_array,
}

# The output tensor, all fields but requires_grad and grad_fn.
_TENSOR = """\
    t = new(Tensor)
    t._a = out
    t.grad = None
    t._nr = 0
    t._acc = None
    t._retain = False
"""

_NODE_END = """\
    node.n_out = 1
    node.retained = None
    node.freed = False
    node.key = next(keys)
    node.uses = 0
    t._rg = True
    t.grad_fn = node
    return t
"""

_BINARY = (
    """\
def run(x, y):
    ty = type(y)
    a = x._a
    dt = a.dtype
    if ty is Tensor or ty is Parameter:
        b = y._a
        if b.dtype is not dt or (dt is not F32 and dt is not F64):
            return apply(op, (x, y), EMPTY)
        y_rg = y._rg
        y_shape = b.shape
        y_dt = dt
    elif (ty is float or ty is int) and (dt is F32 or dt is F64):
        b = (C32 if dt is F32 else C64).get(y)
        if b is None:
            b = scalar(y, dt)
        y = b
        y_rg = False
        y_shape = ()
        y_dt = None
    else:
        return apply(op, (x, y), EMPTY)
    try:
        out = forward(a, b)
    except (ValueError, IndexError) as exc:
        raise explain(op, (x, y), EMPTY, exc) from None
    if type(out) is not ndarray:
        out = asarray(out)
"""
    + _TENSOR
    + """\
    x_rg = x._rg
    if not (x_rg or y_rg) or (off[0] and not state.enabled):
        t._rg = False
        t.grad_fn = None
        return t
    node = cls()
    node.attrs = attrs
    if x_rg:
        ex = x.grad_fn
        if ex is None:
            ex = x._acc or x.accumulator()  # (dispatch.leaf_node, inlined)
            ex.uses += 1
            nx = 0
        else:
            ex.uses += 1
            nx = x._nr
        if y_rg:
            ey = y.grad_fn
            if ey is None:
                ey = y._acc or y.accumulator()
                ey.uses += 1
                ny = 0
            else:
                ey.uses += 1
                ny = y._nr
            node.edges = (ex, ey)
            node.nrs = (nx, ny) if nx or ny else ZERO2
            node.saved = {saved_xy}
            node.ans = {ans_xy}
        else:
            node.edges = (ex, None)
            node.nrs = (nx, 0) if nx else ZERO2
            node.saved = {saved_x}
            node.ans = {ans_x}
    else:
        ey = y.grad_fn
        if ey is None:
            ey = y._acc or y.accumulator()
            ey.uses += 1
            ny = 0
        else:
            ey.uses += 1
            ny = y._nr
        node.edges = (None, ey)
        node.nrs = (0, ny) if ny else ZERO2
        node.saved = {saved_y}
        node.ans = {ans_y}
    x_shape = a.shape
    node.shapes = (x_shape, y_shape)
    node.dtypes = (dt, y_dt)
    node.same_shape = y_dt is None or x_shape == y_shape
"""
    + _NODE_END
)

_UNARY = (
    """\
{head}\
    if type(x) is not Tensor:
        return apply(op, (x,), attrs)
    a = x._a
{floats_only}\
    try:
        out = forward(a{keywords})
    except (ValueError, IndexError) as exc:
        raise explain(op, (x,), attrs, exc) from None
    if type(out) is not ndarray:
        out = asarray(out)
"""
    + _TENSOR
    + """\
    if {untracked}:
        t._rg = False
        t.grad_fn = None
        return t
    node = (cls or {cls})()
    node.attrs = attrs
    fn = x.grad_fn
    if fn is None:
        fn = x._acc or x.accumulator()  # (dispatch.leaf_node, inlined)
        fn.uses += 1
        node.edges = (fn,)
        node.nrs = ZERO1
    else:
        fn.uses += 1
        node.edges = (fn,)
        node.nrs = (x._nr,) if x._nr else ZERO1
    node.saved = {saved}
    node.ans = {ans}
    node.shapes = (a.shape,)
    node.dtypes = (a.dtype,)
    node.same_shape = {same_shape}
"""
    + _NODE_END
)


def _saves(op, need0, need1=False):
    """The node's `saved` and `ans` expressions when inputs 0 and/or 1 need a gradient."""
    masks, outs = op.save_masks, op.saves_out
    mask = (masks[0] if need0 else 0) | (masks[1] if need1 else 0)  # -1: every operand
    operands = ("x" if mask & 1 else "None", "y" if mask & 2 else "None")
    saved = "()" if not mask else f"({operands[0]}, {operands[1]})"
    ans = "out" if (need0 and outs[0]) or (need1 and outs[1]) else "None"
    return saved, ans


def _make(src, op, kind, **scope):
    scope = {**_SCOPE, "op": op, "forward": op.forward, **scope}
    run = define(src, f"<engine.fast {kind} of {op.name}>", scope, "run")
    run.__name__ = op.name
    return run


def binary(op):
    """The Tensor operator of binary `op`, `run(x, y)`."""
    saved_xy, ans_xy = _saves(op, True, True)
    saved_x, ans_x = _saves(op, True)
    saved_y, ans_y = _saves(op, False, True)
    src = _BINARY.format(
        saved_xy=saved_xy, ans_xy=ans_xy, saved_x=saved_x, ans_x=ans_x, saved_y=saved_y, ans_y=ans_y
    )
    # Every node of the operator shares one attrs dict (the op's defaults): never modified.
    return _make(src, op, "binary operator", cls=op.cls, attrs=defaults(op) or EMPTY)


_HEAD = """\
def run(x, attrs, cls=None):  # attrs: every attribute of op (dispatch.complete)
"""

# An operator whose right operand is op's only attribute when it is a number (`x ** 3`):
# anything else goes to the function `other`.
_OPERATOR_HEAD = """\
def run(x, {name}):
    if type({name}) is not int and type({name}) is not float:
        return other(x, {name})
    attrs = {{{name!r}: {name}}}
    cls = None
"""


def unary(op, operand=None, other=None):
    """`run(x, attrs, cls=None)`: op on Tensor x with attributes attrs (all of them);
    `cls`, when given, is the node class `op.node_class(attrs)` names. With `operand`
    (op's only attribute), the Tensor operator `run(x, operand)` instead, for a number
    operand; `other(x, operand)` takes the rest."""
    if op.n_outputs != 1:
        return lambda x, attrs, cls=None: apply(op, (x,), attrs)
    tracked = op.differentiable and bool(op.vjps) and op.vjps[0] is not None
    elementwise = op.shape is same and op.dtype_rule is None and "dtype" not in op.attrs
    saved, ans = _saves(op, True) if tracked else ("()", "None")
    src = _UNARY.format(
        head=_OPERATOR_HEAD.format(name=operand) if operand else _HEAD,
        floats_only=(
            '    if a.dtype.kind != "f":\n        return apply(op, (x,), attrs)\n'
            if op.promote or op.to_float
            else ""
        ),
        keywords="".join(f", {k}=attrs[{k!r}]" for k in op.attrs),
        # Only floating outputs carry a gradient. An elementwise op without a dtype rule of
        # its own gives its input's dtype, which is floating if it needs a gradient.
        untracked=(
            "not x._rg or (off[0] and not state.enabled)"
            + ("" if elementwise else ' or out.dtype.kind != "f"')
            if tracked
            else "True"
        ),
        cls="CLS" if op.cls is not None else "node_class(attrs)",
        saved=saved,
        ans=ans,
        same_shape=op.shape is same,  # the shape rule: the output has the input's shape
    )
    kind = f"{operand} operator" if operand else "forward"
    return _make(src, op, kind, CLS=op.cls, node_class=op.node_class, other=other)
