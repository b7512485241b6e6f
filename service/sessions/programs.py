"""A session's programs, checked before any numpy work: the session's own, the request's
(`program: extend` runs it on everything the session's produced, `replace` alone) and a model
template's (for the call's train/eval mode), each a `Source` so that every refusal says which
program it is about; and the steps a call needs, pruned to the outputs it asks for."""

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from engine.models.program import INPUT
from engine.program import (
    Limits,
    Program,
    parse_expr,
    parse_nodes,
)
from service.problems import PROBLEM_TYPES, ProblemError
from service.programs import models
from service.programs.requests import guard
from service.schemas.programs import GraphNode
from service.store import SessionRecord

SESSION, REQUEST, MODEL = "session", "request", "model"


@dataclass(frozen=True)
class Source:
    """A program as its author wrote it: what `service.programs.requests.guard` needs to point
    at the failing part (`expr`, `nodes`), and whose it is."""

    expr: str | None
    nodes: list[GraphNode] | None
    outputs: list[str] | None
    origin: str  # SESSION, REQUEST or MODEL
    inputs: dict = field(default_factory=dict)
    # A model template's program (origin MODEL): its spec, the module path of each node, the
    # buffers a run writes in place (running statistics) and the counters it adds 1 to.
    spec: Any = None
    layers: Mapping[str, str] = field(default_factory=dict)
    updates: tuple[str, ...] = ()
    counters: tuple[str, ...] = ()

    @classmethod
    def stored(cls, program: Mapping[str, Any]) -> "Source | None":
        nodes = program.get("nodes")
        if program.get("expr") is None and nodes is None:
            return None
        return cls(
            program.get("expr"),
            None if nodes is None else [GraphNode.model_validate(n) for n in nodes],
            program.get("outputs"),
            SESSION,
        )

    @classmethod
    def of(cls, body: Any, origin: str = REQUEST) -> "Source | None":
        if body.expr is None and body.nodes is None:
            return None
        return cls(body.expr, body.nodes, body.outputs, origin)

    def to_json(self) -> dict[str, Any]:
        if self.expr is not None:
            return {"expr": self.expr}
        assert self.nodes is not None
        return {"nodes": [n.model_dump() for n in self.nodes], "outputs": self.outputs}


@contextmanager
def program_guard(source: Source, limits: Limits) -> Iterator[None]:
    """`service.programs.requests.guard`, and for the session's own program a pointer into the
    session's `program` (as GET /v1/sessions/{id} shows it) instead of into the request."""
    try:
        with guard(source, limits):  # type: ignore[arg-type]
            yield
    except ProblemError as exc:
        if source.origin == MODEL and "program" not in exc.extensions:
            _model_problem(exc, source)
        if source.origin == SESSION and "program" not in exc.extensions:
            exc.extensions["program"] = SESSION
            for item in exc.errors or ():
                if item.get("pointer", "").startswith(("/expr", "/nodes")):
                    item["pointer"] = "/program" + item["pointer"]
            exc.detail = f"The session's program: {exc.detail}"
        raise


def _model_problem(exc: ProblemError, source: Source) -> None:
    """A refusal inside a model's program, told by layer: "resnet18: layer conv1 (conv2d):
    Given groups=1, weight of size [64, 3, 7, 7], expected input[1, 1, 64, 64] to have 3
    channels...", pointing at the batch's `input` (what a call changes)."""
    name = source.spec.name
    exc.extensions["program"] = MODEL
    exc.extensions["model"] = name
    node = exc.extensions.get("node")
    message = exc.errors[0]["detail"] if exc.errors else str(exc.detail)
    where = ""
    if node is not None:
        layer = source.layers.get(node, node)
        exc.extensions["layer"] = layer
        op = exc.extensions.get("op")
        where = f" layer {layer}" + (f" ({op})" if op else "") + ":"
        if op and message.startswith(f"{op}: "):
            message = message[len(op) + 2 :]
    exc.detail = f"{name}:{where} {message}"
    exc.errors = [{"pointer": f"/inputs/{INPUT}", "detail": exc.detail}]


def compile_source(source: Source, limits: Limits) -> Program:
    with program_guard(source, limits):
        if source.expr is not None:
            return parse_expr(source.expr, limits)
        nodes = [n.model_dump() for n in source.nodes or ()]
        return parse_nodes(nodes, list(source.outputs or ()), None, limits)


@dataclass
class Programs:
    """What runs for one request, in order: the session's program, then the request's."""

    steps: list[tuple[Program, Source]]
    loss: str | None

    @property
    def output_names(self) -> list[str]:
        return list(dict.fromkeys(n for program, _ in self.steps for n in program.output_names))


@lru_cache(maxsize=64)
def _model_step(spec_key: str, mode: str) -> tuple[Program, Source]:
    spec = models.parse_spec(json.loads(spec_key))
    prog, compiled = models.program(spec, mode)
    updates = tuple(
        name
        for node in prog.nodes
        if node["op"] == "batch_norm" and node["attrs"]["training"]
        for name in node["inputs"][1:3]
        if name is not None
    )
    source = Source(None, None, prog.outputs, MODEL, spec=spec, layers=prog.layers,
                    updates=updates, counters=tuple(prog.counters))  # fmt: skip
    return compiled, source


def model_step(spec: Mapping[str, Any], mode: str) -> tuple[Program, Source]:
    """The program of the session's model in this mode, compiled once per process."""
    return _model_step(json.dumps(spec, sort_keys=True), mode)


def programs_for(
    record: SessionRecord,
    body: Any | None,
    limits: Limits,
    loss: str | None = None,
    mode: str | None = None,
) -> Programs:
    """The model's program (in `mode`, else the body's), the session's, the request's."""
    steps = []
    stored = Source.stored(record.program)
    request = Source.of(body) if body is not None else None
    replace = request is not None and body.program == "replace"
    spec = record.program.get("model")
    if spec is not None and not replace:
        steps.append(model_step(spec, mode or getattr(body, "mode", None) or "train"))
    if stored is not None and not replace:
        steps.append((compile_source(stored, limits), stored))
    if request is not None:
        steps.append((compile_source(request, limits), request))
    if not steps:
        raise refusal("", "the session has no program and the request sends none")
    return Programs(steps, loss if loss is not None else record.program.get("loss"))


def refusal(pointer: str, detail: str, slug: str = "invalid-session", **ext: Any) -> ProblemError:
    return PROBLEM_TYPES[slug].at(pointer or None, detail, **ext)


def _prune(program: Program, wanted: set[str]) -> Program:
    """Only the equations `wanted` outputs depend on (dead code elimination)."""
    outputs = tuple((n, r) for n, r in program.outputs if n in wanted)
    live = {r.id for _, r in outputs}
    kept = []
    for eqn in reversed(program.eqns):
        if eqn.id in live:
            kept.append(eqn)
            live.update(r.id for r in eqn.refs())
    inputs = tuple(n for n in program.inputs if n in live)
    return Program(inputs, tuple(reversed(kept)), outputs, program.input_where)


def pruned(programs: Programs, wanted: list[str]) -> Programs:
    """What computes just the `wanted` outputs: forward answers them without needing the
    batch inputs only the rest reads (the labels of the loss, say)."""
    need = set(wanted)
    steps = []
    for program, source in reversed(programs.steps):
        mine = need & set(program.output_names)
        small = _prune(program, mine)
        steps.append((small, source))
        need = (need - mine) | set(small.inputs)
    return Programs(list(reversed(steps)), programs.loss)
