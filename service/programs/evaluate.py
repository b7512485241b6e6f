"""The work of `POST /v1/evaluate`: forward, the backward calls, the DAG, and the answer.

The program is checked before numpy runs (names, arity, shapes, dtypes, limits, with the
extra memory of backward counted), and so are the outputs asked for and each backward entry's
output (computed, requiring grad) and gradient (a valid tensor within the limits). Gradient
shapes are checked against the outputs as computed, before any backward: an output indexed by
a computed mask (`x[x > 0]`) has a data-dependent shape the checker only bounds.
"""

import math
from dataclasses import dataclass
from typing import Any

from engine import Tensor
from engine.program import Checked, Limits, Program, check, describe, run
from service.metrics import engine_time
from service.problems import PROBLEM_TYPES, ProblemError
from service.programs.lanes import LANE
from service.programs.requests import (
    EQN_OVERHEAD_FLOPS,
    compile_program,
    decode_inputs,
    guard,
    limits_for,
    repeated_passes_problem,
    tensors_only,
)
from service.schemas.programs import BackwardCreate, EvaluateCreate
from service.settings import Settings
from service.wire import decode_tensor, encode_tensor, jsonio


@dataclass
class Evaluation:
    outputs: dict[str, Tensor]
    grads: dict[str, Tensor | None]
    dag: dict[str, Any] | None


@dataclass(slots=True)
class _Backward:
    output: str
    gradient: Tensor | None
    pointer: str


def _backward_list(body: EvaluateCreate) -> list[tuple[str, BackwardCreate]]:
    if body.backward is None:
        return []
    if isinstance(body.backward, BackwardCreate):
        return [("/backward", body.backward)]
    return [(f"/backward/{i}", b) for i, b in enumerate(body.backward)]


def _selected(body: EvaluateCreate, names: tuple[str, ...]) -> list[str]:
    if body.expr is None or body.outputs is None:  # nodes: `outputs` are the program's own
        return list(names)
    known = set(names)
    for i, name in enumerate(body.outputs):
        if name not in known:
            raise _unknown_output(name, names, f"/outputs/{i}")
    return list(dict.fromkeys(body.outputs))


def _unknown_output(name: str, names: tuple[str, ...], pointer: str) -> ProblemError:
    detail = f"{name!r} is not an output of the program; its outputs are {', '.join(names)}"
    return PROBLEM_TYPES["unknown-name"].at(pointer, detail, outputs=list(names))


def _invalid_backward(pointer: str, detail: str, **extensions: Any) -> ProblemError:
    return PROBLEM_TYPES["invalid-backward"].at(pointer, detail, **extensions)


def _plan_backward(body: EvaluateCreate, checked: Checked, settings: Settings) -> list[_Backward]:
    names = checked.program.output_names
    plans = []
    for pointer, spec in _backward_list(body):
        if spec.output not in names:
            raise _unknown_output(spec.output, names, f"{pointer}/output")
        out = checked.spec(spec.output)
        if not hasattr(out, "requires_grad"):  # a tuple result (max with dim...)
            raise _invalid_backward(
                f"{pointer}/output", f"{spec.output!r} is a tuple of tensors, not one tensor"
            )
        if not out.requires_grad:
            raise _invalid_backward(
                f"{pointer}/output",
                f"{spec.output!r} does not require grad: no input it depends on has "
                '"requires_grad": true (torch: element 0 of tensors does not require grad '
                "and does not have a grad_fn)",
            )
        gradient = None
        if spec.gradient is not None:
            array, _ = decode_tensor(
                spec.gradient,
                pointer=f"{pointer}/gradient",
                max_elements=settings.max_tensor_elements,
                max_ndim=settings.max_ndim,
            )
            gradient = Tensor(array)
        plans.append(_Backward(spec.output, gradient, pointer))
    return plans


