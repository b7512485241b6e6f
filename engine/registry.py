"""The op registry: every op is declared once, here-shaped, in a family module under ops/.

An `Op` record carries the whole op: the numpy forward, one vector-Jacobian product per
differentiable input (a formula), optionally a faster in-place numpy kernel for some of them
(`fast_vjp`), the shape, dtype and cost rules and the grad_fn name; the public `Function`s
(overloads, aliases, torch's argument parsing) are declared right beside it. The Tensor
methods, the functions in `engine`, the expression parser, the JSON node format and the
API's op list all read `OPS` and `FUNCTIONS`.

A VJP names what it needs by parameter name, as derivatives.yaml does: `g` (the incoming
gradient), `ans` (the op's output), the forward's input names (`x`, `y`...), `<input>_shape`
and any attribute. The node saves only what the VJPs of inputs that need a gradient use, so
intermediates nobody needs are freed during the forward pass, not after backward. A VJP is
written with the dual helpers (`ops.dual`), so the same formula runs on numpy arrays and,
under create_graph, on Tensors. A `fast_vjp` takes the same parameters, is only ever given
numpy arrays, and must return what the formula returns (a test compares every one);
`Op.array_vjps` is the one place that picks it for the numpy backward.

Rules, the one calling convention (what `program.check` and `dispatch` call):

- shape: `shape(*operand shapes, **attributes) -> shape` (or a list of shapes for a
  tuple-valued op). In the rule's signature the operands are the positional parameters, in
  the op's (or function's) order, a Python number passed as `()`, an optional operand
  defaulting to None or `()`; every attribute is keyword-only (after `*`), e.g.
  `conv_shape(input, weight, bias=(), *, stride, padding, dilation, groups)`. Callers pass
  operands positionally (`dispatch`) or, when the rule names the parameter, by name
  (`program.check`, so a left-out optional operand does not shift the next one).
- dtype: `dtype(*operand dtypes, **attributes) -> dtype`, a Python number operand as its
  type (`int`, `float`, `bool`), attributes as their values (`return_indices=False`); by
  default `default_dtype` (torch's promotion).
- cost: `cost(*tensor operand shapes, out=(result shapes...), **named attributes) -> FLOPs`,
  the estimate `program.check` holds to `max_flops`; numbers are not operands here, and only
  the attributes the rule names are passed. By default `ops.costs.pointwise` (the larger of
  the output and input element counts); the shared family rules live in `ops.costs`.
- memory: `memory(*tensor operand specs, out=(result specs...), **named attributes) ->
  ops.costs.Peak(forward, backward)`, the bytes the forward allocates at its peak (results
  and every temporary) and the backward (the gradients it returns and every temporary); the
  specs are shapes with `.dtype`. An upper bound, tested on every function
  (tests/engine/test_cost_bounds.py). By default `ops.costs.BUFFERS`: a few buffers the size
  of the largest operand or result.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import dtypes as _dt
from .errors import UnknownOpError
from .frontend import make_function
from .graph import Node

OPS: dict[str, Op] = {}


@dataclass(eq=False)
class Function:
    """A public callable: `engine.<name>`, the expression language's `<name>(...)` and, with
    `method`, `Tensor.<name>`. Backed by one primitive `op`, or composed of several
    (matmul, linear, cross_entropy...) as torch composes them, so grad_fn graphs match."""

    name: str
    fn: Callable
    op: Op | None
    method: bool
    shape: Callable | None
    doc: str
    family: str
    dtype: Callable | None = None  # (*operand dtypes or number types, **attrs) -> dtype
    cost: Callable | None = None  # (*tensor operand shapes, out=shapes) -> FLOPs; None: op's
    memory: Callable | None = None  # (*operand specs, out=specs) -> ops.costs.Peak; None: op's

    def result_dtype(self, *dtypes, **attrs):
        """The output dtype for operands of these dtypes (Python number types for numbers)."""
        if self.dtype is not None:
            return self.dtype(*dtypes, **attrs)
        return default_dtype(self.op, dtypes)


def default_dtype(op, dtypes):
    """The dtype rule every op follows unless it declares its own: torch's promotion for
    elementwise ops, integers computed as float for `to_float` ops, else the first operand's."""
    tensors = [d for d in dtypes if isinstance(d, np.dtype)]
    numbers = [d(0) for d in dtypes if d is int or d is float or d is bool]
    if op is not None and op.promote:
        out = _dt.result_type([np.empty((1,), d) for d in tensors], numbers)
    elif tensors:
        out = tensors[0]
    else:
        out = _dt.default_float
    if op is not None and op.to_float and out.kind != "f":
        out = _dt.default_float
    return out


