"""What the names in a program mean, read from the registry (one table, no op-specific code).

An equation's `fn` is one of:

- a key of `engine.registry.FUNCTIONS`: `sum`, `softmax`, `linalg.norm`... Method calls use
  the same entry (`x.sum(1)` is `sum(x, 1)`), allowed when the function has `method=True`;
- an operator symbol (`+ - * / // % ** @ neg ~ & | ^ == != < <= > >= []`): run by Python's
  operator on engine Tensors, so exactly what `Tensor.__add__`... do, and checked with the
  shape and dtype rules of the registry function or op it stands for (`+` is `add`);
- a Tensor attribute from a short whitelist (`.T`, `.mT`, `.float()`, `.detach()`...).

`resolve(fn)` turns any of these into a `Callee`: what to call, its signature (to bind
arguments), which parameters are tensor operands, and its shape and dtype rules.
"""

from __future__ import annotations

import inspect
import operator
from collections.abc import Callable
from dataclasses import dataclass

from .. import dtypes as _dt
from .. import frontend as _frontend
from ..errors import ShapeError
from ..ops import costs
from ..registry import FUNCTIONS, OPS, default_dtype
from ..tensor import Tensor
from .errors import ProgramError

# Dotted prefixes dropped from function names, longest first: `torch.nn.functional.relu`,
# `F.relu` and `relu` are one function. What remains may keep a dot (`linalg.norm`).
PREFIXES = ("torch.nn.functional.", "nn.functional.", "torch.", "F.")
NAMESPACES = frozenset(p.split(".")[0] for p in PREFIXES)

# dtype names usable as values (`x.to(float64)`, `sum(x, dtype=torch.float64)`), as torch
# spells them (`float` is torch.float, i.e. float32).
DTYPE_NAMES = {
    "float32": "float32",
    "float": "float32",
    "float64": "float64",
    "double": "float64",
    "int64": "int64",
    "long": "int64",
    "bool": "bool",
}

_P = inspect.Parameter


@dataclass(frozen=True)
class Operator:
    symbol: str
    call: Callable
    rule: str  # the registry function (or op) whose shape/dtype rules it follows
    dunder: str  # the Tensor method Python's operator reaches
    arity: int = 2


OPERATORS = {
    o.symbol: o
    for o in (
        Operator("+", operator.add, "add", "__add__"),
        Operator("-", operator.sub, "sub", "__sub__"),
        Operator("*", operator.mul, "mul", "__mul__"),
        Operator("/", operator.truediv, "div", "__truediv__"),
        Operator("//", operator.floordiv, "floor_divide", "__floordiv__"),
        Operator("%", operator.mod, "remainder", "__mod__"),
        Operator("**", operator.pow, "pow", "__pow__"),
        Operator("@", operator.matmul, "matmul", "__matmul__"),
        Operator("&", operator.and_, "bitwise_and", "__and__"),
        Operator("|", operator.or_, "bitwise_or", "__or__"),
        Operator("^", operator.xor, "bitwise_xor", "__xor__"),
        Operator("==", operator.eq, "eq", "__eq__"),
        Operator("!=", operator.ne, "ne", "__ne__"),
        Operator("<", operator.lt, "lt", "__lt__"),
        Operator("<=", operator.le, "le", "__le__"),
        Operator(">", operator.gt, "gt", "__gt__"),
        Operator(">=", operator.ge, "ge", "__ge__"),
        Operator("[]", operator.getitem, "getitem", "__getitem__"),
        Operator("neg", operator.neg, "neg", "__neg__", 1),
        Operator("~", operator.invert, "bitwise_not", "__invert__", 1),
    )
}
# Registry-style names of the operators, for the nodes form and torch's function spellings
# (`torch.add(a, b)`) when the registry has no function of that name.
OPERATOR_ALIASES = {o.rule: o.symbol for o in OPERATORS.values()} | {
    "true_divide": "/",
    "subtract": "-",
    "multiply": "*",
    "divide": "/",
}


# -- Tensor attributes that are not registry functions --------------------------------------


def _t_shape(s):
    return tuple(reversed(s))


def _mt_shape(s):
    if len(s) < 2:
        raise ShapeError(
            f"tensor.mT is only supported on matrices or batches of matrices. Got {len(s)}-D "
            "tensor.",
            op="mT",
            shapes=[s],
        )
    return (*s[:-2], s[-1], s[-2])


@dataclass(frozen=True)
class Attr:
    name: str
    property: bool  # `x.T` (no call) or `x.float()`
    shape: Callable
    dtype: Callable  # input dtype -> output dtype
    grad: bool = True  # False: the result never requires grad (detach)


