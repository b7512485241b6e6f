"""Running an op: convert operands, call the numpy forward, record the backward node.

This is the hot path of every operation, so it is written for speed: no signature binding,
no per-call introspection; everything about the op was resolved at registration."""

from __future__ import annotations

import inspect
import weakref

import numpy as np

from . import dtypes as _dt
from .errors import EngineError, ShapeError
from .grad_mode import _state
from .graph import AccumulateGrad, _node_keys, _sink_keys, new_node
from .tensor import Parameter, Tensor

_FLOAT32 = _F32 = _dt.float32
_F64 = _dt.float64
_C32, _C64 = _dt.SCALARS[_F32], _dt.SCALARS[_F64]
_scalar = _dt.scalar_array
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
        raise _explain(op, args, attrs, exc) from None
    if op.n_outputs == 1 and type(out) is not np.ndarray:
        out = np.asarray(out)  # numpy gives scalars for 0-d results; a Tensor holds an array

    if need_grad and op.differentiable and _state.enabled:
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


_EMPTY: dict = {}


def _edge(t):
    """The edge to tensor t's producer (its grad_fn, or its leaf's AccumulateGrad), counted
    in the producer's `uses`."""
    fn = t.grad_fn
    if fn is not None:
        fn.uses += 1
        return (fn, t._nr)
    return _leaf_edge(t)


def _leaf_edge(t):
    ref = t._acc
    acc = None if ref is None else ref()
    if acc is None:  # (Tensor.accumulator, inlined)
        acc = AccumulateGrad()
        acc.variable = t
        acc.key = next(_sink_keys)
        acc.uses = 0
        t._acc = weakref.ref(acc)
    acc.uses += 1
    return (acc, 0)


def binary(op):
    """The Tensor operator of binary `op` (`x + y`, `x * 3`...): `apply` for a Tensor x and
    a Tensor or Python number y, no attributes, with what the op's record says about saving
    resolved once. The common case (one floating dtype, or a float tensor and a number)
    skips the general loop and promotion; anything else takes `apply`. A number goes to
    numpy as a cached 0-d array of x's dtype (`dtypes.scalar_array`), which the node saves
    in its place: same values, half numpy's cost on small arrays."""
    forward, cls, masks, outs = op.forward, op.cls, op.save_masks, op.saves_out
    attrs = _defaults(op) or _EMPTY  # never modified: shared by every node of this operator
    # What to save when x, y or both need a gradient (a mask of -1 has both bits).
    x_saves_y = masks[0] & 2 != 0  # x's VJP reads y...
    x_saves_x = masks[0] & 1 != 0
    y_saves_x = masks[1] & 1 != 0
    y_saves_y = masks[1] & 2 != 0
    saves_any = bool(masks[0] or masks[1])
    x_out, y_out = outs

    def run(x, y):
        ty = type(y)
        a = x._a
        dt = a.dtype
        if ty is Tensor or ty is Parameter:
            b = y._a
            if b.dtype is not dt or (dt is not _F32 and dt is not _F64):
                return apply(op, (x, y), _EMPTY)
            y_rg = y._rg
        elif (ty is float or ty is int) and (dt is _F32 or dt is _F64):
            b = (_C32 if dt is _F32 else _C64).get(y)
            y = b = _scalar(y, dt) if b is None else b  # what the node saves, too
            y_rg = False
        else:
            return apply(op, (x, y), _EMPTY)
        try:
            out = forward(a, b)
        except (ValueError, IndexError) as exc:
            raise _explain(op, (x, y), _EMPTY, exc) from None
        if type(out) is not np.ndarray:
            out = np.asarray(out)
        x_rg = x._rg
        if not (x_rg or y_rg) or not _state.enabled:
            return Tensor(out)
        node = cls()
        node.attrs = attrs
        if x_rg:
            fn = x.grad_fn
            if fn is not None:
                fn.uses += 1
                ex = (fn, x._nr)
            else:
                ex = _leaf_edge(x)
        else:
            ex = None
        if y_rg:
            fn = y.grad_fn
            if fn is not None:
                fn.uses += 1
                node.edges = (ex, (fn, y._nr))
            else:
                node.edges = (ex, _leaf_edge(y))
            node.shapes = (a.shape, b.shape)
            node.dtypes = (dt, dt)
        else:
            node.edges = (ex, None)
            if type(y) is Tensor or type(y) is Parameter:
                node.shapes = (a.shape, b.shape)
                node.dtypes = (dt, dt)
            else:
                node.shapes = (a.shape, ())
                node.dtypes = (dt, None)
        if saves_any:
            sx = x_rg and x_saves_x or y_rg and y_saves_x
            sy = x_rg and x_saves_y or y_rg and y_saves_y
            node.saved = (x if sx else None, y if sy else None) if sx or sy else ()
        else:
            node.saved = ()
        node.ans = out if x_rg and x_out or y_rg and y_out else None
        node.n_out = 1
        node.retained = None
        node.freed = False
        node.key = next(_node_keys)
        node.uses = 0
        return Tensor(out, True, node)

    run.__name__ = op.name
    return run


