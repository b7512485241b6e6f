"""The work of `POST /v1/jacobian`, `/v1/hessian` and `/v1/gradcheck`.

Each differentiates one output of a program with respect to chosen inputs, the others held
constant, through `engine.autograd.functional` and `engine.autograd.gradcheck`, exactly as
torch's functions of the same names. These cost one backward pass per output element (or one
double backward per input element, or two forward passes per input element), so the cost
is estimated from the checked program before anything runs and held to `max_flops`, and
the matrices to `max_tensor_elements`.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine import Tensor
from engine.autograd.functional import hessian as engine_hessian
from engine.autograd.functional import jacobian as engine_jacobian
from engine.autograd.gradcheck import analytical_jacobians, numerical_jacobians
from engine.program import Limits, Program, TensorSpec, check, run
from engine.shapes import extent
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
)
from service.schemas.derivatives import DerivativeCreate, GradcheckCreate
from service.settings import Settings
from service.wire import encode_tensor


def _problem(slug: str, pointer: str, detail: str, **extensions: Any) -> ProblemError:
    return PROBLEM_TYPES[slug].at(pointer, detail, **extensions)


@dataclass
class Setup:
    """A program ready to differentiate: `fn(*wrt tensors)` is the chosen output."""

    body: DerivativeCreate
    limits: Limits
    program: Program
    inputs: dict[str, Tensor]
    output: str
    out: TensorSpec
    wrt: list[str]
    flops: int

    @property
    def sizes(self) -> list[int]:
        return [self.inputs[name].numel() for name in self.wrt]

    def entries(self, rows: tuple[int, ...]) -> int:
        """The entries of the blocks `rows` + each input's shape, an empty block by what it
        spans (`extent`): a (1000,) output by an empty (10**7, 0) input is 10**10 `[]`."""
        return sum(extent((*rows, *self.inputs[name].shape)) for name in self.wrt)

    def fn(self, *xs: Tensor) -> Tensor:
        env = {**self.inputs, **dict(zip(self.wrt, xs, strict=True))}
        return run(self.program, env)[self.output]

    def guard(self, pointer: str = ""):
        return guard(self.body, self.limits, pointer=pointer)


def _wrt(body: DerivativeCreate, inputs: dict[str, Tensor]) -> list[str]:
    floating = [n for n, t in inputs.items() if t.dtype.kind == "f"]
    if body.wrt is None:
        chosen = [n for n, t in inputs.items() if t.requires_grad] or floating
        if not chosen:
            raise _problem(
                "invalid-arguments",
                "/wrt",
                "nothing to differentiate by: no input is floating-point",
            )
        return chosen
    if not body.wrt:
        raise _problem("invalid-arguments", "/wrt", "wrt is empty: name at least one input")
    for i, name in enumerate(body.wrt):
        if name not in inputs:
            raise _problem(
                "unknown-name",
                f"/wrt/{i}",
                f"{name!r} is not an input; the inputs are {', '.join(inputs) or 'none'}",
            )
        if name not in floating:
            raise _problem(
                "dtype-mismatch",
                f"/wrt/{i}",
                f"{name!r} is {inputs[name].dtype}: only floating-point inputs can be "
                "differentiated by",
            )
    return list(dict.fromkeys(body.wrt))


def prepare(body: DerivativeCreate, settings: Settings) -> Setup:
    limits = limits_for(settings)
    program = compile_program(body, limits)
    decoded = decode_inputs(body, settings)
    wrt = _wrt(body, decoded)
    # The chosen inputs are the leaves; the others are constants.
    inputs = {n: Tensor(t.array, requires_grad=n in wrt) for n, t in decoded.items()}
    names = program.output_names
    output = body.output if body.output is not None else names[-1]
    if output not in names:
        raise _problem(
            "unknown-name",
            "/output",
            f"{output!r} is not an output of the program; its outputs are {', '.join(names)}",
        )
    with guard(body, limits):
        checked = check(program, inputs, limits, backward=True)
    out = checked.spec(output)
    if not isinstance(out, TensorSpec):
        raise _problem("invalid-arguments", "/output", f"{output!r} is a tuple of tensors")
    if out.dtype.kind != "f":
        raise _problem(
            "dtype-mismatch",
            "/output",
            f"{output!r} is {out.dtype}: only floating-point outputs can be differentiated",
        )
    return Setup(body, limits, program, inputs, output, out, wrt, checked.flops)


def _hold(setup: Setup, settings: Settings, passes: int, entries: int, what: str) -> int:
    """Refuse before running when the passes or the matrices are over the limits; else the
    estimated floating-point operations of all the passes."""
    if entries > settings.max_tensor_elements:
        raise _problem(
            "limit-exceeded",
            "/wrt",
            f"the {what} has {entries} entries; the limit is {settings.max_tensor_elements}",
            limit="max_tensor_elements",
            value=entries,
            maximum=settings.max_tensor_elements,
        )
    per_pass = setup.flops + EQN_OVERHEAD_FLOPS * len(setup.program.eqns)
    problem = repeated_passes_problem(passes, per_pass, settings.max_flops, "/wrt", what)
    if problem is not None:
        raise problem
    return passes * per_pass


def _block(array: np.ndarray, rows: int, cols: int, binary: bool) -> dict[str, Any]:
    return {**encode_tensor(array, binary), "matrix_shape": [rows, cols]}


def _as_tuple(value: Any) -> tuple:
    return tuple(value) if isinstance(value, tuple | list) else (value,)


@engine_time("jacobian")
def jacobian(body: DerivativeCreate, settings: Settings) -> dict[str, Any]:
    setup = prepare(body, settings)
    m, sizes = setup.out.size, setup.sizes
    cost = _hold(setup, settings, passes=m, entries=setup.entries(setup.out.shape), what="Jacobian")
    xs = tuple(setup.inputs[n] for n in setup.wrt)
    with LANE.admitted(cost), setup.guard():
        blocks = [b.array for b in _as_tuple(engine_jacobian(setup.fn, xs))]
    return {
        "output": setup.output,
        "output_shape": list(setup.out.shape),
        "wrt": setup.wrt,
        "jacobian": {
            name: _block(block, m, n, body.binary)
            for name, block, n in zip(setup.wrt, blocks, sizes, strict=True)
        },
        "matrix": encode_tensor(_side_by_side(blocks, m, sizes), body.binary),
    }


def _side_by_side(blocks: list[np.ndarray], rows: int, sizes: list[int]) -> np.ndarray:
    return np.concatenate([b.reshape(rows, n) for b, n in zip(blocks, sizes, strict=True)], axis=1)


@engine_time("hessian")
def hessian(body: DerivativeCreate, settings: Settings) -> dict[str, Any]:
    setup = prepare(body, settings)
    if setup.out.size != 1:
        raise _problem(
            "invalid-arguments",
            "/output",
            f"the Hessian needs a scalar output; {setup.output!r} has shape "
            f"{list(setup.out.shape)} (reduce it first, e.g. sum(...))",
            shape=list(setup.out.shape),
        )
    sizes = setup.sizes
    total = sum(sizes)
    # One double-backward (about two backward passes) per input element.
    entries = sum(setup.entries(setup.inputs[n].shape) for n in setup.wrt)
    cost = _hold(setup, settings, passes=2 * total + 1, entries=entries, what="Hessian")
    xs = tuple(setup.inputs[n] for n in setup.wrt)
    with LANE.admitted(cost), setup.guard():
        rows = [_as_tuple(r) for r in _as_tuple(engine_hessian(setup.fn, xs))]
        blocks = [[b.array for b in row] for row in rows]
    full = np.concatenate(
        [
            np.concatenate([b.reshape(ni, nj) for b, nj in zip(row, sizes, strict=True)], axis=1)
            for row, ni in zip(blocks, sizes, strict=True)
        ],
        axis=0,
    )
    return {
        "output": setup.output,
        "wrt": setup.wrt,
        "hessian": {
            x: {
                y: _block(blocks[i][j], sizes[i], sizes[j], body.binary)
                for j, y in enumerate(setup.wrt)
            }
            for i, x in enumerate(setup.wrt)
        },
        "matrix": encode_tensor(full, body.binary),
    }


@engine_time("gradcheck")
def gradcheck(body: GradcheckCreate, settings: Settings) -> dict[str, Any]:
    setup = prepare(body, settings)
    m, sizes = setup.out.size, setup.sizes
    total = sum(sizes)
    # Two forward passes per input element, one backward per output element.
    cost = _hold(setup, settings, passes=2 * total + m, entries=2 * m * total, what="gradcheck")
    # In float64, as torch.autograd.gradcheck asks of its inputs.
    xs = [Tensor(setup.inputs[n].array.astype(np.float64), requires_grad=True) for n in setup.wrt]
    fn: Callable[..., Tensor] = setup.fn
    with LANE.admitted(cost), setup.guard():
        numerical = numerical_jacobians(fn, xs, body.eps)[0]
        analytical = analytical_jacobians(fn, xs)[0]
    checks, worst, worst_key = {}, None, (False, -math.inf)
    for name, a, n in zip(setup.wrt, analytical, numerical, strict=True):
        diff = np.nan_to_num(np.abs(a - n), nan=np.inf)  # NaN anywhere fails
        excess = diff - (body.atol + body.rtol * np.abs(n))
        passed = bool(np.all(excess <= 0))
        checks[name] = {
            "analytical": encode_tensor(a, body.binary),
            "numerical": encode_tensor(n, body.binary),
            "max_abs_diff": float(np.abs(a - n).max()) if diff.size else 0.0,
            "passed": passed,
        }
        if diff.size:
            # The entry furthest outside the tolerance, or the largest difference if none is.
            score = excess if not passed else diff
            k = np.unravel_index(int(np.argmax(score)), a.shape)
            key = (not passed, float(score[k]))
            if worst is None or key > worst_key:
                worst_key = key
                worst = {
                    "input": name,
                    "output_index": int(k[0]),
                    "input_index": int(k[1]),
                    "analytical": float(a[k]),
                    "numerical": float(n[k]),
                }
    diffs = [c["max_abs_diff"] for c in checks.values()]
    return {
        "output": setup.output,
        "passed": all(c["passed"] for c in checks.values()),
        "max_abs_diff": max(diffs, key=lambda d: math.inf if math.isnan(d) else d),
        "eps": body.eps,
        "atol": body.atol,
        "rtol": body.rtol,
        "worst": worst,
        "checks": checks,
    }
