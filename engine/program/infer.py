"""One equation of a program, abstractly evaluated (check.py's docstring says how): its
callee's signature binds the argument specs, the registry's rules give the result's shape
and dtype, and its cost rules the FLOPs and the peak bytes of its forward and backward."""

from __future__ import annotations

import inspect
from typing import NamedTuple

import numpy as np

from .. import dtypes as _dt
from ..errors import DTypeError, EngineError, ShapeError
from ..tensor import Tensor
from .errors import ProgramError
from .ir import Eqn, List, Ref
from .names import Callee, Rule, resolve
from .specs import Multi, TensorSpec, values_read

_P = inspect.Parameter
_NUMBER = (bool, int, float)


# -- one equation ---------------------------------------------------------------------------


def _abstract(a, specs):
    if isinstance(a, Ref):
        return specs[a.id]
    if isinstance(a, List):
        return [_abstract(x, specs) for x in a]
    if isinstance(a, tuple):
        return tuple(_abstract(x, specs) for x in a)
    return a


def _probe(v, top=True):
    """A keyword argument as rules read it: a tensor at the top is its TensorSpec (a shape),
    but inside a tuple or list (an index) rules read values: the input's own Tensor when it
    is a program input, else a stand-in of its shape and dtype (zeros; True for bool, so a
    computed mask counts as selecting everything: an upper bound)."""
    if isinstance(v, TensorSpec):
        if top:
            return v
        if v.value is None:
            return _stand_in(v)
        reads = values_read.get()
        if reads is not None:
            reads.append(v)
        return v.value
    if isinstance(v, list):
        return [_probe(x, False) for x in v]
    if isinstance(v, tuple) and not isinstance(v, Multi):
        return tuple(_probe(x, False) for x in v)
    return v


def _stand_in(s: TensorSpec) -> Tensor:
    fill = np.ones((), s.dtype) if s.dtype == _dt.bool_ else np.zeros((), s.dtype)
    return Tensor(np.broadcast_to(fill, tuple(s)))


def _has_tensor(v) -> bool:
    if isinstance(v, TensorSpec | Multi):
        return True
    return isinstance(v, tuple | list) and any(_has_tensor(x) for x in v)


def _same_const(v, default) -> bool:
    try:
        return type(v) is type(default) and bool(v == default)
    except Exception:  # noqa: BLE001 - an odd default never equals a constant
        return False


def _unwrap(v):
    """torch's IntArrayRef varargs: `x.view(2, 3)` and `x.view((2, 3))` are the same."""
    if len(v) == 1 and isinstance(v[0], tuple | list):
        return tuple(v[0])
    return tuple(v)


class _NumberShape:
    """A number argument as a shape rule sees it: the number (a dim, a size) that also reads
    as the shape of a number, `()` (len 0, iterates empty, `.shape == ()`). Registry rules
    take some numbers as attributes (`max(x, 1)`: dim) and others as operands
    (`clamp(x, 0, 1)`, `where(c, x, 0.0)`: shape ()), and this serves both."""

    __slots__ = ()
    shape = ()
    ndim = 0

    def __len__(self) -> int:
        return 0

    def __iter__(self):
        return iter(())


class IntArg(_NumberShape, int):
    __slots__ = ()


class FloatArg(_NumberShape, float):
    __slots__ = ()


def _for_shape(v):
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return IntArg(v)
    if isinstance(v, float):
        return FloatArg(v)
    return v


def _for_dtype(v):
    """An operand as a dtype rule takes it: a tensor's dtype, a number's type."""
    if isinstance(v, TensorSpec):
        return v.dtype
    if isinstance(v, _NUMBER):
        return type(v)
    if isinstance(v, Multi):
        return tuple(s.dtype for s in v)
    return v


def _for_dtype_attr(v):
    """An attribute as a dtype rule takes it: its value (`return_indices=False` is False,
    not `bool`), a tensor given there (max(x, y) binds y to `dim`) its dtype."""
    return v if isinstance(v, _NUMBER) else _for_dtype(v)


