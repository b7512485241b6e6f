"""`/v1/models`: the model templates sessions can be built from, and each one's program."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from starlette.concurrency import run_in_threadpool

from service.http.deps import SettingsDep
from service.http.routing import ORJSONRoute
from service.problems import problem_responses
from service.programs import models
from service.schemas.models import ModelList, ModelProgramPublic

router = APIRouter(prefix="/v1/models", tags=["models"], route_class=ORJSONRoute)

JSON = "application/json"

_LIST_EXAMPLE = {
    "models": [
        {
            "name": "resnet18",
            "description": "torchvision's ResNet-18 (11.7 M parameters at 1000 classes): conv1 "
            "7x7/2, max pool, four stages of two BasicBlocks (64, 128, 256, 512 channels), "
            "average pool, fc.",
            "defaults": {"dtype": "float32", "num_classes": 1000, "zero_init_residual": False},
            "input": "(N, 3, H, W) float images; H and W of 32 or more (batch 1 in training: 64 "
            "or more, so layer4's batch norms see more than one value per channel)",
            "num_parameters": 11689512,
            "example": {"name": "resnet18", "num_classes": 1000, "seed": 0},
        },
        {
            "name": "mlp",
            "description": "A multilayer perceptron: nn.Linear between the given widths, an "
            "activation after each but the last (nn.Sequential's parameter names 0.weight, "
            "0.bias, 2.weight...).",
            "defaults": {
                "dtype": "float32",
                "sizes": [784, 256, 256, 10],
                "activation": "relu",
                "bias": True,
                "dropout": 0.0,
            },  # fmt: skip
            "input": "(N, sizes[0]) or (sizes[0],) floats",
            "num_parameters": 269322,
            "example": {"name": "mlp", "sizes": [784, 256, 256, 10], "seed": 0},
        },
    ]
}

_PROGRAM_EXAMPLE = {
    "model": {
        "name": "mlp",
        "sizes": [4, 8, 3],
        "activation": "relu",
        "bias": True,
        "dropout": 0.0,
        "dtype": "float32",
    },  # fmt: skip
    "mode": "train",
    "inputs": ["input"],
    "outputs": ["output"],
    "nodes": [
        {"id": "0", "op": "linear", "inputs": ["input", "0.weight", "0.bias"]},
        {"id": "1", "op": "relu", "inputs": ["0"]},
        {"id": "output", "op": "linear", "inputs": ["1", "2.weight", "2.bias"]},
    ],
    "layers": {"0": "0", "1": "1", "output": "2"},
    "counters": [],
    "parameters": {
        "0.weight": {"shape": [8, 4], "dtype": "float32"},
        "0.bias": {"shape": [8], "dtype": "float32"},
        "2.weight": {"shape": [3, 8], "dtype": "float32"},
        "2.bias": {"shape": [3], "dtype": "float32"},
    },
    "buffers": {},
    "num_parameters": 67,
}


def _ok(example: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    return {200: {"description": "Successful Response",
                  "content": {JSON: {"examples": {"example": example}}}}}  # fmt: skip


@router.get("", summary="List the model templates", response_model=ModelList,
            responses=_ok(_LIST_EXAMPLE) | problem_responses(500))  # fmt: skip
async def list_models() -> dict[str, Any]:
    """The templates `POST /v1/sessions` builds with `{"model": {"name": ..., options}}`,
    with their options' defaults and what their `input` must be."""
    return {"models": await run_in_threadpool(models.summaries)}


@router.get(
    "/{name}",
    summary="A template's program (nodes form)",
    response_model=ModelProgramPublic,
    responses=_ok(_PROGRAM_EXAMPLE) | problem_responses(404, 422, 500),
)
async def get_model(
    settings: SettingsDep,
    name: Annotated[str, Path(max_length=64, description="A template.", examples=["resnet18"])],
    mode: Annotated[
        Literal["train", "eval"],
        Query(
            description="`model.train()` (batch statistics, running-stat updates, "
            "dropout) or `model.eval()`."
        ),  # fmt: skip
    ] = "train",
    num_classes: Annotated[int | None, Query(description="ResNet: outputs of fc.")] = None,
    zero_init_residual: Annotated[bool | None, Query(description="ResNet.")] = None,
    sizes: Annotated[
        str | None,
        Query(
            max_length=1000, description="MLP: widths, comma-separated.", examples=["784,256,10"]
        ),  # fmt: skip
    ] = None,
    activation: Annotated[str | None, Query(description="MLP: relu, tanh, ...")] = None,
    bias: Annotated[bool | None, Query(description="MLP.")] = None,
    dropout: Annotated[float | None, Query(description="MLP.")] = None,
    dtype: Annotated[Literal["float32", "float64"] | None, Query()] = None,
) -> dict[str, Any]:
    """The program a session of this template runs in the given mode: it reads `input` and
    the parameters and buffers by their state_dict names, and defines `output`, one node per
    layer call (`conv2d`, `batch_norm`, `relu`, `max_pool2d`, `add`, `adaptive_avg_pool2d`,
    `flatten`, `linear`...). Send it as `nodes` to `POST /v1/evaluate` with the tensors, and
    it computes what the session does. Options as query parameters (`?num_classes=10`)."""
    template = models.template_of(name, "", slug="model-not-found")
    given: dict[str, Any] = {
        "num_classes": num_classes,
        "zero_init_residual": zero_init_residual,
        "activation": activation,
        "bias": bias,
        "dropout": dropout,
        "dtype": dtype,
    }
    if sizes is not None:
        parts = [s.strip() for s in sizes.split(",")]
        given["sizes"] = [int(s) if s.lstrip("-").isdigit() else s for s in parts]
    options = {k: v for k, v in given.items() if v is not None}
    spec = models.parse_spec({"name": template.name, **options}, pointer="")
    models.check_size(spec, settings, pointer="")
    return await run_in_threadpool(models.describe, spec, mode)
