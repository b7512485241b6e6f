"""What each session call does to a session record, with the engine: forward, backward,
step, zero_grad, train and the parameter edits. Each returns an `Outcome`: the answer and
the one `Changes` to commit (or None), so `http.Call.mutate` can commit it atomically."""

from collections.abc import Iterable
from typing import Any

import numpy as np

from engine import Tensor
from engine.optim import Optimizer
from service.metrics import engine_time
from service.problems import PROBLEM_TYPES, ProblemError
from service.programs.lanes import LANE
from service.programs.requests import flops_problem, guard, limits_for
from service.schemas.parameters import ParameterPatch
from service.schemas.session_calls import (
    SessionBackwardCreate,
    SessionForwardCreate,
    SessionStepCreate,
    SessionTrainCreate,
    SessionZeroGradCreate,
)
from service.sessions import optim
from service.sessions.build import decode_parameter, invalid
from service.sessions.model import (
    Model,
    backward,
    check_outputs,
    checked_cost,
    evaluate,
    norm,
    selected,
)
from service.sessions.outcome import Outcome
from service.sessions.programs import REQUEST, Source, programs_for, pruned
from service.settings import Settings
from service.store import Changes, SessionRecord
from service.wire import decode_tensor, encode_tensor

_NO_PROGRAM = Source(None, None, None, REQUEST)


def _encode(tensors: dict[str, Any], binary: bool) -> dict[str, Any]:
    out = {}
    for name, t in tensors.items():
        array = t.array if isinstance(t, Tensor) else np.asarray(t)
        out[name] = encode_tensor(array, binary)
    return out


def _grad_changes(record: SessionRecord, model: Model) -> dict[str, np.ndarray | None]:
    grads: dict[str, np.ndarray | None] = dict(model.grads())
    grads.update({name: None for name in record.grads if name not in grads})
    return grads


def _grads_content(
    model: Model, include: Iterable[str], binary: bool, norms: bool = True
) -> dict[str, Any]:
    grads = model.grads()
    content: dict[str, Any] = {}
    if norms:
        content["grad_norms"] = {n: norm(g) for n, g in sorted(grads.items())}
    if "grads" in include:
        content["grads"] = {n: encode_tensor(g, binary) for n, g in sorted(grads.items())}
    return content


class Trainer:
    """The session's optimizer over all its parameters, with the stored state loaded."""

    def __init__(self, model: Model, record: SessionRecord, settings: Settings) -> None:
        self.model = model
        self.params = [model.params[n] for n in model.names]
        self.opt: Optimizer = optim.make(record.optimizer, self.params)
        self.limits = limits_for(settings)
        with guard(_NO_PROGRAM, self.limits):  # type: ignore[arg-type]
            optim.load(self.opt, self.params, model.names, record.optimizer_state)
        self.moved: set[str] = set()

    def step(self) -> list[str]:
        moved = [n for n in self.model.names if self.model.params[n].grad is not None]
        with guard(_NO_PROGRAM, self.limits):  # type: ignore[arg-type]
            self.opt.step()
        self.moved.update(moved)
        return moved

    def state(self) -> dict[str, dict[str, np.ndarray] | None]:
        dumped = optim.dump(self.opt, self.model.names, self.params)
        return {name: dumped.get(name) for name in sorted(self.moved)}

    def parameters(self) -> dict[str, np.ndarray | None]:
        return {name: self.model.params[name].array for name in sorted(self.moved)}


@engine_time("session_forward")
def forward(
    record: SessionRecord, body: SessionForwardCreate, settings: Settings
) -> dict[str, Any]:
    limits = limits_for(settings)
    model = Model.of(record)
    programs = programs_for(record, body, limits)
    if body.outputs is not None:  # compute only those: no labels needed for the logits
        check_outputs(body.outputs, programs.output_names)
        programs = pruned(programs, body.outputs)
    batch = model.decode_batch(body.inputs, settings)
    specs, flops = checked_cost(model, programs, batch, limits, grad=False)
    with LANE.admitted(flops):
        evaluated = evaluate(model, programs, batch, limits, grad=False, specs=specs)
    return {"outputs": _encode(selected(evaluated, body.outputs), body.binary)}


