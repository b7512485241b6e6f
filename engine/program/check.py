"""Check a Program before any numpy work: bind every call, infer every result's shape and
dtype with the registry's rules, and enforce the limits.

Each equation is abstractly evaluated (JAX's abstract interpretation, in small): its
arguments become `TensorSpec`s (a shape that also carries `.dtype` and `.requires_grad`), its
callee's signature binds them, and the registry's rule computes the result:

    FUNCTIONS[fn].shape(*operand shapes, **attributes)    # numbers pass shape ()
    FUNCTIONS[fn].result_dtype(*operand dtypes, **attributes)

Which arguments are operands is read from the signatures, never from the op's name: a
parameter the rule takes by keyword gets the value (a `TensorSpec` for a tensor: it is a
shape tuple with `.shape`, so `np.shape(spec)` works too); tensor-valued or required
positional parameters are operands; other attributes are passed by keyword unless left at
their default. A list of tensors (`cat`'s) is passed as one operand per tensor. Every rule
follows the registry's one convention (operand shapes positional, attributes keyword-only;
registry.py's docstring), which tests/engine/test_op_records.py checks.

A function without a shape rule, or whose rule does not accept the call, is refused with
kind `no_rule` (a registry bug, reported with the function's name), never run unchecked.

FLOPs are estimated by each callee's cost rule, read from its registry record like the
shape and dtype rules:

    FUNCTIONS[fn].cost(*tensor operand shapes, out=result shapes)

(`ops.costs`: contractions such as matmul, mm, addmm, linear cost 2·(output elements)·k with
k the contracted size; convolutions 2·(output elements)·C_in/groups·kH·kW; everything else,
by default, the larger of its output and input element counts). With `backward=True` the
FLOP estimate is tripled and the element count doubled (a gradient per tensor), as the
backward pass costs about twice the forward.
"""

from __future__ import annotations

import inspect
import math
import threading
from collections import OrderedDict
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass

import numpy as np

from .. import dtypes as _dt
from ..errors import DTypeError, EngineError, ShapeError
from ..tensor import Tensor
from .errors import ProgramError
from .ir import Eqn, List, Program, Ref
from .limits import DEFAULT, Limits
from .names import Callee, resolve

_P = inspect.Parameter
_NUMBER = (bool, int, float)


class TensorSpec(tuple):
    """An abstract tensor: the shape itself (a tuple, so shape rules take it as one) with
    `.shape`, `.ndim`, `.dtype` and `.requires_grad`."""

    def __new__(cls, shape, dtype, requires_grad=False, value=None):
        self = super().__new__(cls, (int(n) for n in shape))
        self.dtype = _dt.canonical(dtype)
        self.requires_grad = bool(requires_grad)
        self.value = value  # the Tensor, for a program input given as one (indices read it)
        return self

    @property
    def shape(self) -> tuple:
        return tuple(self)

    @property
    def ndim(self) -> int:
        return len(self)

    @property
    def size(self) -> int:
        return math.prod(self)

    def __repr__(self) -> str:
        rg = ", requires_grad" if self.requires_grad else ""
        return f"TensorSpec({tuple(self)}, {self.dtype}{rg})"

    def to_dict(self) -> dict:
        return {
            "shape": list(self),
            "dtype": str(self.dtype),
            "requires_grad": self.requires_grad,
        }


class Multi(tuple):
    """The specs of a tuple-valued result (split, unbind, max with dim...)."""


def spec_of(x) -> TensorSpec:
    """A TensorSpec for an engine Tensor, a numpy array, a number or a TensorSpec."""
    if isinstance(x, TensorSpec):
        return x
    if isinstance(x, Tensor):
        return TensorSpec(x.shape, x.dtype, x.requires_grad, value=x)
    if isinstance(x, np.ndarray):
        return TensorSpec(x.shape, x.dtype)
    if isinstance(x, bool):
        return TensorSpec((), _dt.bool_)
    if isinstance(x, int):
        return TensorSpec((), _dt.int64)
    if isinstance(x, float):
        return TensorSpec((), _dt.default_float)
    raise ProgramError(f"cannot use {type(x).__name__} as a tensor input", kind="input")


