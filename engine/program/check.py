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

Peak bytes: each callee's memory rule (registry `memory=`, `ops.costs`) bounds what its
forward and its backward allocate at once, temporaries included. The request's estimate is a
simple upper bound: every value (inputs and results, kept as if none were ever freed, plus
`costs.VALUE_OVERHEAD` each), doubled with `backward=True` (a gradient per value), plus the
largest single call's peak (forward, or backward too with `backward=True`, plus
`costs.OVERHEAD`), held to `max_request_bytes` as each equation is checked.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..ops import costs
from ..shapes import extent
from ..tensor import Tensor
from .errors import ProgramError
from .infer import infer
from .ir import Program
from .limits import DEFAULT, Limits
from .specs import Multi, TensorSpec, spec_of, values_read

_NUMBER = (bool, int, float)


@dataclass
class Checked:
    """The result of `check`: every value's spec, and the totals the limits were applied to."""

    program: Program
    specs: dict  # input name or equation id -> TensorSpec (or Multi); constants are absent
    flops: int
    elements: int
    bytes: int = 0  # the estimated peak (see the module docstring)

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
    return Checked(checked.program, specs, checked.flops, checked.elements, checked.bytes)


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
    token = values_read.set(reads)
    try:
        checked = _check(program, inputs, limits, backward)
    finally:
        values_read.reset(token)
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
    budget.check_bytes(None)
    for eqn in program.eqns:
        try:
            out, cost = infer(eqn, specs)
            for s in out if isinstance(out, Multi) else (out,):
                budget.tensor(s, eqn.id)
            budget.add_flops(cost.flops)
            budget.add_call(cost, eqn.fn)
        except ProgramError as e:
            raise e.at(eqn.where) from None
        specs[eqn.id] = out
    return Checked(program, specs, budget.flops, budget.elements, budget.bytes)


class _Budget:
    def __init__(self, limits: Limits, backward: bool):
        self.limits = limits
        self.factor_e, self.factor_f = (2, 3) if backward else (1, 1)
        self.backward = backward
        self.elements = 0
        self.flops = 0
        self.kept = 0  # bytes of every value (and gradient) so far
        self.call = 0  # the largest call's peak so far
        self.call_fn = None

    @property
    def bytes(self) -> int:
        return self.kept + self.call

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
        span = n or extent(s.shape)  # an empty tensor counts what its other dimensions span
        if span > lim.max_tensor_elements:
            empty = f"is empty, but its non-zero dimensions span {span} elements"
            what = f"has {n} elements" if n else empty
            raise ProgramError(
                f"{name}: a tensor of shape {s.shape} {what}, over the limit of "
                f"{lim.max_tensor_elements}",
                kind="limit",
                limit="max_tensor_elements",
                shapes=[s.shape],
            )
        self.elements += n * self.factor_e
        self.kept += (costs.nbytes(s) + costs.VALUE_OVERHEAD) * self.factor_e
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
                value=self.flops,
            )

    def add_call(self, cost, fn: str) -> None:
        peak = max(cost.forward, cost.backward) if self.backward else cost.forward
        if peak + costs.OVERHEAD > self.call:
            self.call, self.call_fn = peak + costs.OVERHEAD, fn
        self.check_bytes(fn)

    def check_bytes(self, fn: str | None) -> None:
        """Refuse once the values so far and the largest call's peak exceed the limit (both
        only grow, so the first equation over it is the one named)."""
        total, maximum = self.bytes, self.limits.max_request_bytes
        if total <= maximum:
            return
        grads = " and their gradients" if self.backward else ""
        call = f"; the largest call, {self.call_fn}, {self.call}" if self.call_fn else ""
        raise ProgramError(
            f"the program needs an estimated {total} bytes at its peak ({self.kept} for its "
            f"values{grads}{call}), over the limit of {maximum}",
            kind="limit",
            limit="max_request_bytes",
            op=fn,
            value=total,
        )
