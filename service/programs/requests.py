"""The service's side of `engine.program`: compile a request's program, check it against the
configured limits, run engine code safely, and turn every way that can fail into a problem.

Nothing here knows an op: parsing, checking and interpreting are the engine's. This module
only maps its errors (`ProgramError.kind`) to problem types, with a JSON pointer into the
request, and keeps numpy's floating-point errors, memory and recursion failures from ever
becoming a 500: NaN and infinities are results (the wire writes them exactly), the rest are
problem documents.
"""

import logging
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

import numpy as np

from engine import Tensor
from engine.errors import ArgumentError, DTypeError, EngineError, GradError, ShapeError
from engine.program import Limits, Program, ProgramError, parse_expr, parse_nodes
from engine.shapes import extent
from service.problems import PROBLEM_TYPES, ProblemError, json_pointer
from service.programs.lanes import LANE
from service.schemas.programs import ProgramCreate
from service.settings import Settings
from service.wire import decode_tensors

log = logging.getLogger(__name__)

# ProgramError.kind -> problem type slug.
KIND_TYPES = {
    "syntax": "program-syntax",
    "input": "program-syntax",
    "forbidden": "forbidden-construct",
    "limit": "limit-exceeded",
    "unknown_function": "unknown-name",
    "undefined": "unknown-name",
    "duplicate": "invalid-graph",
    "cycle": "invalid-graph",
    "arity": "invalid-arguments",
    "argument": "invalid-arguments",
    "shape": "shape-mismatch",
    "dtype": "dtype-mismatch",
    "no_rule": "unsupported-function",
    "runtime": "evaluation-error",
}

# Engine exceptions raised outside the interpreter loop (backward, functional.*).
_ENGINE_TYPES: tuple[tuple[type[Exception], str], ...] = (
    (ShapeError, "shape-mismatch"),
    (DTypeError, "dtype-mismatch"),
    (ArgumentError, "invalid-arguments"),
    (GradError, "evaluation-error"),
    (EngineError, "evaluation-error"),
)


# What one equation costs beyond its arithmetic (a Python call and a numpy dispatch, forward
# and backward), counted as floating-point operations so that many passes over a program of
# many tiny ops are held to `max_flops` too.
EQN_OVERHEAD_FLOPS = 10_000


def repeated_passes_problem(
    passes: int, per_pass: int, maximum: int, pointer: str, what: str
) -> ProblemError | None:
    """A limit-exceeded problem when `passes` over a program cost more than `maximum`."""
    cost = passes * per_pass
    detail = (
        f"the {what} needs {passes} passes over the program, each costing about {per_pass} "
        f"floating-point operations (overheads included), {cost} in all; the limit is "
        f"{maximum}"
    )
    return flops_problem(cost, maximum, pointer, detail)


def flops_problem(
    cost: int, maximum: int, pointer: str, detail: str, limit: str = "max_flops"
) -> ProblemError | None:
    """A limit-exceeded problem (`limit`: max_flops, or max_request_bytes for bytes) when
    `cost` is over `maximum`, else None."""
    if cost <= maximum:
        return None
    return PROBLEM_TYPES["limit-exceeded"].at(
        pointer, detail, limit=limit, value=cost, maximum=maximum
    )


# Settings by identity -> (settings, limits). A cache keyed by the settings themselves would
# hash every field of the (frozen) model on each lookup, several times per request.
_LIMITS: dict[int, tuple[Settings, Limits]] = {}


def limits_for(settings: Settings) -> Limits:
    """The engine's limits from the settings of the same names."""
    hit = _LIMITS.get(id(settings))
    if hit is not None and hit[0] is settings:
        return hit[1]
    names = {f.name for f in fields(Limits)}
    limits = Limits(**{k: v for k, v in settings.model_dump().items() if k in names})
    if len(_LIMITS) >= 64:  # settings objects come and go in tests; the app keeps one
        _LIMITS.clear()
    _LIMITS[id(settings)] = (settings, limits)
    return limits


def compile_program(body: ProgramCreate, limits: Limits) -> Program:
    """The body's program as the engine's IR (parsed programs are cached by their text).
    Compiling is Python: a long program takes the heavy lane, for a worker's threads
    compiling long programs at once starve its event loop of the GIL (four of them held
    /livez at a p99 of 0.3-0.5 s)."""
    size = len(body.expr) if body.expr is not None else len(body.nodes or ()) * NODE_CHARS
    with LANE.admitted(size * COMPILE_FLOPS_PER_CHAR), guard(body, limits):
        if body.expr is not None:
            return parse_expr(body.expr, limits)
        assert body.nodes is not None
        nodes = [n.model_dump() for n in body.nodes]
        outputs = list(getattr(body, "outputs", None) or ())
        return parse_nodes(nodes, outputs, list(body.inputs), limits=limits)


# Compiling costs about 40 us a statement of ~6 characters, what numpy does with ~10^5
# floating-point operations: the heavy lane weighs program text at that rate (a node of the
# JSON form as a statement).
COMPILE_FLOPS_PER_CHAR = 12_000
NODE_CHARS = 6