def route(callee: Callee, bound: inspect.BoundArguments, rule: Rule, adapt, adapt_attr=None):
    """The arguments of a rule call, from the function's bound arguments: those the rule
    names are passed by keyword; tensors (a list of tensors as one operand each) and
    required operands positionally, in order; other attributes by keyword unless left at
    their default. `adapt` turns each operand into what the rule takes, `adapt_attr` (by
    default `adapt`) each attribute: an argument the rule takes keyword-only or in its
    `**kwargs` (the registry's convention: attributes keyword-only)."""
    adapt_attr = adapt_attr or adapt
    names = rule.names
    params = callee.signature.parameters
    pos, kw = [], {}
    for name, value in bound.arguments.items():
        p = params[name]
        if p.kind is _P.VAR_POSITIONAL:
            value = _unwrap(value)
            if _has_tensor(value):
                pos.extend(adapt(v) for v in value)
            else:
                kw[name] = value
        elif p.kind is _P.VAR_KEYWORD:
            kw.update({k: adapt_attr(_probe(v)) for k, v in value.items()})
        elif name in names:
            kw[name] = (adapt if name in rule.operands else adapt_attr)(_probe(value))
        elif name in callee.operands or _has_tensor(value):
            if (
                isinstance(value, tuple | list)
                and value
                and all(isinstance(x, TensorSpec) for x in value)
            ):
                pos.extend(adapt(v) for v in value)  # cat's list of tensors
            else:
                pos.append(adapt(value))
        elif p.default is not _P.empty and _same_const(value, p.default):
            continue
        else:
            kw[name] = adapt_attr(_probe(value))
    return pos, kw


def _specs_in(bound) -> list:
    out = []
    for v in bound.arguments.values():
        stack = [v]
        while stack:
            x = stack.pop()
            if isinstance(x, TensorSpec):
                out.append(x)
            elif isinstance(x, tuple | list):
                stack.extend(x)
            elif isinstance(x, dict):
                stack.extend(x.values())
    return out


class Cost(NamedTuple):
    """What one call costs, by its record's rules: FLOPs (`cost=`) and the peak bytes of its
    forward and of its backward (`memory=`, an `ops.costs.Peak`; no fixed overhead added)."""

    flops: int
    forward: int
    backward: int


_FREE = Cost(0, 0, 0)


def infer(eqn: Eqn, specs: dict):
    """(result spec, Cost) of one equation, given the specs of earlier values."""
    callee = resolve(eqn.fn)
    args = [_abstract(a, specs) for a in eqn.args]
    kwargs = {k: _abstract(v, specs) for k, v in eqn.kwargs}
    if callee.picks and args and isinstance(args[0], Multi):
        return _pick(args, kwargs), _FREE
    try:
        bound = callee.signature.bind(*args, **kwargs)
    except TypeError as e:
        raise ProgramError(f"{callee.label}(): {e}", kind="arity", op=callee.label) from None
    operands = _specs_in(bound)
    shapes = [tuple(s) for s in operands]
    shape = _call_rule(callee, callee.shape, "shape", bound, _for_shape, shapes)
    dtype = _call_rule(callee, callee.dtype, "dtype", bound, _for_dtype, shapes, _for_dtype_attr)
    grad = callee.differentiable and any(s.requires_grad for s in operands)
    out = _result(callee, shape, dtype, grad, shapes)
    return out, _cost(callee, bound, operands, shapes, out)


