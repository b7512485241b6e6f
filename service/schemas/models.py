"""Pydantic schemas of the model templates (`/v1/models`, and `model` in `POST /v1/sessions`):
a spec names a template of `engine.models` and its options; answers describe a template and
its program in the nodes form."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator
from pydantic.json_schema import SkipJsonSchema

from service.schemas.fields import drop_default
from service.schemas.programs import GraphNode

MAX_LAYERS = 64  # most widths an MLP spec may list

Dtype = Literal["float32", "float64"]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: int | SkipJsonSchema[None] = Field(
        None,
        ge=0,
        lt=2**63,
        description="Seed of the random initialisation (numpy's PCG64 behind the engine's "
        "torch.nn.init): the same seed builds the same weights. Without it they differ "
        "every time.",
        json_schema_extra=drop_default,
    )
    dtype: Dtype = Field("float32", description="Parameters' and buffers' element type.")


class ResNetSpec(_Spec):
    """torchvision.models.resnet18 / resnet34 (weights=None): torchvision's architecture,
    initialisation and state_dict names, so a torchvision checkpoint loads unchanged."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "resnet18", "num_classes": 1000, "seed": 0}]},
    )

    name: Literal["resnet18", "resnet34"]
    num_classes: int = Field(1000, ge=1, le=100_000, description="Outputs of `fc`.")
    zero_init_residual: bool = Field(
        False, description="Start each block's last batch norm at weight 0 (torchvision's flag)."
    )


class MLPSpec(_Spec):
    """Linear layers between the given widths, the activation after every one but the last
    (nn.Sequential's names: `0.weight`, `0.bias`, `2.weight`...)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "mlp", "sizes": [784, 256, 10], "seed": 0}]},
    )

    name: Literal["mlp"]
    sizes: list[Annotated[int, Field(ge=1, le=1_000_000)]] = Field(
        [784, 256, 256, 10],
        min_length=2,
        max_length=MAX_LAYERS,
        description="Input width, hidden widths, output width.",
    )
    activation: Literal["relu", "tanh", "sigmoid", "gelu", "leaky_relu", "softplus"] = "relu"
    bias: bool = True
    dropout: float = Field(
        0.0, ge=0, lt=1, description="A Dropout(p) after each activation when above 0."
    )


ModelSpec = ResNetSpec | MLPSpec

ModelSpecWire = Annotated[
    Any,
    PlainValidator(lambda value: value, json_schema_input_type=ModelSpec),
]
"""A model spec, validated by `service.programs.models.parse_spec` (so an unknown name is its own
problem, listing the templates, rather than a union's validation error)."""


class ArrayInfo(BaseModel):
    shape: list[int]
    dtype: str


class ModelSummary(BaseModel):
    """A template, as `GET /v1/models` lists it."""

    name: str
    description: str
    defaults: dict[str, Any] = Field(description="Its options and their default values.")
    input: str = Field(description="What the program's `input` must be.")
    num_parameters: int = Field(description="Parameter elements with the default options.")
    example: dict[str, Any] = Field(description="A `model` member for `POST /v1/sessions`.")


class ModelList(BaseModel):
    models: list[ModelSummary]


class ModelProgramPublic(BaseModel):
    """A template's program for given options and mode: the nodes form sessions run."""

    model: dict[str, Any] = Field(description="The spec, every option filled in.")
    mode: Literal["train", "eval"]
    inputs: list[str] = Field(description="What a batch supplies: `input`.")
    outputs: list[str] = Field(description="What the program defines: `output`.")
    nodes: list[GraphNode] = Field(
        description="One node per layer call, parameters and buffers referred to by their "
        "state_dict names; the last one is `output`."
    )
    layers: dict[str, str] = Field(description="The module each node comes from, by node id.")
    counters: list[str] = Field(
        description="Buffers a training forward adds 1 to (`num_batches_tracked`)."
    )
    parameters: dict[str, ArrayInfo]
    buffers: dict[str, ArrayInfo]
    num_parameters: int
