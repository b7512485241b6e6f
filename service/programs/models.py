"""Model templates on the server: `engine.models`' builders by name, their options, the
weights they start with, and their programs (`engine.models.program.to_program`, nodes form).

A session made from `{"model": {"name": "resnet18", "num_classes": 1000, "seed": 0}}` gets
the model's parameters and buffers under their state_dict names and runs the template's
program for the call's mode; nothing of the model is uploaded. Programs depend only on the
structural options (not on seed or dtype), and are built once per process and kept."""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from pydantic import BaseModel, ValidationError

from engine import nn
from engine.factories import seeded
from engine.models import mlp, resnet18, resnet34
from engine.models.program import INPUT, ModelProgram, to_program
from engine.program import Program, parse_nodes
from service.problems import PROBLEM_TYPES, ProblemError
from service.schemas.models import MLPSpec, ResNetSpec
from service.settings import Settings

_STRUCTURAL_EXCLUDED = ("seed", "dtype")


@dataclass(frozen=True)
class Template:
    name: str
    spec: type[BaseModel]
    description: str
    input: str

    def build(self, spec: Any) -> nn.Module:
        if isinstance(spec, ResNetSpec):
            builder = resnet18 if spec.name == "resnet18" else resnet34
            return builder(spec.num_classes, zero_init_residual=spec.zero_init_residual)
        assert isinstance(spec, MLPSpec)
        return mlp(spec.sizes, spec.activation, spec.bias, spec.dropout)

    def sizes(self, spec: Any) -> tuple[int, int]:
        """(largest tensor, all parameters and buffers) in elements, before building."""
        if isinstance(spec, ResNetSpec):
            body = 11_176_512 if spec.name == "resnet18" else 21_284_672  # without fc
            fc = 512 * spec.num_classes
            return max(fc, 2_359_296), body + fc + spec.num_classes + 9_600
        assert isinstance(spec, MLPSpec)
        widths = spec.sizes
        weights = [a * b for a, b in zip(widths, widths[1:], strict=False)]
        return max(weights), sum(weights) + (sum(widths[1:]) if spec.bias else 0)

    def check_input(self, spec: Any, shape: tuple[int, ...]) -> str | None:
        """What torch's module would say about an input of this shape that the program's
        ops would read differently (ResNet on unbatched images: BatchNorm2d refuses them)."""
        if isinstance(spec, ResNetSpec) and len(shape) != 4:
            return f"bn1 (BatchNorm2d): expected 4D input (got {len(shape)}D input)"
        return None


TEMPLATES: dict[str, Template] = {
    "resnet18": Template(
        "resnet18",
        ResNetSpec,
        "torchvision's ResNet-18 (11.7 M parameters at 1000 classes): conv1 7x7/2, max "
        "pool, four stages of two BasicBlocks (64, 128, 256, 512 channels), average pool, fc.",
        "(N, 3, H, W) float images; H and W of 32 or more (batch 1 in training: 64 or more, "
        "so layer4's batch norms see more than one value per channel)",
    ),
    "resnet34": Template(
        "resnet34",
        ResNetSpec,
        "torchvision's ResNet-34 (21.8 M parameters): stages of 3, 4, 6 and 3 BasicBlocks. "
        "Training with momentum stores ~260 MB: raise AUTOGRAD_MAX_SESSION_BYTES.",
        "(N, 3, H, W) float images, as resnet18",
    ),
    "mlp": Template(
        "mlp",
        MLPSpec,
        "A multilayer perceptron: nn.Linear between the given widths, an activation after "
        "each but the last (nn.Sequential's parameter names 0.weight, 0.bias, 2.weight...).",
        "(N, sizes[0]) or (sizes[0],) floats",
    ),
}


def _error(slug: str, detail: str, pointer: str, **ext: Any) -> ProblemError:
    return PROBLEM_TYPES[slug].at(pointer, detail, **ext)


def template_of(name: Any, pointer: str = "/model/name", slug: str = "unknown-model") -> Template:
    template = TEMPLATES.get(name) if isinstance(name, str) else None
    if template is None:
        raise _error(
            slug,
            f"There is no model template {name!r}; the templates are "
            f"{', '.join(sorted(TEMPLATES))} (GET /v1/models).",
            pointer,
            model=name if isinstance(name, str) else None,
            templates=sorted(TEMPLATES),
        )
    return template


def parse_spec(obj: Any, pointer: str = "/model") -> Any:
    """The spec of `model`: its template by name, then the template's options validated."""
    if not isinstance(obj, Mapping):
        raise _error(
            "validation-error",
            'model must be an object such as {"name": "resnet18", "num_classes": 1000}',
            pointer,
        )
    template = template_of(obj.get("name"), pointer + "/name")
    try:
        return template.spec.model_validate(obj)
    except ValidationError as exc:
        errors = [
            {
                "pointer": pointer + "".join(f"/{p}" for p in e["loc"]),
                "detail": e["msg"],
            }
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['pointer']}: {e['detail']}" for e in errors)
        raise PROBLEM_TYPES["validation-error"].error(
            f"Invalid options for {template.name}: {detail}", errors=errors
        ) from None