@engine_time("session_backward")
def backward_(record: SessionRecord, body: SessionBackwardCreate, settings: Settings) -> Outcome:
    limits = limits_for(settings)
    model = Model.of(record)
    programs = programs_for(record, body, limits, body.loss)
    batch = model.decode_batch(body.inputs, settings)
    specs, flops = checked_cost(model, programs, batch, limits, grad=True)
    with LANE.admitted(flops):
        evaluated = evaluate(model, programs, batch, limits, grad=True, specs=specs)
        assert programs.loss is not None
        loss = backward(model, evaluated, programs.loss, limits)
    content = {
        "loss": loss,
        "outputs": _encode(selected(evaluated, body.outputs), body.binary),
        **_grads_content(model, body.include, body.binary),
    }
    changes = Changes(grads=_grad_changes(record, model), buffers=model.buffer_changes())
    return Outcome(content, changes)


@engine_time("session_step")
def step(record: SessionRecord, body: SessionStepCreate, settings: Settings) -> Outcome:
    model = Model.of(record)
    trainer = Trainer(model, record, settings)
    before = {n: p.array.copy() for n, p in model.params.items() if p.grad is not None}
    moved = trainer.step()
    delta = {n: model.params[n].array - before[n] for n in moved}
    content: dict[str, Any] = {
        "step_count": record.step_count + (0 if body.dry_run else 1),
        "dry_run": body.dry_run,
        "updated": moved,
        "update_norms": {n: norm(d) for n, d in delta.items()},
    }
    if body.dry_run:
        content["delta"] = {n: encode_tensor(d, body.binary) for n, d in delta.items()}
        return Outcome(content, None)
    changes = Changes(parameters=trainer.parameters(), optimizer_state=trainer.state(), steps=1)
    return Outcome(content, changes)


@engine_time("session_zero_grad")
def zero_grad(record: SessionRecord, body: SessionZeroGradCreate) -> Outcome:
    if body.set_to_none:
        grads: dict[str, np.ndarray | None] = {name: None for name in record.grads}
    else:
        grads = {name: np.zeros_like(g) for name, g in record.grads.items()}
    return Outcome({}, Changes(grads=grads))


@engine_time("session_train")
def train(record: SessionRecord, body: SessionTrainCreate, settings: Settings) -> Outcome:
    limits = limits_for(settings)
    model = Model.of(record)
    programs = programs_for(record, body, limits, body.loss)
    if body.batches is None:
        batches = [model.decode_batch(body.inputs, settings)]
    else:
        batches = [
            model.decode_batch(b.inputs, settings, f"/batches/{i}/inputs")
            for i, b in enumerate(body.batches)
        ]
    if len(batches) > 1:
        flops = _within_flops(model, programs, batches, limits)
    else:
        pointer = "/loss" if body.batches is None else "/batches/0"
        _, flops = checked_cost(model, programs, batches[0], limits, grad=True,
                                loss_pointer=pointer)  # fmt: skip
    trainer = Trainer(model, record, settings)
    losses = []
    evaluated = None
    with LANE.admitted(flops):  # every batch in one turn of the heavy lane
        for i, batch in enumerate(batches):
            model.zero_grad()  # optimizer.zero_grad(): every parameter's .grad = None
            pointer = "/loss" if body.batches is None else f"/batches/{i}"
            evaluated = evaluate(model, programs, batch, limits, grad=True, loss_pointer=pointer)
            assert programs.loss is not None
            losses.append(backward(model, evaluated, programs.loss, limits))
            trainer.step()
    assert evaluated is not None
    content = {
        "step_count": record.step_count + len(batches),
        "losses": losses,
        "loss": losses[-1],
        "outputs": _encode(selected(evaluated, body.outputs), body.binary),
        # (the norms are a pass over every gradient: only when asked for)
        **_grads_content(model, body.include, body.binary, "grad_norms" in body.include),
    }
    changes = Changes(
        parameters=trainer.parameters(),
        grads=_grad_changes(record, model),
        buffers=model.buffer_changes(),  # running statistics of a model's batch norms
        optimizer_state=trainer.state(),
        steps=len(batches),
    )
    return Outcome(content, changes)


