"""A session as engine objects for one request: its parameters and buffers as Tensors, its
programs (`sessions.programs`) run on a batch, the loss and its backward.

A session made from a model template runs the template's program (for the call's train/eval
mode) before its own: it reads the batch's `input` and defines `output`. In training mode its
batch norms update the running statistics in place and count the batch; `Model.touched` says
which buffers changed, for the commit.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine import Tensor, set_grad_enabled
from engine.models.program import INPUT
from engine.program import (
    Limits,
    TensorSpec,
    check,
    run,
    spec_of,
)
from service.programs import models
from service.programs.requests import EQN_OVERHEAD_FLOPS, flops_problem, guard, tensors_only
from service.sessions.programs import MODEL, REQUEST, Programs, Source, program_guard, refusal
from service.store import SessionRecord
from service.wire import decode_tensors


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
                counter.array = counter.array + 1  # a new array: as `+= 1` would
                self.touched.add(name)
        self.touched.update(n for n in source.updates if n in self.buffers)

    def grads(self) -> dict[str, np.ndarray]:
        return {n: p.grad.array for n, p in self.params.items() if p.grad is not None}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params.values():
            if p.grad is not None:
                p.grad = None if set_to_none else Tensor(np.zeros_like(p.grad.array))

    def decode_batch(
        self, inputs: Mapping[str, Any], settings: Any, pointer: str = "/inputs"
    ) -> dict[str, Tensor]:
        for name in inputs:
            if name in self.params or name in self.buffers:
                what = "parameter" if name in self.params else "buffer"
                raise refusal(
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


def checked_cost(
    model: Model,
    programs: Programs,
    batch: Mapping[str, Tensor],
    limits: Limits,
    *,
    grad: bool,
    loss_pointer: str = "/loss",
) -> tuple[dict[str, Any], int]:
    """Every program checked against the inputs' specs, before any numpy work: (the specs
    of their results, their estimated floating-point operations, per-equation overheads
    included as the program endpoints count them). Each program's peak bytes are held to
    `max_request_bytes` by `check`, and their sum too (a model's values stay alive while
    the request's program runs on them)."""
    inputs: dict[str, Any] = {**model.params, **model.buffers, **batch}
    specs: dict[str, Any] = {}
    flops = peak = 0
    for program, source in programs.steps:
        if source.origin == MODEL and INPUT in program.inputs:
            if INPUT not in batch:
                given = ", ".join(batch) or "nothing"
                raise refusal(
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
        flops += checked.flops + EQN_OVERHEAD_FLOPS * len(program.eqns)
        peak += checked.bytes
    detail = (
        f"the session's programs need an estimated {peak} bytes at their peak together "
        f"(values, gradients and the largest op's temporaries), over the limit of "
        f"{limits.max_request_bytes}"
    )
    problem = flops_problem(peak, limits.max_request_bytes, "/inputs", detail,
                            limit="max_request_bytes")  # fmt: skip
    if problem is not None:
        raise problem
    if grad:
        _check_loss(programs, specs, loss_pointer, static=True)
    return specs, flops


def evaluate(
    model: Model,
    programs: Programs,
    batch: Mapping[str, Tensor],
    limits: Limits,
    *,
    grad: bool,
    loss_pointer: str = "/loss",
    specs: dict[str, Any] | None = None,
) -> Evaluated:
    """Check every program against the inputs' specs, then (unless the loss is refused) run
    them, recording gradients only with `grad`."""
    inputs: dict[str, Any] = {**model.params, **model.buffers, **batch}
    if specs is None:  # (a caller that took the heavy lane by the cost checked it already)
        specs, _ = checked_cost(model, programs, batch, limits, grad=grad,
                                loss_pointer=loss_pointer)  # fmt: skip
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
        raise refusal(
            pointer,
            'no loss: the session names none, so the request must ("loss": an output of '
            "the program)",
        )
    spec = specs.get(name)
    if not isinstance(spec, TensorSpec):
        known = ", ".join(programs.output_names)
        raise refusal(
            pointer,
            f"the loss {name!r} is not an output of the program; its outputs are {known}",
            slug="unknown-name",
        )
    if spec.size != 1:
        raise refusal(
            pointer,
            f"the loss {name!r} has shape {list(spec)}: backward needs a scalar (one element); "
            "reduce it, e.g. with mean() or sum()",
            slug="loss-not-scalar",
            shape=list(spec),
        )
    if not static and not spec.requires_grad:
        raise refusal(
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
    return float(value.array.reshape(()))


def check_outputs(names: list[str], known: Iterable[str], pointer: str = "/outputs") -> None:
    known = list(known)
    for i, name in enumerate(names):
        if name not in known:
            raise refusal(
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
