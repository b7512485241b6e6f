"""The language's vocabulary: every public function of the engine's registry, so clients and
Swagger users can discover what `expr` and `nodes` accept."""

import inspect
import re
from functools import cache

from fastapi import APIRouter

from engine import frontend
from engine.program import ProgramError
from engine.program.names import OPERATORS, TENSOR_ATTRS, resolve
from engine.registry import FUNCTIONS, Function
from service.http.responses import ORJSONResponse
from service.http.routing import ORJSONRoute
from service.problems import problem_responses
from service.schemas.ops import OpPublic

router = APIRouter(prefix="/v1", tags=["ops"], route_class=ORJSONRoute)

_ADDRESS = re.compile(r"<([\w.]+) object at 0x[0-9a-f]+>")


def _default(value: object) -> str:
    if type(value) is object:  # an "unset" sentinel: torch's signatures say None
        return "None"
    # Other objects print with their address, which changes with every process.
    return _ADDRESS.sub(r"<\1>", repr(value))


def _signature(f: Function) -> str:
    op = f.op
    if op is not None and getattr(f.fn, "__module__", None) == frontend.__name__:
        args = ["tensors"] if op.variadic else list(op.inputs)
        for key, value in op.attrs.items():
            args.append(key if value is inspect.Parameter.empty else f"{key}={_default(value)}")
        return f"{f.name}({', '.join(args)})"
    try:
        params = inspect.signature(f.fn).parameters.values()
    except (TypeError, ValueError):
        return f"{f.name}(...)"
    parts, star = [], False
    for p in params:
        if p.kind is p.KEYWORD_ONLY and not star:
            parts.append("*")
            star = True
        text = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "") + p.name
        star = star or p.kind is p.VAR_POSITIONAL
        parts.append(text if p.default is p.empty else f"{text}={_default(p.default)}")
    return f"{f.name}({', '.join(parts)})"


def _grad_fn(f: Function) -> str | None:
    op = f.op
    if op is None or not op.differentiable:
        return None
    if isinstance(op.grad_fn, str):
        return op.grad_fn
    defaults = {k: v for k, v in op.attrs.items() if v is not inspect.Parameter.empty}
    try:  # the name for a call with default attributes (sum(x) -> SumBackward0)
        return op.grad_fn(defaults)
    except Exception:  # a rule needing an attribute: the name depends on the call
        return None


def _available(fn: str) -> bool:
    try:
        resolve(fn)
    except ProgramError:  # an operator whose registry op is not there (yet)
        return False
    return True


def _operators() -> list[OpPublic]:
    ops = []
    for symbol, o in OPERATORS.items():
        if not _available(symbol):
            continue
        f = FUNCTIONS.get(o.rule)
        if symbol == "[]":
            signature = "input[index]"
        elif o.arity == 1:
            signature = f"{'-' if symbol == 'neg' else symbol}input"
        else:
            signature = f"input {symbol} other"
        ops.append(
            OpPublic(
                name="-x" if symbol == "neg" else symbol,
                kind="operator",
                signature=signature,
                method=False,
                grad_fn=None if f is None else _grad_fn(f),
                family=f.family if f is not None else "operators",
                doc=f"Python's operator, as `{o.rule}`" + (f": {f.doc}" if f else "."),
            )
        )
    return ops


def _attributes() -> list[OpPublic]:
    return [
        OpPublic(
            name=f".{name}",
            kind="attribute",
            signature=f"input.{name}" if a.property else f"input.{name}()",
            method=not a.property,
            grad_fn=None,
            family="tensor",
            doc="The Tensor attribute of the same name"
            + (" (the result does not require grad)." if not a.grad else "."),
        )
        for name, a in TENSOR_ATTRS.items()
        if _available(f".{name}")
    ]


@cache
def catalogue() -> list[dict[str, object]]:
    """Every public function sorted by name, then the operators and Tensor attributes the
    language has; the registry is fixed once `engine` is imported."""
    functions = [
        OpPublic(
            name=f.name,
            kind="function",
            signature=_signature(f),
            method=f.method,
            grad_fn=_grad_fn(f),
            family=f.family,
            doc=f.doc,
        )
        for f in sorted(FUNCTIONS.values(), key=lambda f: f.name)
    ]
    return [op.model_dump() for op in [*functions, *_operators(), *_attributes()]]


@router.get(
    "/ops",
    summary="List the functions of the language",
    response_model=list[OpPublic],
    responses=problem_responses(500),
)
async def list_ops() -> ORJSONResponse:
    """Every function `expr` and `nodes` can call, with PyTorch's signature, the name of the
    backward node a primitive records (`grad_fn`), its family and one line of doc; then the
    operators (`+`, `@`, `[]`...) and the Tensor attributes (`.T`, `.float()`...)."""
    return ORJSONResponse(catalogue())