def _within_flops(model: Model, programs, batches: list, limits) -> int:
    """Several batches are held to `max_flops` together, before any of them runs: each is
    within the limit on its own, but a thousand of them once ran for minutes."""
    total = 0
    for i, batch in enumerate(batches):
        _, flops = checked_cost(model, programs, batch, limits, grad=True,
                                loss_pointer=f"/batches/{i}")  # fmt: skip
        total += flops
    detail = (
        f"the {len(batches)} batches need an estimated {total} floating-point operations in "
        f"all (forward and backward, overheads included), over the limit of {limits.max_flops}"
    )
    problem = flops_problem(total, limits.max_flops, "/batches", detail)
    if problem is not None:
        raise problem
    return total


# -- parameters -------------------------------------------------------------------------------


def parameter_not_found(record: SessionRecord, name: str) -> ProblemError:
    known = ", ".join(sorted(record.parameters)) or "none"
    return PROBLEM_TYPES["parameter-not-found"].error(
        f"The session has no parameter {name!r}; its parameters are {known}.", parameter=name
    )


def parameter_content(
    record: SessionRecord, name: str, include: set[str] | None = None, binary: bool = False
) -> dict[str, Any]:
    if name not in record.parameters:
        raise parameter_not_found(record, name)
    array = record.parameters[name]
    content: dict[str, Any] = {
        "name": name,
        "shape": list(array.shape),
        "dtype": array.dtype.name,
        "requires_grad": record.requires_grad.get(name, True),
    }
    include = include or set()
    if "value" in include:
        content["value"] = encode_tensor(array, binary)
    if "grad" in include:
        grad = record.grads.get(name)
        content["grad"] = None if grad is None else encode_tensor(grad, binary)
    if "optimizer_state" in include:
        slots = record.optimizer_state.get(name, {})
        content["optimizer_state"] = {s: encode_tensor(a, binary) for s, a in sorted(slots.items())}
    return content


def put_parameter(
    record: SessionRecord, name: str, obj: Any, raw: Any, settings: Settings
) -> Outcome:
    """Add a parameter, or replace one by a new tensor (any shape): as assigning a new
    nn.Parameter, its gradient and optimizer state start afresh."""
    if name in record.buffers:
        raise invalid("", f"{name!r} is a buffer of the session; choose another name")
    array, flag = decode_parameter(obj, [], settings, raw)
    created = name not in record.parameters
    changes = Changes(
        parameters={name: array},
        requires_grad={name: flag},
        grads={name: None},
        optimizer_state={name: None},
    )
    content = {"name": name, "shape": list(array.shape), "dtype": array.dtype.name,
               "requires_grad": flag}  # fmt: skip
    if not created:
        return Outcome(content, changes)
    location = {"Location": f"/v1/sessions/{record.id}/parameters/{name}"}
    return Outcome(content, changes, 201, location)


def patch_parameter(
    record: SessionRecord, name: str, body: ParameterPatch, settings: Settings
) -> Outcome:
    if name not in record.parameters:
        raise parameter_not_found(record, name)
    current = record.parameters[name]
    changes = Changes()
    if body.value is not None:
        array, _ = decode_tensor(
            body.value,
            pointer="/value",
            max_elements=settings.max_tensor_elements,
            max_ndim=settings.max_ndim,
        )
        if array.shape != current.shape:
            raise invalid(
                "/value",
                f"{name!r} has shape {list(current.shape)}; a value of shape "
                f"{list(array.shape)} would change it (PUT replaces a parameter by one of "
                "another shape)",
                slug="shape-change",
                shape=list(current.shape),
            )
        changes.parameters[name] = array.astype(current.dtype)
        record.parameters[name] = changes.parameters[name]
    if body.requires_grad is not None:
        changes.requires_grad[name] = body.requires_grad
        record.requires_grad[name] = body.requires_grad
    return Outcome(parameter_content(record, name), changes)


def delete_parameter(record: SessionRecord, name: str) -> Outcome:
    if name not in record.parameters:
        raise parameter_not_found(record, name)
    return Outcome(None, Changes(parameters={name: None}), 204)