FUNCTIONS: dict[str, Function] = {}

_SPECIAL = ("g", "ans")


def camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


@dataclass(eq=False)
class Op:
    name: str
    forward: Callable
    inputs: tuple[str, ...]  # names of the tensor operands, in order
    variadic: bool  # forward(*xs): a list of tensors (cat, stack)
    attrs: dict  # attribute name -> default (inspect.Parameter.empty when required)
    vjps: tuple  # per input: callable, or None when no gradient flows to it
    grad_fn: Callable[[dict], str] | str
    shape: Callable | None
    doc: str
    family: str
    promote: bool  # elementwise type promotion over all operands
    to_float: bool  # integer operands are computed in the default float dtype
    differentiable: bool
    n_outputs: int  # 1, or -1 when forward returns a tuple of variable length
    method: str | None
    dtype_rule: Callable | None = None
    cost: Callable | None = None  # (*tensor operand shapes, out=shapes) -> FLOPs
    memory: Callable | None = None  # (*operand specs, out=specs) -> ops.costs.Peak (bytes)
    fast_vjps: tuple = ()  # per input: an in-place numpy kernel equal to its VJP, or None
    array_vjps: tuple = ()  # per input: what the numpy backward runs (fast_vjp or the VJP)
    # Filled in by _plan: per VJP, (kind, key) pairs saying where each argument comes from.
    plans: tuple = field(default=(), repr=False)
    saves_out: tuple = field(default=(), repr=False)
    saves_in: tuple = field(default=(), repr=False)
    node_classes: dict = field(default_factory=dict, repr=False)
    save_masks: tuple = field(default=(), repr=False)  # per VJP: bit mask of operands read
    cls: type | None = field(default=None, repr=False)  # the Node class when it is fixed

    def node_class(self, attrs):
        name = self.grad_fn if isinstance(self.grad_fn, str) else self.grad_fn(attrs)
        cls = self.node_classes.get(name)
        if cls is None:
            cls = type(name, (Node,), {"__slots__": (), "op": self})
            self.node_classes[name] = cls
        return cls

    @property
    def signature(self) -> str:
        args = ["*tensors"] if self.variadic else list(self.inputs)
        for k, v in self.attrs.items():
            args.append(k if v is inspect.Parameter.empty else f"{k}={v!r}")
        return f"{self.name}({', '.join(args)})"


def defop(
    name: str,
    *,
    vjp=(),
    grad_fn=None,
    shape=None,
    promote=False,
    to_float=False,
    differentiable=True,
    n_outputs=1,
    method=False,
    public=True,
    dtype=None,
    cost=None,
    memory=None,
    fast_vjp=(),
    doc=None,
):
    """Decorator registering `forward` as op `name`.

    With `public`, a front end (`engine.<name>`, and `Tensor.<name>` with `method`) is
    generated from the forward's signature; ops that parse their arguments the torch way
    (`x.reshape(2, 3)`, `x.sum(1)`) set `public=False` and declare their own with `deffn`.

    The forward's positional parameters are the tensor operands; keyword-only ones are
    attributes with their defaults. `vjp` is one callable per operand (or a single callable
    for a variadic op, returning the tuple of all gradients). `fast_vjp`, shaped like `vjp`
    (None where there is none), holds numpy kernels the backward runs instead of the
    formula on arrays; `cost` is the FLOP estimate's rule and `memory` the peak bytes' (see the
    module docstring)."""

    def register(forward):
        if name in OPS:
            raise ValueError(f"op {name!r} registered twice")
        sig = inspect.signature(forward)
        inputs, attrs, variadic = [], {}, False
        for p in sig.parameters.values():
            if p.kind is p.VAR_POSITIONAL:
                variadic = True
                inputs.append(p.name)
            elif p.kind is p.KEYWORD_ONLY:
                attrs[p.name] = p.default
            else:
                inputs.append(p.name)
        vjps = vjp if isinstance(vjp, tuple) else (vjp,)
        if differentiable and not variadic and len(vjps) != len(inputs):
            raise ValueError(f"op {name!r}: {len(inputs)} inputs but {len(vjps)} VJPs")
        fast = fast_vjp if isinstance(fast_vjp, tuple) else (fast_vjp,)
        fast = fast + (None,) * (len(vjps) - len(fast))
        for f, v in zip(fast, vjps, strict=True):
            if f is not None and inspect.signature(f) != inspect.signature(v):
                raise ValueError(f"op {name!r}: fast_vjp {f.__name__} differs from its VJP's")
        family = forward.__module__.rsplit(".", 1)[-1]
        text = doc or (inspect.getdoc(forward) or "").split("\n")[0]
        op = Op(
            name=name,
            forward=forward,
            inputs=tuple(inputs),
            variadic=variadic,
            attrs=attrs,
            vjps=vjps,
            grad_fn=grad_fn or f"{camel(name)}Backward0",
            shape=shape,
            doc=text,
            family=family,
            promote=promote,
            to_float=to_float,
            differentiable=differentiable,
            n_outputs=n_outputs,
            method=method,
            dtype_rule=dtype,
            cost=cost,
            memory=memory,
            fast_vjps=fast,
            # The one place a fast_vjp is chosen: the numpy backward runs these.
            array_vjps=tuple(f or v for f, v in zip(fast, vjps, strict=True)),
        )
        _plan(op)
        OPS[name] = op
        if public:
            front = make_function(op)
            f = Function(name, front, op, method, shape, text, family, dtype, cost, memory)
            _add_function(f)
            return front  # so the family module can call its own ops on Tensors
        return forward

    return register