def _same(s):
    return tuple(s)


TENSOR_ATTRS = {
    a.name: a
    for a in (
        Attr("T", True, _t_shape, lambda d: d),
        Attr("mT", True, _mt_shape, lambda d: d),
        Attr("float", False, _same, lambda d: _dt.float32),
        Attr("double", False, _same, lambda d: _dt.float64),
        Attr("long", False, _same, lambda d: _dt.int64),
        Attr("bool", False, _same, lambda d: _dt.bool_),
        Attr("detach", False, _same, lambda d: d, grad=False),
    )
}


# -- resolution ---------------------------------------------------------------------------


@dataclass(eq=False)
class Callee:
    """Everything the checker and the interpreter need about one `fn`."""

    fn: str
    label: str  # for messages: 'sum', 'operator +', 'Tensor.T'
    call: Callable
    signature: inspect.Signature
    operands: frozenset  # parameters that are tensor operands even when given a number
    shape: Rule
    dtype: Rule
    cost: Rule | None = None  # the FLOP estimate's rule (registry: cost=); None: pointwise
    memory: Rule | None = None  # the peak bytes' rule (registry: memory=); None: BUFFERS
    differentiable: bool = True
    picks: bool = False  # indexing: also picks one tensor of a tuple-valued result


@dataclass(eq=False)
class Rule:
    """A shape or dtype rule with what its signature says: the parameters it takes by name
    (the checker passes the function's same-named arguments by keyword) and whether a call
    binds at all (a misfit is a registry bug, not the client's error)."""

    fn: Callable | None
    sig: inspect.Signature | None
    names: frozenset
    # Those of `names` that are operands: positional parameters (the registry's convention:
    # operands positional, attributes keyword-only), so an optional operand given by name
    # (`clamp(x, min=0.5)`) is still adapted as an operand.
    operands: frozenset = frozenset()

    @classmethod
    def of(cls, fn) -> Rule:
        try:
            sig = None if fn is None else inspect.signature(fn)
        except (TypeError, ValueError):
            sig = None
        params = sig.parameters.values() if sig else ()
        names = frozenset(
            p.name for p in params if p.kind in (_P.POSITIONAL_OR_KEYWORD, _P.KEYWORD_ONLY)
        )
        operands = frozenset(p.name for p in params if p.kind is _P.POSITIONAL_OR_KEYWORD)
        return cls(fn, sig, names, operands)


def _op_signature(op) -> tuple[inspect.Signature, frozenset]:
    """The signature `frontend.make_function` gives an op: operands, then attributes
    (positional or keyword), as torch's Python bindings take them."""
    params = []
    if op.variadic:
        params.append(_P("tensors", _P.POSITIONAL_OR_KEYWORD))
    else:
        params += [_P(n, _P.POSITIONAL_OR_KEYWORD) for n in op.inputs]
    kw_only = False
    for name, default in op.attrs.items():
        required = default is _P.empty
        kw_only = kw_only or (required and params and params[-1].default is not _P.empty)
        kind = _P.KEYWORD_ONLY if kw_only else _P.POSITIONAL_OR_KEYWORD
        params.append(_P(name, kind, default=default))
    return inspect.Signature(params), frozenset(["tensors"] if op.variadic else op.inputs)


def _function_signature(f) -> tuple[inspect.Signature, frozenset]:
    if f.op is not None and getattr(f.fn, "__module__", None) == _frontend.__name__:
        return _op_signature(f.op)
    sig = inspect.signature(f.fn)
    # A parameter without a default taken positionally is an operand (`pow(input, exponent)`
    # passes a number as an operand); parameters with defaults are attributes unless given a
    # tensor (`linear(x, w, b)`), which the checker sees from the value.
    operands = frozenset(
        p.name
        for p in sig.parameters.values()
        if p.default is _P.empty and p.kind in (_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD)
    )
    return sig, operands


def _default_dtype_rule(op):
    def rule(*dtypes, **_):
        return default_dtype(op, dtypes)

    return rule


def _function_callee(fn: str, f, call=None, label=None) -> Callee:
    sig, operands = _function_signature(f)
    op = f.op
    dtype = Rule.of(f.dtype) if f.dtype is not None else Rule.of(_default_dtype_rule(op))
    return Callee(
        fn=fn,
        label=label or f.name,
        call=call or f.fn,
        signature=sig,
        operands=operands,
        shape=Rule.of(f.shape),
        dtype=dtype,
        cost=Rule.of(f.cost or costs.pointwise),
        memory=Rule.of(f.memory or costs.BUFFERS),
        differentiable=op.differentiable if op is not None else True,
    )