def _check_shapes(plans: list[_Backward], values: dict[str, Any]) -> None:
    """Each gradient against its output's shape, as run: the checker's shape of an output
    indexed by a computed mask (`x[x > 0]`) is only an upper bound."""
    for step in plans:
        shape = tuple(values[step.output].shape)
        if step.gradient is not None:
            if tuple(step.gradient.shape) != shape:
                raise _invalid_backward(
                    f"{step.pointer}/gradient",
                    f"gradient has shape {list(step.gradient.shape)} but {step.output!r} has "
                    f"shape {list(shape)}; they must be equal",
                    shapes=[list(step.gradient.shape), list(shape)],
                )
        elif math.prod(shape) != 1:
            detail = (
                f"{step.output!r} has shape {list(shape)}: backward from a non-scalar "
                f'output needs "gradient", a tensor of that shape (grad can be implicitly '
                "created only for scalar outputs)"
            )
            raise PROBLEM_TYPES["gradient-required"].at(
                f"{step.pointer}/gradient",
                detail,
                output=step.output,
                shape=list(shape),
            )


@dataclass
class Prepared:
    """A request checked and ready to run: everything `execute` needs, no numpy work done."""

    body: EvaluateCreate
    limits: Limits
    program: Program
    inputs: dict[str, Tensor]
    checked: Checked
    selected: list[str]
    backward: list[_Backward]
    dag: bool

    @property
    def cost(self) -> int:
        """Estimated floating-point operations of `execute`, overheads included."""
        passes = max(len(self.backward), 1)
        return self.checked.flops * passes + EQN_OVERHEAD_FLOPS * len(self.program.eqns)


def compile_request(body: EvaluateCreate, settings: Settings) -> Program:
    """The body's program, parsed (cached by text) and validated, no tensor decoded."""
    return compile_program(body, limits_for(settings))


def prepare(body: EvaluateCreate, settings: Settings, program: Program, *, dag: bool) -> Prepared:
    """Decode the inputs, check the program against them and plan the backward calls."""
    limits = limits_for(settings)
    inputs = decode_inputs(body, settings)
    with guard(body, limits):
        checked = check(program, inputs, limits, backward=body.backward is not None)
    selected = _selected(body, program.output_names)
    backward = _plan_backward(body, checked, settings)
    if len(backward) > 1:  # check() counted one backward pass (about twice the forward)
        per_pass = checked.flops * 2 // 3 + EQN_OVERHEAD_FLOPS * len(program.eqns)
        problem = repeated_passes_problem(
            len(backward), per_pass, settings.max_flops, "/backward", "backward list"
        )
        if problem is not None:
            raise problem
    return Prepared(body, limits, program, inputs, checked, selected, backward, dag)


@engine_time("evaluate_program")
def execute(p: Prepared) -> Evaluation:
    """Forward, each backward call, and the DAG when asked for."""
    body, limits, inputs = p.body, p.limits, p.inputs
    with LANE.admitted(p.cost):
        with guard(body, limits):
            values = run(p.program, inputs)
        _check_shapes(p.backward, values)
        for step in p.backward:
            with guard(body, limits, pointer=step.pointer):
                values[step.output].backward(gradient=step.gradient, retain_graph=True)

    outputs = tensors_only({name: values[name] for name in p.selected})
    grads = {}
    if p.backward:
        grads = {name: t.grad for name, t in inputs.items() if t.requires_grad}
    description = None
    if p.dag:
        with guard(body, limits):
            description = describe(outputs, inputs)
    return Evaluation(outputs, grads, description)


def evaluate(body: EvaluateCreate, settings: Settings, *, dag: bool) -> Evaluation:
    """The whole request: compile, decode, check, then run."""
    program = compile_request(body, settings)
    return execute(prepare(body, settings, program, dag=dag))


def _tensor(t: Tensor, binary: bool) -> dict[str, Any]:
    wire = encode_tensor(t.array, binary, fragment=True)
    if not binary:
        wire["data"] = jsonio.safe_array(wire["data"])
    return wire


def render(result: Evaluation, binary: bool) -> dict[str, Any]:
    """The JSON content of the answer, already safe for `jsonio.dumps_safe` (numpy arrays
    inside, non-finite values as their strings)."""
    content: dict[str, Any] = {
        "outputs": {
            name: {
                **_tensor(t, binary),
                "requires_grad": t.requires_grad,
                "grad_fn": None if t.grad_fn is None else t.grad_fn.name(),
            }
            for name, t in result.outputs.items()
        },
        "grads": {
            name: None if g is None else _tensor(g, binary) for name, g in result.grads.items()
        },
    }
    if result.dag is not None:
        content["dag"] = jsonio.json_safe(result.dag)
    return content