def unary(op):
    """`apply` for one Tensor operand and attributes, `run(x, attrs, cls=None)`, with the
    op's record resolved once; `cls`, when given, is the node class `op.node_class(attrs)`
    names. Anything but a Tensor (or a non-floating one, for an op computing in floats)
    takes `apply`."""
    cls0, several = op.cls, op.n_outputs != 1
    tracked = op.differentiable and bool(op.vjps) and op.vjps[0] is not None
    floats_only = op.promote or op.to_float
    save_in = tracked and bool(op.save_masks[0])
    save_out = tracked and op.saves_out[0]
    call = _keyword_call(op)

    def run(x, attrs, cls=None):  # attrs: every attribute of op (see apply_unary)
        if type(x) is not Tensor or several:
            return apply(op, (x,), attrs)
        a = x._a
        if floats_only and a.dtype.kind != "f":
            return apply(op, (x,), attrs)
        try:
            out = call(a, attrs)
        except (ValueError, IndexError) as exc:
            raise _explain(op, (x,), attrs, exc) from None
        if type(out) is not np.ndarray:
            out = np.asarray(out)
        if not x._rg or not tracked or not _state.enabled or out.dtype.kind != "f":
            return Tensor(out)
        node = (cls or cls0 or op.node_class(attrs))()
        node.attrs = attrs
        fn = x.grad_fn
        if fn is not None:
            fn.uses += 1
            node.edges = ((fn, x._nr),)
        else:
            node.edges = (_leaf_edge(x),)
        node.saved = (x,) if save_in else ()
        node.ans = out if save_out else None
        node.shapes = (a.shape,)
        node.dtypes = (a.dtype,)
        node.n_out = 1
        node.retained = None
        node.freed = False
        node.key = next(_node_keys)
        node.uses = 0
        return Tensor(out, True, node)

    run.__name__ = op.name
    return run


def _keyword_call(op):
    """`call(x, attrs)`: op's forward on x with every attribute passed by name,
    `forward(x, exponent=attrs["exponent"])`. Half the cost of `forward(x, **attrs)`,
    which builds a keyword dict on every call."""
    names = list(op.attrs)
    if not names:
        forward = op.forward
        return lambda x, attrs: forward(x)
    src = "def call(x, attrs):\n    return forward(x{})\n".format(
        "".join(f", {k}=attrs[{k!r}]" for k in names)
    )
    scope = {"forward": op.forward}
    exec(src, scope)  # noqa: S102 - our template over the op's own parameter names
    return scope["call"]


def apply_unary(op, x, attrs, cls=None):
    """`unary(op)(x, attrs, cls)`, the closure made once per op; attributes left out of
    attrs take their defaults."""
    run = _UNARY.get(op.name)
    if run is None or run.op is not op:
        run = _UNARY[op.name] = unary(op)
        run.op = op
    if len(attrs) != len(op.attrs):
        attrs = complete(op, attrs)
    return run(x, attrs, cls)


def _defaults(op):
    return {k: v for k, v in op.attrs.items() if v is not inspect.Parameter.empty}


def complete(op, attrs):
    """attrs with the defaults of the attributes they leave out: a node keeps them all, so
    its VJPs read them without a fallback. (A missing required one is the forward's error.)"""
    if all(k in attrs for k in op.attrs):
        return attrs
    return {**_defaults(op), **attrs}


_UNARY: dict = {}


def _record(op, args, attrs, out, n_out):
    edges = []
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
                edges.append(_edge(a))
                want |= op.save_masks[k]
                want_out = want_out or op.saves_out[k]
                continue
        else:
            shapes.append(())
            dts.append(None)
        edges.append(None)
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
        cls, attrs, tuple(edges), saved, out if want_out else None, tuple(shapes), tuple(dts), n_out
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


def _explain(op, args, attrs, exc):
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