@dataclass
class Checked:
    """The result of `check`: every value's spec, and the totals the limits were applied to."""

    program: Program
    specs: dict  # input name or equation id -> TensorSpec (or Multi); constants are absent
    flops: int
    elements: int

    def spec(self, name: str):
        return self.specs[self.program.output(name).id]

    @property
    def outputs(self) -> dict:
        return {n: self.specs.get(r.id) for n, r in self.program.outputs}


#: Results of `check` kept per Program (on the Program object itself, so they live and die
#: with it: parsed programs are cached by text and shared between requests), keyed by the
#: limits, `backward` and each input's (shape, dtype, requires_grad).
MEMO_SIZE = 16
_MEMO_ATTR = "_check_memo"
_memo_lock = threading.Lock()
#: Set while `check` runs: whether a rule read an input's values (an index tensor given as an
#: input: `x[idx]`); such a result depends on more than shapes and is never memoized.
_values_read: ContextVar[list | None] = ContextVar("values_read", default=None)


def _signature(x):
    if isinstance(x, Tensor | np.ndarray):
        return (x.shape, x.dtype, getattr(x, "requires_grad", False))
    if isinstance(x, TensorSpec):
        return (tuple(x), x.dtype, x.requires_grad)
    if isinstance(x, _NUMBER):
        return type(x)
    return None


def _memo_key(program: Program, inputs: Mapping, limits: Limits, backward: bool):
    key = [limits, backward]
    for name in program.inputs:
        sig = _signature(inputs[name]) if name in inputs else None
        if sig is None:
            return None
        key.append(sig)
    try:
        hash(key := tuple(key))
    except TypeError:
        return None
    return key


def _without_values(checked: Checked) -> Checked:
    """The same result holding no request's tensors (what the memo keeps)."""
    specs = dict(checked.specs)
    for name in checked.program.inputs:
        s = specs.get(name)
        if isinstance(s, TensorSpec) and s.value is not None:
            specs[name] = TensorSpec(s, s.dtype, s.requires_grad)
    return Checked(checked.program, specs, checked.flops, checked.elements)


def check(
    program: Program,
    inputs: Mapping,
    limits: Limits = DEFAULT,
    *,
    backward: bool = False,
) -> Checked:
    """Validate `program` for `inputs` (name -> Tensor, ndarray, number or TensorSpec):
    every input present, every call bindable, every shape and dtype inferred, every limit
    kept. Raises ProgramError naming the line/column or node id; returns the specs.

    Results are memoized per program by the inputs' shapes, dtypes and requires_grad (and
    the limits), unless a rule read an input's values; a memoized result is shared: treat
    it as read-only."""
    key = _memo_key(program, inputs, limits, backward)
    memo = program.__dict__.get(_MEMO_ATTR) if key is not None else None
    if memo is not None:
        hit = memo.get(key)
        if hit is not None:
            return hit
    reads: list = []
    token = _values_read.set(reads)
    try:
        checked = _check(program, inputs, limits, backward)
    finally:
        _values_read.reset(token)
    if key is not None and not reads:
        with _memo_lock:
            memo = program.__dict__.setdefault(_MEMO_ATTR, OrderedDict())
            memo[key] = _without_values(checked)
            while len(memo) > MEMO_SIZE:
                memo.popitem(last=False)
    return checked


def _check(program: Program, inputs: Mapping, limits: Limits, backward: bool) -> Checked:
    specs: dict = {}
    budget = _Budget(limits, backward)
    for name in program.inputs:
        if name not in inputs:
            w = program.where_input(name)
            raise ProgramError(
                f"{name!r} is not defined: not assigned before this use and not an input",
                kind="undefined",
            ).at(w)
        s = spec_of(inputs[name])
        budget.tensor(s, name)
        specs[name] = s
    for eqn in program.eqns:
        try:
            out, flops = infer(eqn, specs)
            for s in out if isinstance(out, Multi) else (out,):
                budget.tensor(s, eqn.id)
            budget.add_flops(flops)
        except ProgramError as e:
            raise e.at(eqn.where) from None
        specs[eqn.id] = out
    return Checked(program, specs, budget.flops, budget.elements)