def _call_rule(callee, rule, what, bound, adapt, shapes, adapt_attr=None):
    if rule.fn is None:
        raise ProgramError(
            f"{callee.label} has no {what} rule in the registry, so it cannot be checked "
            f"before running (its declaration needs {what}=...)",
            kind="no_rule",
            op=callee.label,
            shapes=shapes,
        )
    pos, kw = route(callee, bound, rule, adapt, adapt_attr)
    if rule.sig is not None:
        try:
            rule.sig.bind(*pos, **kw)
        except TypeError as e:
            raise ProgramError(
                f"{callee.label}: its {what} rule does not accept this call ({e}); the "
                "registry entry needs a rule matching the function's signature",
                kind="no_rule",
                op=callee.label,
                shapes=shapes,
            ) from None
    try:
        return rule.fn(*pos, **kw)
    except ProgramError:
        raise
    except (EngineError, ValueError, TypeError, IndexError, KeyError, NotImplementedError) as e:
        raise _rule_error(callee, e, shapes) from None


def _rule_error(callee, e, shapes) -> ProgramError:
    if isinstance(e, ShapeError):
        kind = "shape"
    elif isinstance(e, DTypeError | NotImplementedError):
        kind = "dtype"
    else:
        kind = "argument"
    msg = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    msg = msg.removeprefix("(): ")
    if not msg.startswith(callee.label):
        msg = f"{callee.label}: {msg}"
    err_shapes = getattr(e, "shapes", None) or shapes
    return ProgramError(msg, kind=kind, op=callee.label, shapes=err_shapes)


def _as_shape(s):
    if isinstance(s, tuple | list) and all(
        isinstance(n, int | np.integer) and not isinstance(n, bool) for n in s
    ):
        return tuple(int(n) for n in s)
    return None


def _result(callee, shape, dtype, grad, shapes):
    single = _as_shape(shape)
    bad = ProgramError(
        f"{callee.label}: its shape rule returned {shape!r}, not a shape; the registry entry "
        "needs a fix",
        kind="no_rule",
        op=callee.label,
        shapes=shapes,
    )
    if single is not None:
        if isinstance(dtype, tuple):
            raise bad
        dt = _dt.canonical(dtype)
        return TensorSpec(single, dt, grad and dt.kind == "f")
    if not isinstance(shape, tuple | list):
        raise bad
    parts = [_as_shape(s) for s in shape]
    if any(p is None for p in parts):
        raise bad
    dts = dtype if isinstance(dtype, tuple | list) else (dtype,) * len(parts)
    out = []
    for p, d in zip(parts, dts, strict=False):
        dt = _dt.canonical(d)
        out.append(TensorSpec(p, dt, grad and dt.kind == "f"))
    return Multi(out)


def _pick(args, kwargs):
    """`r[k]` of a tuple-valued result (split(x, 2)[0], `a, b = ...`)."""
    multi, index = args[0], args[1] if len(args) > 1 else None
    if len(args) != 2 or kwargs or not isinstance(index, int) or isinstance(index, bool):
        raise ProgramError(
            "a tuple-valued result can only be indexed by one integer", kind="argument", op="[]"
        )
    if not -len(multi) <= index < len(multi):
        raise ProgramError(
            f"index {index} out of range for a result of {len(multi)} tensors",
            kind="argument",
            op="[]",
        )
    return multi[index]


def _cost(callee, bound, operands, shapes, out) -> Cost:
    """The cost of one call: the callee's cost rule (registry `cost=`, by default
    `ops.costs.pointwise`) on the tensor operands' shapes and the result's shapes, and its
    memory rule (`memory=`, by default `ops.costs.BUFFERS`) on their specs (with dtypes)."""
    outs = out if isinstance(out, Multi) else (out,)
    args = bound.arguments
    rule = callee.cost
    kw = {n: _probe(v) for n, v in args.items() if n in rule.names and n != "out"}
    flops = rule.fn(*shapes, out=tuple(tuple(s) for s in outs), **kw)
    rule = callee.memory
    kw = {n: _probe(v) for n, v in args.items() if n in rule.names and n != "out"}
    peak = rule.fn(*operands, out=tuple(outs), **kw)
    return Cost(flops, peak[0], peak[1])
