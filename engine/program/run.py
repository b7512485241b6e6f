"""The interpreter: one loop evaluating a Program's equations with the engine.

Every call goes through the table `names.resolve` reads, i.e. `FUNCTIONS[fn].fn(*args,
**kwargs)` for registry functions, Python's operator (so `Tensor.__add__`...) for operator
symbols, and the Tensor attribute for the short whitelist. Values nobody reads any more are
dropped as the loop goes (the backward graph keeps what it needs)."""

from __future__ import annotations

from collections.abc import Mapping

from ..deadline import check
from ..errors import EngineError
from .errors import ProgramError
from .ir import List, Program, Ref
from .names import resolve


def _value(a, env):
    if isinstance(a, Ref):
        return env[a.id]
    if isinstance(a, List):
        return [_value(x, env) for x in a]
    if isinstance(a, tuple):
        return tuple(_value(x, env) for x in a)
    return a


def _last_uses(program: Program) -> dict[int, list[str]]:
    """Equation index -> ids read for the last time there (outputs are never dropped);
    computed once per program and kept on it (parsed programs are shared between calls)."""
    drops = program.__dict__.get("_last_uses")
    if drops is None:
        drops = program.__dict__["_last_uses"] = _find_last_uses(program)
    return drops


def _find_last_uses(program: Program) -> dict[int, list[str]]:
    keep = {r.id for _, r in program.outputs}
    last: dict[str, int] = {}
    for i, eqn in enumerate(program.eqns):
        for r in eqn.refs():
            last[r.id] = i
    drops: dict[int, list[str]] = {}
    for name, i in last.items():
        if name not in keep:
            drops.setdefault(i, []).append(name)
    return drops


def run(program: Program, inputs: Mapping, *, keep_all: bool = False) -> dict:
    """Evaluate `program` on `inputs` (name -> engine Tensor or number). Returns the outputs
    by name (every value by id as well with `keep_all`). Check the program first: errors here
    are the engine's, reported with kind `runtime` at the equation's line/column or node."""
    env = dict(inputs)
    missing = [n for n in program.inputs if n not in env]
    if missing:
        raise ProgramError(f"inputs not given: {', '.join(missing)}", kind="undefined").at(
            program.where_input(missing[0])
        )
    drops = {} if keep_all else _last_uses(program)
    for i, eqn in enumerate(program.eqns):
        check()  # a time limit set by the caller stops the program between equations
        callee = resolve(eqn.fn)
        args = [env[a.id] if type(a) is Ref else _value(a, env) for a in eqn.args]
        kwargs = {k: _value(v, env) for k, v in eqn.kwargs} if eqn.kwargs else {}
        try:
            env[eqn.id] = callee.call(*args, **kwargs)
        except (EngineError, ArithmeticError, ValueError, TypeError, IndexError) as e:
            raise ProgramError(f"{callee.label}: {e}", kind="runtime", op=callee.label).at(
                eqn.where
            ) from e
        if i in drops:
            for name in drops[i]:
                env.pop(name, None)
    out = {name: env[ref.id] for name, ref in program.outputs}
    if keep_all:
        out.update(env)
    return out