def _plan(op: Op) -> None:
    """Resolve each VJP's parameter names to the places its arguments come from
    (`Op.plans`; autograd.backprop.vjp_args reads them) and what the node must save."""
    plans, saves_in, saves_out = [], [], []
    index = {n: i for i, n in enumerate(op.inputs)}
    for fn in op.vjps:
        if fn is None:
            plans.append(None)
            saves_in.append(())
            saves_out.append(False)
            continue
        plan, ins, out = [], [], False
        for pname in inspect.signature(fn).parameters:
            if pname == "g":
                plan.append(("g", None))
            elif pname == "ans":
                plan.append(("ans", None))
                out = True
            elif pname in index:
                # A variadic op's operands arrive together, as one tuple.
                plan.append(("all", None) if op.variadic else ("in", index[pname]))
                ins.append(-1 if op.variadic else index[pname])
            elif (m := re.fullmatch(r"(\w+)_shape", pname)) and m.group(1) in index:
                plan.append(("shapes", None) if op.variadic else ("shape", index[m.group(1)]))
            elif pname in op.attrs:
                plan.append(("attr", pname))
            else:
                raise ValueError(f"op {op.name!r}: VJP parameter {pname!r} names nothing")
        plans.append(tuple(plan))
        saves_in.append(tuple(ins))
        saves_out.append(out)
    op.plans, op.saves_in, op.saves_out = tuple(plans), tuple(saves_in), tuple(saves_out)
    op.save_masks = tuple(-1 if -1 in ins else sum(1 << i for i in set(ins)) for ins in saves_in)
    if isinstance(op.grad_fn, str):
        op.cls = op.node_class({})


def deffn(
    name=None, *, op=None, method=False, shape=None, dtype=None, cost=None, memory=None,
    family=None, doc=None,
):  # fmt: skip
    """Decorator registering a hand-written public function (a composite, or the front end
    of primitive `op`). `shape`, `dtype`, `cost` and `memory` are its rules for validating a
    graph before running it; by default those of `op` (a composite names its own `memory`:
    its intermediates are more than the op's). `family` (the API's grouping) defaults to
    the declaring module's name."""

    def register(fn):
        text = doc or (inspect.getdoc(fn) or "").split("\n")[0]
        fam = family or fn.__module__.rsplit(".", 1)[-1]
        prim = OPS[op] if isinstance(op, str) else op
        rule = shape or (prim.shape if prim else None)
        drule = dtype or (prim.dtype_rule if prim else None)
        crule = cost or (prim.cost if prim else None)
        mrule = memory or (prim.memory if prim else None)
        f = Function(name or fn.__name__, fn, prim, method, rule, text, fam, drule, crule, mrule)
        _add_function(f)
        return fn

    return register


def _add_function(f: Function) -> None:
    if f.name in FUNCTIONS:
        raise ValueError(f"function {f.name!r} registered twice")
    FUNCTIONS[f.name] = f


def get(name: str) -> Op:
    try:
        return OPS[name]
    except KeyError:
        raise UnknownOpError(f"unknown op {name!r}") from None
