"""A session as engine objects for one request: its parameters and buffers as Tensors, its
program (and the request's) checked and run on a batch, the loss and its backward.

The session's program runs first; a request's program then runs on everything the session's
produced, so it can use the parameters, the buffers and the session program's outputs by name
(`program: extend`), or runs alone (`program: replace`). Both are checked (names, shapes,
dtypes, limits) before any numpy work, and every refusal is a problem document that says
which program it is about.

A session made from a model template runs the template's program (for the call's train/eval
mode) before its own: it reads the batch's `input` and defines `output`. In training mode its
batch norms update the running statistics in place and count the batch; `Model.touched` says
which buffers changed, for the commit.
"""

import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from engine import Tensor, set_grad_enabled
from engine.models.program import INPUT
from engine.program import (
    Limits,
    Program,
    TensorSpec,
    check,
    parse_expr,
    parse_nodes,
    run,
    spec_of,
)
from service.problems import PROBLEM_TYPES, ProblemError
from service.programs import models
from service.programs.requests import guard, tensors_only
from service.schemas.programs import GraphNode
from service.store import SessionRecord
from service.wire import decode_tensors

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
        raise _invalid("", "the session has no program and the request sends none")
    return Programs(steps, loss if loss is not None else record.program.get("loss"))


def _invalid(pointer: str, detail: str, slug: str = "invalid-session", **ext: Any) -> ProblemError:
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


@dataclass
class Model:
    """The session's tensors as engine leaves (parameters in sorted name order)."""

    names: list[str]
    params: dict[str, Tensor]
    buffers: dict[str, Tensor]
    touched: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, record: SessionRecord) -> "Model":
        names = sorted(record.parameters)
        params = {}
        for name in names:
            t = Tensor(record.parameters[name], requires_grad=record.requires_grad.get(name, True))
            if name in record.grads:
                t.grad = Tensor(record.grads[name])
            params[name] = t
        # (copies: a training forward updates running statistics in place, and a store may
        # hand out the arrays it holds)
        buffers = {name: Tensor(array.copy()) for name, array in record.buffers.items()}
        return cls(names, params, buffers)

    def buffer_changes(self) -> dict[str, np.ndarray | None]:
        """The buffers training forwards wrote (running statistics, num_batches_tracked)."""
        return {name: self.buffers[name].numpy() for name in sorted(self.touched)}

    def ran(self, source: Source) -> None:
        """After a model's program ran in training mode: count the batch (+1 to each
        num_batches_tracked, as BatchNorm.forward) and note the buffers it wrote."""
        for name in source.counters:
            counter = self.buffers.get(name)
            if counter is not None:
                counter.data = Tensor(counter.numpy() + 1)  # a new array: as `+= 1` would
                self.touched.add(name)
        self.touched.update(n for n in source.updates if n in self.buffers)

    def grads(self) -> dict[str, np.ndarray]:
        return {n: p.grad.detach().numpy() for n, p in self.params.items() if p.grad is not None}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params.values():
            if p.grad is not None:
                p.grad = None if set_to_none else Tensor(np.zeros_like(p.grad.detach().numpy()))

    def decode_batch(
        self, inputs: Mapping[str, Any], settings: Any, pointer: str = "/inputs"
    ) -> dict[str, Tensor]:
        for name in inputs:
            if name in self.params or name in self.buffers:
                what = "parameter" if name in self.params else "buffer"
                raise _invalid(
                    f"{pointer}/{name}",
                    f"{name!r} is a {what} of the session; a batch input cannot replace it "
                    "(use PUT/PATCH on the parameter, or another name)",
                )
        decoded = decode_tensors(
            inputs,
            pointer=pointer,
            max_elements=settings.max_tensor_elements,
            max_total_elements=settings.max_total_elements,
            max_ndim=settings.max_ndim,
        )
        return {name: Tensor(array, requires_grad=rg) for name, (array, rg) in decoded.items()}


@dataclass
class Evaluated:
    values: dict[str, Any]
    specs: dict[str, Any]