def spec_json(spec: Any) -> dict[str, Any]:
    """Every option, as stored with a session (the seed only when given)."""
    return spec.model_dump(exclude_none=True)


def _structural(spec: Any) -> str:
    data = spec.model_dump(exclude=set(_STRUCTURAL_EXCLUDED))
    return json.dumps(data, sort_keys=True)


def check_size(spec: Any, settings: Settings, pointer: str = "/model") -> None:
    largest, total = TEMPLATES[spec.name].sizes(spec)
    for value, limit in ((largest, "max_tensor_elements"), (total, "max_total_elements")):
        maximum = getattr(settings, limit)
        if value > maximum:
            detail = (
                f"{spec.name} with these options holds {value} elements "
                f"({'in one tensor' if limit == 'max_tensor_elements' else 'in all'}); "
                f"the limit is {maximum} (AUTOGRAD_{limit.upper()})"
            )
            raise _error("limit-exceeded", detail, pointer, limit=limit, value=value,
                         maximum=maximum)  # fmt: skip


def build(spec: Any) -> nn.Module:
    """The template's module, initialised from the spec's seed, in its dtype."""
    with seeded(spec.seed):
        module = TEMPLATES[spec.name].build(spec)
    if spec.dtype != "float32":
        module.to(spec.dtype)
    return module


def state(spec: Any) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(parameters, buffers) of a freshly built model, by state_dict name."""
    module = build(spec)
    params = {n: p.array for n, p in module.named_parameters()}
    buffers = {n: b.array for n, b in module.named_buffers()}
    return params, buffers


@lru_cache(maxsize=64)
def _program(structural: str, name: str, mode: str) -> tuple[ModelProgram, Program, dict]:
    template = TEMPLATES[name]
    spec = template.spec.model_validate({**json.loads(structural), "name": name})
    with seeded(0):  # the values do not matter, only the structure
        module = template.build(spec)
    prog = to_program(module, mode)
    compiled = parse_nodes(prog.nodes, prog.outputs)
    infos = {
        "parameters": {n: _info(p) for n, p in module.named_parameters()},
        "buffers": {n: _info(b) for n, b in module.named_buffers()},
        "num_parameters": sum(p.numel() for p in module.parameters()),
    }
    return prog, compiled, infos


def _info(t: Any) -> dict[str, Any]:
    return {"shape": list(t.shape), "dtype": str(t.dtype)}


def program(spec: Any, mode: str) -> tuple[ModelProgram, Program]:
    """The template's program for this spec and mode (built once, then shared)."""
    prog, compiled, _ = _program(_structural(spec), spec.name, mode)
    return prog, compiled


def describe(spec: Any, mode: str) -> dict[str, Any]:
    """GET /v1/models/{name}: the program and the tensors it reads."""
    prog, _, infos = _program(_structural(spec), spec.name, mode)
    dtype = spec.dtype
    data = spec.model_dump(exclude_none=True, exclude={"seed"})

    def in_dtype(group: dict) -> dict:
        return {n: {**i, "dtype": dtype if i["dtype"].startswith("float") else i["dtype"]}
                for n, i in group.items()}  # fmt: skip

    return {
        "model": data,
        "mode": mode,
        "inputs": prog.inputs,
        "outputs": prog.outputs,
        "nodes": prog.nodes,
        "layers": prog.layers,
        "counters": prog.counters,
        "parameters": in_dtype(infos["parameters"]),
        "buffers": in_dtype(infos["buffers"]),
        "num_parameters": infos["num_parameters"],
    }


def summaries() -> list[dict[str, Any]]:
    out = []
    for template in TEMPLATES.values():
        spec = template.spec.model_validate({"name": template.name})
        defaults = spec.model_dump(exclude={"name", "seed"})
        options = {"num_classes": 1000} if isinstance(spec, ResNetSpec) else {"sizes": spec.sizes}
        example = {"name": template.name, **options, "seed": 0}
        out.append(
            {
                "name": template.name,
                "description": template.description,
                "defaults": defaults,
                "input": template.input,
                "num_parameters": _program(_structural(spec), spec.name, "eval")[2][
                    "num_parameters"
                ],
                "example": example,
            }
        )
    return out


def input_problem(spec: Any, shape: tuple[int, ...]) -> ProblemError | None:
    message = TEMPLATES[spec.name].check_input(spec, shape)
    if message is None:
        return None
    detail = f"{spec.name}: {message}: the model takes {TEMPLATES[spec.name].input}; got input "
    detail += f"of shape {list(shape)}"
    return _error("shape-mismatch", detail, f"/inputs/{INPUT}", model=spec.name,
                  layer=message.split(" ", 1)[0], shapes=[list(shape)])  # fmt: skip