class _Budget:
    def __init__(self, limits: Limits, backward: bool):
        self.limits = limits
        self.factor_e, self.factor_f = (2, 3) if backward else (1, 1)
        self.elements = 0
        self.flops = 0

    def tensor(self, s: TensorSpec, name: str) -> None:
        lim = self.limits
        if s.ndim > lim.max_ndim:
            raise ProgramError(
                f"{name}: {s.ndim} dimensions exceed the limit of {lim.max_ndim}",
                kind="limit",
                limit="max_ndim",
                shapes=[s.shape],
            )
        n = s.size
        if n > lim.max_tensor_elements:
            raise ProgramError(
                f"{name}: a tensor of shape {s.shape} has {n} elements, over the limit of "
                f"{lim.max_tensor_elements}",
                kind="limit",
                limit="max_tensor_elements",
                shapes=[s.shape],
            )
        self.elements += n * self.factor_e
        if self.elements > lim.max_total_elements:
            raise ProgramError(
                f"{name}: the program's tensors{' and gradients' if self.factor_e > 1 else ''} "
                f"total {self.elements} elements, over the limit of {lim.max_total_elements}",
                kind="limit",
                limit="max_total_elements",
                shapes=[s.shape],
            )

    def add_flops(self, n: int) -> None:
        self.flops += n * self.factor_f
        if self.flops > self.limits.max_flops:
            raise ProgramError(
                f"the program needs an estimated {self.flops} floating-point operations, over "
                f"the limit of {self.limits.max_flops}",
                kind="limit",
                limit="max_flops",
            )


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
        reads = _values_read.get()
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


class IntArg(int):
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


class FloatArg(float):
    __slots__ = ()
    shape = ()
    ndim = 0

    def __len__(self) -> int:
        return 0

    def __iter__(self):
        return iter(())


def _for_shape(v):
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return IntArg(v)
    if isinstance(v, float):
        return FloatArg(v)
    return v


def _for_dtype(v):
    if isinstance(v, TensorSpec):
        return v.dtype
    if isinstance(v, _NUMBER):
        return type(v)
    if isinstance(v, Multi):
        return tuple(s.dtype for s in v)
    return v


def route(callee: Callee, bound: inspect.BoundArguments, names: frozenset, adapt):
    """The arguments of a rule call, from the function's bound arguments: those the rule
    names are passed by keyword; tensors (a list of tensors as one operand each) and
    required operands positionally, in order; other attributes by keyword unless left at
    their default. `adapt` turns each value into what the rule takes."""
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
            kw.update({k: adapt(_probe(v)) for k, v in value.items()})
        elif name in names:
            kw[name] = adapt(_probe(value))
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
            kw[name] = adapt(_probe(value))
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


def infer(eqn: Eqn, specs: dict):
    """(result spec, FLOP estimate) of one equation, given the specs of earlier values."""
    callee = resolve(eqn.fn)
    args = [_abstract(a, specs) for a in eqn.args]
    kwargs = {k: _abstract(v, specs) for k, v in eqn.kwargs}
    if callee.picks and args and isinstance(args[0], Multi):
        return _pick(args, kwargs), 0
    try:
        bound = callee.signature.bind(*args, **kwargs)
    except TypeError as e:
        raise ProgramError(f"{callee.label}(): {e}", kind="arity", op=callee.label) from None
    operands = _specs_in(bound)
    shapes = [tuple(s) for s in operands]
    shape = _call_rule(callee, callee.shape, "shape", bound, _for_shape, shapes)
    dtype = _call_rule(callee, callee.dtype, "dtype", bound, _for_dtype, shapes)
    grad = callee.differentiable and any(s.requires_grad for s in operands)
    out = _result(callee, shape, dtype, grad, shapes)
    return out, _cost(callee, bound, shapes, out)


def _call_rule(callee, rule, what, bound, adapt, shapes):
    if rule.fn is None:
        raise ProgramError(
            f"{callee.label} has no {what} rule in the registry, so it cannot be checked "
            f"before running (its declaration needs {what}=...)",
            kind="no_rule",
            op=callee.label,
            shapes=shapes,
        )
    pos, kw = route(callee, bound, rule.names, adapt)
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


def _cost(callee, bound, shapes, out) -> int:
    """The FLOP estimate of one call: the callee's cost rule (registry `cost=`, by default
    `ops.costs.pointwise`) on the tensor operands' shapes and the result's shapes."""
    outs = out if isinstance(out, Multi) else (out,)
    rule = callee.cost
    kw = {n: _probe(v) for n, v in bound.arguments.items() if n in rule.names and n != "out"}
    return rule.fn(*shapes, out=tuple(tuple(s) for s in outs), **kw)
