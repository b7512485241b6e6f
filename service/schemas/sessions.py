"""The session resource (`/v1/sessions`): what creating one sends, and what reading one
answers. Tensors pass through unvalidated as in `service.schemas.tensors` (`TensorWire`);
parameters may also be init specs, told apart by their `init` member and validated by the
session code."""

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PlainValidator,
    StringConstraints,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from service.schemas.fields import Listed, drop_default, optional
from service.schemas.models import ModelSpecWire
from service.schemas.programs import GraphNode
from service.schemas.tensors import TensorBinary, TensorData, TensorPublic, TensorWire

MAX_NAMES = 10_000  # parameters, buffers or batch inputs of one request
MAX_BATCHES = 1000  # batches of one `train` call

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$|^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)+$"

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN, max_length=128)]
"""A parameter, buffer or batch input name: an identifier, so `expr` programs can use it by
name, or a state_dict key (`layer1.0.conv1.weight`, `0.bias`), which `nodes` programs and the
model templates' programs refer to."""

OptimizerSlot = Literal["momentum_buffer", "step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"]

_FINITE = ConfigDict(extra="forbid", allow_inf_nan=False)


class InitSpec(BaseModel):
    """A parameter built on the server with `torch.nn.init`'s formulas."""

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={
            "examples": [
                {"init": "kaiming_uniform", "shape": [10, 512], "a": 2.23606797749979, "seed": 1},
                {"init": "zeros", "shape": [10]},
            ]
        },
    )

    init: Literal[
        "zeros",
        "ones",
        "normal",
        "uniform",
        "kaiming_uniform",
        "kaiming_normal",
        "xavier_uniform",
        "xavier_normal",
    ] = Field(
        description="`torch.nn.init`'s function of that name (without the trailing `_`): "
        "normal N(mean, std²); uniform U(a, b); kaiming_uniform U(−bound, bound) with "
        "bound = gain·√(3 / fan), gain = calculate_gain(nonlinearity, a) (`a` = √5 is "
        "nn.Linear's weight init, bound = 1/√fan_in); kaiming_normal N(0, (gain/√fan)²); "
        "xavier_uniform with bound = gain·√(6 / (fan_in + fan_out)); xavier_normal "
        "N(0, 2·gain²/(fan_in + fan_out)). fan_in = shape[1]·∏shape[2:], fan_out = "
        "shape[0]·∏shape[2:]."
    )
    shape: list[NonNegativeInt] = Field(max_length=32, description="Dimensions.")
    dtype: Literal["float32", "float64"] = Field("float32", description="Element type.")
    seed: int | SkipJsonSchema[None] = Field(
        None,
        ge=0,
        lt=2**63,
        description="Seed of the random draw (numpy's PCG64), for reproducible values; "
        "without it the values differ every time.",
        json_schema_extra=drop_default,
    )
    requires_grad: bool = Field(True, description="Train it (false: frozen).")
    mean: float = Field(0.0, description="normal: the mean.")
    std: float = Field(1.0, ge=0, description="normal: the standard deviation.")
    a: float = Field(
        0.0,
        description="uniform: the lower bound; kaiming_*: the negative slope of the "
        "leaky_relu after this layer.",
    )
    b: float = Field(1.0, description="uniform: the upper bound.")
    mode: Literal["fan_in", "fan_out"] = Field("fan_in", description="kaiming_*.")
    nonlinearity: Literal[
        "linear", "conv1d", "conv2d", "conv3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu"
    ] = Field("leaky_relu", description="kaiming_*: as torch.nn.init.calculate_gain.")
    gain: float = Field(1.0, description="xavier_*: the scaling factor.")


_ParameterForms = InitSpec | TensorData | TensorBinary | Any

ParameterWire = Annotated[
    Any,
    PlainValidator(lambda value: value, json_schema_input_type=_ParameterForms),
]
"""A parameter: a tensor in any wire form (`requires_grad` defaults to true here, as for
`nn.Parameter`) or an `InitSpec`. Validated by the session code, which points at the field."""


class SGDCreate(BaseModel):
    """torch.optim.SGD(params, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
    nesterov=False, maximize=False)."""

    model_config = _FINITE

    type: Literal["sgd"]
    lr: float = 1e-3
    momentum: float = 0.0
    dampening: float = 0.0
    weight_decay: float = 0.0
    nesterov: bool = False
    maximize: bool = False


class AdamCreate(BaseModel):
    """torch.optim.Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
    amsgrad=False, maximize=False)."""

    model_config = _FINITE

    type: Literal["adam"]
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    amsgrad: bool = False
    maximize: bool = False


class AdamWCreate(AdamCreate):
    """torch.optim.AdamW: Adam with decoupled weight decay, by default 1e-2."""

    type: Literal["adamw"]  # type: ignore[assignment]
    weight_decay: float = 1e-2


OptimizerCreate = Annotated[SGDCreate | AdamCreate | AdamWCreate, Field(discriminator="type")]


class ProgramFields(BaseModel):
    expr: str | SkipJsonSchema[None] = optional(
        "The program as `name = expression` assignments (the language of `/v1/evaluate`). "
        "Exclusive with `nodes`."
    )
    nodes: list[GraphNode] | SkipJsonSchema[None] = optional(
        "The program as a flat list of operations; needs `outputs`. Exclusive with `expr`."
    )
    outputs: Listed[str] | SkipJsonSchema[None] = Field(
        None,
        description="With `nodes`: the ids of the output nodes.",
        json_schema_extra=drop_default,
    )

    @model_validator(mode="after")
    def _one_form(self) -> "ProgramFields":
        if self.expr is not None and self.nodes is not None:
            raise ValueError('give the program either as "expr" text or as "nodes", not both')
        if self.nodes is not None and not self.outputs:
            raise ValueError('"nodes" needs "outputs": the ids of the nodes to answer')
        return self