def decode_inputs(body: ProgramCreate, settings: Settings) -> dict[str, Tensor]:
    """The body's input tensors, every limit checked before any of them is decoded."""
    decoded = decode_tensors(
        body.inputs,
        pointer="/inputs",
        max_elements=settings.max_tensor_elements,
        max_total_elements=settings.max_total_elements,
        max_ndim=settings.max_ndim,
    )
    return {name: Tensor(array, requires_grad=rg) for name, (array, rg) in decoded.items()}


def _node_pointer(body: ProgramCreate, node: str) -> str:
    for i, n in enumerate(body.nodes or ()):
        if n.id == node:
            return json_pointer(["nodes", i])
    return "/nodes"


def _limit_value(err: ProgramError, body: ProgramCreate) -> int | None:
    """What was asked of a limit, where the request or the error shows it."""
    shape = err.shapes[0] if err.shapes and err.shapes[0] is not None else None
    if err.limit == "max_tensor_elements" and shape is not None:
        return extent(shape)  # an empty tensor's is what it spans
    if err.limit == "max_ndim" and shape is not None:
        return len(shape)
    if err.limit == "max_expr_chars" and body.expr is not None:
        return len(body.expr)
    if err.limit == "max_nodes" and body.nodes is not None:
        return len(body.nodes)
    return None


def program_problem(err: ProgramError, body: ProgramCreate, limits: Limits) -> ProblemError:
    """The problem document of a refused (or failed) program, located in the request."""
    slug = KIND_TYPES.get(err.kind, "evaluation-error")
    extensions: dict[str, Any] = {"kind": err.kind}
    if err.node is not None:
        extensions["node"] = err.node
        pointer = _node_pointer(body, err.node)
    elif err.line is not None:
        extensions.update(line=err.line, column=err.col)
        pointer = "/expr"
    else:
        pointer = "/expr" if body.expr is not None else "/nodes"
    if err.op is not None:
        extensions["op"] = err.op
    if err.shapes:
        extensions["shapes"] = err.shapes
    if err.kind == "limit" and err.limit is not None:
        extensions["limit"] = err.limit
        value = _limit_value(err, body)
        value = err.value if value is None else value
        if value is not None:
            extensions["value"] = value
        maximum = getattr(limits, err.limit, None)
        if maximum is not None:
            extensions["maximum"] = maximum
    return PROBLEM_TYPES[slug].at(pointer, err.message, summary=str(err), **extensions)


def engine_problem(exc: Exception, pointer: str = "", op: str | None = None) -> ProblemError:
    """An engine exception raised outside the interpreter (backward, jacobian...)."""
    slug = next(s for cls, s in _ENGINE_TYPES if isinstance(exc, cls))
    extensions: dict[str, Any] = {}
    if op is not None or getattr(exc, "op", None):
        extensions["op"] = op or exc.op  # type: ignore[attr-defined]
    if getattr(exc, "shapes", None):
        extensions["shapes"] = [list(s) for s in exc.shapes]  # type: ignore[attr-defined]
    return PROBLEM_TYPES[slug].at(pointer or None, str(exc), **extensions)


class guard:  # noqa: N801 - used as `with guard(...)`, like a contextmanager function
    """Run engine code: floating-point errors give NaN/inf (never warnings or exceptions),
    and every failure becomes a problem document (never a 500).

    A class rather than a `@contextmanager` generator: it is entered several times per
    request, and this costs a fraction as much."""

    __slots__ = ("_body", "_errstate", "_limits", "_pointer")

    def __init__(
        self, body: ProgramCreate, limits: Limits | None = None, pointer: str = ""
    ) -> None:
        self._body, self._limits, self._pointer = body, limits, pointer
        self._errstate = np.errstate(all="ignore")

    def __enter__(self) -> None:
        self._errstate.__enter__()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb) -> bool:
        self._errstate.__exit__(kind, exc, tb)
        if exc is None or isinstance(exc, ProblemError):
            return False
        body, pointer = self._body, self._pointer
        if isinstance(exc, ProgramError):
            raise program_problem(exc, body, self._limits or Limits()) from exc
        if isinstance(exc, EngineError):
            raise engine_problem(exc, pointer) from exc
        if isinstance(exc, MemoryError | RecursionError):
            log.warning("request exhausted %s", type(exc).__name__)
            raise PROBLEM_TYPES["insufficient-memory"].error(
                "The server could not hold this computation "
                f"({'out of memory' if isinstance(exc, MemoryError) else 'too deeply recursive'}"
                "); lower the tensor sizes or the program's size.",
                headers={"Retry-After": "5"},
            ) from None
        if isinstance(exc, ArithmeticError | ValueError | TypeError | IndexError):
            # numpy's own refusals reaching us from an engine call: the request's values.
            log.info("engine call failed: %r", exc)
            raise PROBLEM_TYPES["evaluation-error"].at(
                pointer or None, str(exc), summary=f"{type(exc).__name__}: {exc}"
            ) from None
        return False


def tensors_only(values: Mapping[str, Any]) -> dict[str, Tensor]:
    """Program results by name, tuple results (`max(x, dim=0)`) as `name[0]`, `name[1]`..."""
    out: dict[str, Tensor] = {}
    for name, value in values.items():
        if isinstance(value, tuple | list):
            for i, item in enumerate(value):
                out[f"{name}[{i}]"] = _as_tensor(item)
        else:
            out[name] = _as_tensor(value)
    return out


def _as_tensor(value: Any) -> Tensor:
    return value if isinstance(value, Tensor) else Tensor(np.asarray(value))