def evaluate(
    model: Model,
    programs: Programs,
    batch: Mapping[str, Tensor],
    limits: Limits,
    *,
    grad: bool,
    loss_pointer: str = "/loss",
) -> Evaluated:
    """Check every program against the inputs' specs, then (unless the loss is refused) run
    them, recording gradients only with `grad`."""
    inputs: dict[str, Any] = {**model.params, **model.buffers, **batch}
    specs: dict[str, Any] = {}
    for program, source in programs.steps:
        if source.origin == MODEL and INPUT in program.inputs:
            if INPUT not in batch:
                given = ", ".join(batch) or "nothing"
                raise _invalid(
                    f"/inputs/{INPUT}",
                    f"the model ({source.spec.name}) reads the batch's {INPUT!r}: "
                    f"{models.TEMPLATES[source.spec.name].input}; the batch has {given}",
                    slug="unknown-name",
                )
            problem = models.input_problem(source.spec, tuple(batch[INPUT].shape))
            if problem is not None:
                raise problem
        with program_guard(source, limits):
            checked = check(program, {**inputs, **specs}, limits, backward=grad)
        specs.update({n: s for n, s in checked.outputs.items() if isinstance(s, TensorSpec)})
    if grad:
        _check_loss(programs, specs, loss_pointer, static=True)
    values: dict[str, Any] = {}
    with set_grad_enabled(grad):
        for program, source in programs.steps:
            with program_guard(source, limits):
                values.update(run(program, {**inputs, **values}))
            if source.counters or source.updates:
                model.ran(source)
    if grad:  # again on the values: they are the truth should a shape rule be wrong
        assert programs.loss is not None
        _check_loss(programs, {programs.loss: spec_of(values[programs.loss])}, loss_pointer)
    return Evaluated(values, specs)


def _check_loss(
    programs: Programs, specs: Mapping[str, Any], pointer: str, static: bool = False
) -> None:
    """The loss is an output, a scalar and (checked on the value: `static` skips it) depends
    on a parameter that requires grad."""
    name = programs.loss
    if name is None:
        raise _invalid(
            pointer,
            'no loss: the session names none, so the request must ("loss": an output of '
            "the program)",
        )
    spec = specs.get(name)
    if not isinstance(spec, TensorSpec):
        known = ", ".join(programs.output_names)
        raise _invalid(
            pointer,
            f"the loss {name!r} is not an output of the program; its outputs are {known}",
            slug="unknown-name",
        )
    if spec.size != 1:
        raise _invalid(
            pointer,
            f"the loss {name!r} has shape {list(spec)}: backward needs a scalar (one element); "
            "reduce it, e.g. with mean() or sum()",
            slug="loss-not-scalar",
            shape=list(spec),
        )
    if not static and not spec.requires_grad:
        raise _invalid(
            pointer,
            f"the loss {name!r} does not depend on any parameter that requires grad: the "
            "program does not use the trainable parameters (torch: element 0 of tensors "
            "does not require grad and does not have a grad_fn)",
            slug="parameters-unused",
        )


def backward(model: Model, evaluated: Evaluated, loss: str, limits: Limits) -> float:
    """`loss.backward()`: gradients add up in the parameters' `.grad`."""
    value = evaluated.values[loss]
    with guard(Source(None, None, None, REQUEST), limits):  # type: ignore[arg-type]
        value.backward()
    return float(value.detach().numpy().reshape(()))


def check_outputs(names: list[str], known: Iterable[str], pointer: str = "/outputs") -> None:
    known = list(known)
    for i, name in enumerate(names):
        if name not in known:
            raise _invalid(
                f"{pointer}/{i}",
                f"{name!r} is not an output of the program; its outputs are {', '.join(known)}",
                slug="unknown-name",
            )


def selected(evaluated: Evaluated, names: list[str] | None, pointer: str = "/outputs") -> dict:
    """The outputs asked for (all when `names` is None), as Tensors."""
    available = evaluated.values
    if names is None:
        return tensors_only(available)
    check_outputs(names, available, pointer)
    return tensors_only({name: available[name] for name in dict.fromkeys(names)})


def norm(array: np.ndarray) -> float:
    """The L2 norm (BLAS nrm2 over the array as laid out: no copy of a transposed grad)."""
    return float(np.linalg.norm(array.ravel(order="K")))