class SessionCreate(ProgramFields):
    """A model (its parameters and program), a loss and an optimizer, kept on the server.

    The body of `GET /v1/sessions/{id}/state` as JSON is one of these too (with `grads`,
    `optimizer_state` and `step_count`): posting it back restores the session."""

    model_config = ConfigDict(extra="forbid")

    model: ModelSpecWire | SkipJsonSchema[None] = optional(
        'A template of `GET /v1/models` built on the server, e.g. `{"name": "resnet18", '
        '"num_classes": 1000, "seed": 0}`: its parameters and buffers under their '
        "state_dict names, and its program (reads `input`, defines `output`; `GET "
        "/v1/models/{name}` shows it), run in the mode each call asks for. `expr`/`nodes` are "
        "then optional and run after it (a loss on `output`, say). Tensors given in "
        "`parameters`/`buffers` replace the template's of the same name or add to them."
    )
    parameters: dict[Name, ParameterWire] = Field(
        default_factory=dict,
        max_length=MAX_NAMES,
        description="The trainable tensors by name: a tensor (`requires_grad` true unless "
        "given false) or an init spec built on the server. Floating point. At least one, "
        "unless `model` gives them.",
    )
    buffers: dict[Name, TensorWire] = Field(
        default_factory=dict,
        max_length=MAX_NAMES,
        description="Tensors the program reads but the optimizer never changes (constants, "
        "masks, running statistics).",
    )
    optimizer: OptimizerCreate = Field(
        default_factory=lambda: SGDCreate(type="sgd"),
        description="The optimizer and its hyperparameters; omitted ones take torch's "
        "defaults, and values torch refuses are refused.",
    )
    loss: str | SkipJsonSchema[None] = Field(
        None,
        description="The output of the program that `backward` and `train` minimise: a "
        "scalar. Requests may name another, or add it with their own program.",
        json_schema_extra=drop_default,
    )
    grads: dict[Name, TensorWire] = Field(
        default_factory=dict,
        max_length=MAX_NAMES,
        description="Restore: accumulated gradients (`.grad`) by parameter.",
    )
    optimizer_state: dict[Name, dict[OptimizerSlot, TensorWire]] = Field(
        default_factory=dict,
        max_length=MAX_NAMES,
        description="Restore: the optimizer's per-parameter state, in torch's names "
        "(`momentum_buffer`; `step`, `exp_avg`, `exp_avg_sq`, `max_exp_avg_sq`).",
    )
    step_count: NonNegativeInt = Field(0, description="Restore: optimizer steps taken.")


class ArrayInfoPublic(BaseModel):
    shape: list[NonNegativeInt]
    dtype: str


class ParameterInfo(ArrayInfoPublic):
    requires_grad: bool
    grad: bool = Field(description="Whether a gradient is accumulated (`.grad` is not None).")
    optimizer_state: list[str] = Field(description="The optimizer state buffers it has.")


class ProgramPublic(BaseModel):
    model: dict[str, Any] | SkipJsonSchema[None] = optional(
        "The model template and its options; `GET /v1/models/{name}` (or `?include=program` "
        "here) shows its nodes."
    )
    model_program: dict[str, Any] | SkipJsonSchema[None] = optional(
        "With `?include=program`: the model's program in training mode (nodes, outputs)."
    )
    expr: str | SkipJsonSchema[None] = optional("The program text.")
    nodes: list[GraphNode] | SkipJsonSchema[None] = optional("The program's nodes.")
    outputs: list[str] | SkipJsonSchema[None] = optional("With `nodes`: the output nodes.")


class SessionPublic(BaseModel):
    """A session without its tensors' values."""

    id: str
    version: int = Field(description="Increases by one with every change; the ETag.")
    step_count: int = Field(description="Optimizer steps taken.")
    created_at: str = Field(description="RFC 3339, UTC.")
    updated_at: str
    last_used_at: str
    expires_at: str = Field(description="When it expires unless used before.")
    stored_bytes: int
    parameters: dict[str, ParameterInfo]
    buffers: dict[str, ArrayInfoPublic]
    optimizer: dict[str, Any] = Field(description="Type and every hyperparameter.")
    program: ProgramPublic
    loss: str | None


class SessionCreated(SessionPublic):
    token: str = Field(
        description="The secret for `Authorization: Bearer <token>` on every later call. "
        "Shown only here: the server keeps only its hash."
    )


class SessionStatePublic(BaseModel):
    """The JSON form of a session's state: a `SessionCreate` that restores it."""

    parameters: dict[str, TensorPublic]
    buffers: dict[str, TensorPublic]
    grads: dict[str, TensorPublic]
    optimizer_state: dict[str, dict[str, TensorPublic]]
    optimizer: dict[str, Any]
    step_count: int
    model: dict[str, Any] | SkipJsonSchema[None] = optional("The model template, options.")
    expr: str | SkipJsonSchema[None] = optional("The program text.")
    nodes: list[GraphNode] | SkipJsonSchema[None] = optional("The program's nodes.")
    outputs: list[str] | SkipJsonSchema[None] = optional("With `nodes`: the output nodes.")
    loss: str | SkipJsonSchema[None] = optional("The session's loss output.")


class StateDictLoaded(BaseModel):
    """`model.load_state_dict(file, strict)`: what was copied, and what did not match."""

    version: int
    loaded: list[str] = Field(description="The keys copied into the session's tensors.")
    missing_keys: list[str] = Field(description="Session tensors the file lacks (strict=false).")
    unexpected_keys: list[str] = Field(description="File tensors the session lacks (strict=false).")