def _op_callee(fn: str, op, call, label) -> Callee:
    sig, operands = _op_signature(op)
    dtype = op.dtype_rule if op.dtype_rule is not None else _default_dtype_rule(op)
    return Callee(
        fn=fn,
        label=label,
        call=call,
        signature=sig,
        operands=operands,
        shape=Rule.of(op.shape),
        dtype=Rule.of(dtype),
        cost=Rule.of(op.cost or costs.pointwise),
        memory=Rule.of(op.memory or costs.BUFFERS),
        differentiable=op.differentiable,
    )


def _operator_callee(o: Operator) -> Callee | None:
    if not hasattr(Tensor, o.dunder):
        return None
    label = f"operator {o.symbol}" if o.symbol != "[]" else "indexing"
    if o.rule in FUNCTIONS:
        c = _function_callee(o.symbol, FUNCTIONS[o.rule], call=o.call, label=label)
    elif o.rule in OPS:
        c = _op_callee(o.symbol, OPS[o.rule], o.call, label)
    else:
        return None
    # Python's operator takes exactly its operands, positionally.
    names = list(c.signature.parameters)[: o.arity]
    c.signature = inspect.Signature([_P(n, _P.POSITIONAL_ONLY) for n in names])
    c.picks = o.symbol == "[]"
    c.operands = frozenset(names[:1]) if c.picks else frozenset(names)
    return c


def _attr_callee(a: Attr) -> Callee:
    call = operator.attrgetter(a.name) if a.property else operator.methodcaller(a.name)
    return Callee(
        fn="." + a.name,
        label=f"Tensor.{a.name}",
        call=call,
        signature=inspect.Signature([_P("input", _P.POSITIONAL_ONLY)]),
        operands=frozenset(["input"]),
        shape=Rule(a.shape, None, frozenset()),
        dtype=Rule(a.dtype, None, frozenset()),
        cost=Rule.of(costs.pointwise),
        memory=Rule.of(costs.BUFFERS),  # a view, or one cast copy
        differentiable=a.grad,
    )


_CACHE: dict[str, tuple[object, Callee]] = {}


def resolve(fn: str) -> Callee:
    """The Callee of an equation's `fn`; ProgramError(kind='unknown_function') if none."""
    key = FUNCTIONS.get(fn)
    hit = _CACHE.get(fn)
    if hit is not None and hit[0] is key:
        return hit[1]
    callee = None
    if key is not None:
        callee = _function_callee(fn, key)
    elif fn in OPERATORS:
        callee = _operator_callee(OPERATORS[fn])
    elif fn.startswith(".") and fn[1:] in TENSOR_ATTRS and hasattr(Tensor, fn[1:]):
        callee = _attr_callee(TENSOR_ATTRS[fn[1:]])
    if callee is None:
        raise ProgramError(_unknown_message(fn), kind="unknown_function", op=fn)
    _CACHE[fn] = (key, callee)
    return callee


def _unknown_message(fn: str) -> str:
    if fn in OPERATORS:
        o = OPERATORS[fn]
        return f"operator {fn} is not available: the registry has no {o.rule!r}"
    if fn.startswith("."):
        return f"Tensor has no attribute {fn[1:]!r} in this language"
    return f"unknown function {fn!r}; GET /v1/ops lists the registry"


def function_name(dotted: str) -> str | None:
    """A registry key for a name as written (`torch.nn.functional.relu` → `relu`), an
    operator symbol for torch's operator functions (`torch.add` → `+`) when the registry has
    no such function, or None."""
    name = dotted
    for p in PREFIXES:
        if name.startswith(p):
            name = name[len(p) :]
            break
    if name in FUNCTIONS:
        return name
    if name in OPERATOR_ALIASES and OPERATOR_ALIASES[name] in OPERATORS:
        return OPERATOR_ALIASES[name]
    return None


def method_name(name: str, called: bool) -> str | None:
    """The `fn` of `x.<name>(...)` (called) or `x.<name>`, or None when Tensor has no such
    method or attribute in this language."""
    f = FUNCTIONS.get(name)
    if called and f is not None and f.method and "." not in name:
        return name
    a = TENSOR_ATTRS.get(name)
    if a is not None and a.property != called and hasattr(Tensor, name):
        return "." + name
    if called and f is None and name in OPERATOR_ALIASES:  # x.add(y) without a registry add
        return OPERATOR_ALIASES[name]
    return None
