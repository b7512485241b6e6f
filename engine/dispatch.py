"""Running an op: `apply` converts the operands, calls the numpy forward and records the
backward node. This is the reference semantics of every op application.

It is the hot path of every operation, so it is written for speed: no signature binding,
no per-call introspection; everything about the op was resolved at registration. The
commonest cases (Tensor operators, one-operand ops on floats) run code generated per op
from its record when engine.fast is installed: its runners enter through `UNARY` here (and
through the Tensor operators engine.fast attaches); without it they are `apply`."""

from __future__ import annotations

import inspect

import numpy as np

from . import dtypes as _dt
from .errors import EngineError, ShapeError
from .grad_mode import _state
from .grad_mode import off as _off
from .graph import new_node
from .tensor import Tensor

_FLOAT32 = _dt.float32
_NUMBER = (int, float, bool, np.number, np.bool_)


def apply(op, args, attrs):
    """Apply registered `op` to operands `args` (Tensors or Python numbers)."""
    arrays = []
    tensors = []
    need_grad = False
    for a in args:
        if type(a) is Tensor or isinstance(a, Tensor):
            arrays.append(a._a)
            tensors.append(a)
            if a._rg:
                need_grad = True
        elif isinstance(a, _NUMBER):
            arrays.append(a.item() if isinstance(a, np.generic) else a)
        elif isinstance(a, np.ndarray):  # a constant, e.g. a mask inside a VJP
            return apply(
                op, tuple(Tensor(x) if isinstance(x, np.ndarray) else x for x in args), attrs
            )
        else:
            raise TypeError(
                f"{op.name}(): expected Tensor or number operands, got {type(a).__name__}"
            )
    if op.promote:
        arrays = _promote(op, arrays, tensors)
    elif op.to_float:
        arrays = [
            x.astype(_FLOAT32) if type(x) is np.ndarray and x.dtype.kind in "biu" else x
            for x in arrays
        ]
    try:
        out = op.forward(*arrays, **attrs)
    except (ValueError, IndexError) as exc:
        raise explain(op, args, attrs, exc) from None
    if op.n_outputs == 1 and type(out) is not np.ndarray:
        out = np.asarray(out)  # numpy gives scalars for 0-d results; a Tensor holds an array

    if need_grad and op.differentiable and not (_off[0] and not _state.enabled):
        if op.n_outputs == 1:
            if out.dtype.kind == "f":
                return Tensor(out, True, _record(op, args, attrs, out, 1))
            return Tensor(out)
        node = _record(op, args, attrs, out, len(out))
        # Only floating outputs carry gradients (max(dim)'s indices do not, as in torch).
        return tuple(
            Tensor(o, True, node, i) if o.dtype.kind == "f" else Tensor(o)
            for i, o in enumerate(out)
        )
    if op.n_outputs == 1:
        return Tensor(out)
    return tuple(Tensor(o) for o in out)


EMPTY: dict = {}  # the attrs of ops without attributes: never modified


def producer(t):
    """(node, output_nr) of tensor t's gradient: its grad_fn, or its leaf's AccumulateGrad;
    the edge recorded into it is counted in its `uses`."""
    fn = t.grad_fn
    if fn is not None:
        fn.uses += 1
        return fn, t._nr
    return leaf_node(t), 0


def leaf_node(t):
    """Leaf t's AccumulateGrad, with the edge recorded into it counted."""
    acc = t._acc
    if acc is None:
        acc = t.accumulator()
    acc.uses += 1
    return acc


class Runners(dict):
    """op -> its one-operand runner `run(x, attrs, cls=None)`, made on first use by `make`
    (engine.fast's generated forward when it is installed); with no `make`, none: the op
    goes to `apply`."""

    make = None

    def __missing__(self, op):
        if self.make is None:
            return None
        run = self[op] = self.make(op)
        return run


UNARY = Runners()


def apply_unary(op, x, attrs, cls=None):
    """Apply op to Tensor x with attributes attrs (those left out take their defaults);
    `cls`, when given, is the node class `op.node_class(attrs)` names."""
    if len(attrs) != len(op.attrs):
        attrs = complete(op, attrs)
    run = UNARY[op]
    if run is None:
        return apply(op, (x,), attrs)
    return run(x, attrs, cls)


def unary(op):
    """`run(x, attrs, cls=None)`: `apply_unary` of op, for a family module to keep."""

    def run(x, attrs, cls=None):
        return apply_unary(op, x, attrs, cls)

    run.__name__ = op.name
    return run


def defaults(op):
    return {k: v for k, v in op.attrs.items() if v is not inspect.Parameter.empty}


def complete(op, attrs):
    """attrs with the defaults of the attributes they leave out: a node keeps them all, so
    its VJPs read them without a fallback. (A missing required one is the forward's error.)"""
    if all(k in attrs for k in op.attrs):
        return attrs
    return {**defaults(op), **attrs}


def _record(op, args, attrs, out, n_out):
    edges = []
    nrs = []
    shapes = []
    dts = []
    want = 0  # bit mask of the operands some needed VJP reads
    want_out = False
    variadic = op.variadic
    for i, a in enumerate(args):
        if type(a) is Tensor or isinstance(a, Tensor):
            arr = a._a
            shapes.append(arr.shape)
            dts.append(arr.dtype)
            k = 0 if variadic else i
            if a._rg and op.vjps[k] is not None:
                node, nr = producer(a)
                edges.append(node)
                nrs.append(nr)
                want |= op.save_masks[k]
                want_out = want_out or op.saves_out[k]
                continue
        else:
            shapes.append(())
            dts.append(None)
        edges.append(None)
        nrs.append(0)
    if not want:
        saved = ()
    elif want == -1:
        saved = tuple(args)
    else:
        saved = tuple(a if want >> i & 1 else None for i, a in enumerate(args))
    if len(attrs) != len(op.attrs):
        attrs = complete(op, attrs)
    cls = op.cls or op.node_class(attrs)
    return new_node(
        cls,
        attrs,
        tuple(edges),
        tuple(nrs),
        saved,
        out if want_out else None,
        tuple(shapes),
        tuple(dts),
        n_out,
    )


def _promote(op, arrays, tensors):
    if not tensors:
        return arrays
    first = tensors[0]._a.dtype
    same = all(t._a.dtype == first for t in tensors)
    if same and first.kind == "f":
        return arrays  # numpy 2 keeps Python numbers weak, as torch does
    scalars = [x for x in arrays if type(x) is not np.ndarray]
    target = _dt.result_type([t._a for t in tensors], scalars)
    if op.to_float and target.kind != "f":
        target = _FLOAT32
    return [x.astype(target) if type(x) is np.ndarray and x.dtype != target else x for x in arrays]


def explain(op, args, attrs, exc):
    """Turn numpy's complaint into ours, naming the op and the operand shapes."""
    if isinstance(exc, EngineError):  # the forward already explained it (a bad dim...)
        return exc
    shapes = [tuple(a._a.shape) for a in args if isinstance(a, Tensor)]
    if op.shape is not None:
        try:
            op.shape(*[a._a.shape if isinstance(a, Tensor) else () for a in args], **attrs)
        except ShapeError as err:
            if err.op:
                return err
            # A shared rule (broadcasting) does not know which op ran: name it.
            msg = str(err)
            msg = op.name + msg if msg.startswith("()") else f"{op.name}(): {msg}"
            return ShapeError(msg, op=op.name, shapes=err.shapes)
        except Exception:  # noqa: BLE001 - the shape rule is only a better explanation
            pass
    return ShapeError(f"{op.name}(): {exc} (operand shapes {shapes})", op=op.name, shapes=shapes)
