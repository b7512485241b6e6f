"""Pydantic schemas of the session resource (`/v1/sessions`): what requests send and answers
hold. Tensors pass through unvalidated as in `service.schemas` (`TensorWire`); parameters may
also be init specs, told apart by their `init` member and validated by the session code."""

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

from service.schemas import (
    MAX_LISTED,
    GraphNode,
    Listed,
    TensorBinary,
    TensorData,
    TensorPublic,
    TensorWire,
    _drop_default,
    _optional,
)
from service.schemas_models import ModelSpecWire

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
        json_schema_extra=_drop_default,
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


class _Program(BaseModel):
    expr: str | SkipJsonSchema[None] = _optional(
        "The program as `name = expression` assignments (the language of `/v1/evaluate`). "
        "Exclusive with `nodes`."
    )
    nodes: list[GraphNode] | SkipJsonSchema[None] = _optional(
        "The program as a flat list of operations; needs `outputs`. Exclusive with `expr`."
    )
    outputs: Listed[str] | SkipJsonSchema[None] = Field(
        None,
        description="With `nodes`: the ids of the output nodes.",
        json_schema_extra=_drop_default,
    )

    @model_validator(mode="after")
    def _one_form(self) -> "_Program":
        if self.expr is not None and self.nodes is not None:
            raise ValueError('give the program either as "expr" text or as "nodes", not both')
        if self.nodes is not None and not self.outputs:
            raise ValueError('"nodes" needs "outputs": the ids of the nodes to answer')
        return self


class SessionCreate(_Program):
    """A model (its parameters and program), a loss and an optimizer, kept on the server.

    The body of `GET /v1/sessions/{id}/state` as JSON is one of these too (with `grads`,
    `optimizer_state` and `step_count`): posting it back restores the session."""

    model_config = ConfigDict(extra="forbid")

    model: ModelSpecWire | SkipJsonSchema[None] = _optional(
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
        json_schema_extra=_drop_default,
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


class _Batch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputs: dict[Name, TensorWire] = Field(
        default_factory=dict,
        max_length=MAX_NAMES,
        description="The batch: the program's names that are neither parameters nor buffers "
        "(`x`, `y`...).",
    )


Mode = Literal["train", "eval"]


class _Run(_Batch, _Program):
    """A batch, and optionally this request's own program."""

    mode: Mode = Field(
        "train",
        description="For a model session: `model.train()` (batch norm normalises with the "
        "batch's statistics and updates the running ones, stored with the session; dropout "
        "on) or `model.eval()` (the running statistics; nothing stored).",
    )

    expr: str | SkipJsonSchema[None] = _optional(
        "This request's program: extends the session's (it runs after it and may use its "
        "outputs, the parameters and the buffers by name) or, with `program: replace`, runs "
        "instead of it. Exclusive with `nodes`."
    )
    program: Literal["extend", "replace"] = Field(
        "extend",
        description="How this request's `expr`/`nodes` relate to the session's program.",
    )
    binary: bool = Field(False, description="Answer every tensor in the base64 form.")


class SessionForwardCreate(_Run):
    """Run the program on a batch without recording gradients (torch.no_grad)."""

    mode: Mode = Field(
        "eval",
        description="For a model session: `eval` (the default here: inference, nothing "
        "changes) or `train`, which as `model.train()` under no_grad uses the batch's "
        "statistics and updates the running ones (a new version of the session).",
    )

    outputs: Listed[str] | SkipJsonSchema[None] = Field(
        None,
        description="The values to answer; by default every output. With `nodes`, also the "
        "ids of this request's output nodes.",
        json_schema_extra=_drop_default,
    )


class SessionBackwardCreate(_Run):
    """Forward, then `loss.backward()`: gradients add up in the stored `.grad`."""

    outputs: list[str] = Field(
        default_factory=list,
        max_length=MAX_LISTED,
        description="Values to answer besides the loss. With `nodes`, also the ids of this "
        "request's output nodes.",
    )
    loss: str | SkipJsonSchema[None] = _optional("The output to minimise instead of the session's.")
    include: list[Literal["grads"]] = Field(
        default_factory=list,
        description='`["grads"]` answers every accumulated gradient in full, not just norms.',
    )


class SessionStepCreate(BaseModel):
    """`optimizer.step()` on the accumulated gradients."""

    model_config = ConfigDict(extra="forbid")

    dry_run: bool = Field(
        False, description="Answer the update Δθ of each parameter without applying it."
    )
    binary: bool = Field(False, description="Answer tensors in the base64 form.")


class SessionZeroGradCreate(BaseModel):
    """`optimizer.zero_grad(set_to_none)`."""

    model_config = ConfigDict(extra="forbid")

    set_to_none: bool = Field(
        True, description="Drop the gradients (torch's default) instead of zeroing them."
    )


class SessionBatch(_Batch):
    """One batch of a `train` call."""


class SessionTrainCreate(SessionBackwardCreate):
    """zero_grad, forward, backward and step: once on `inputs`, or once per batch in order."""

    batches: list[SessionBatch] | SkipJsonSchema[None] = Field(
        None,
        min_length=1,
        max_length=MAX_BATCHES,
        description="Several batches: one full iteration on each, in order, committed "
        "together. Exclusive with `inputs`.",
        json_schema_extra=_drop_default,
    )
    include: list[Literal["grad_norms", "grads"]] = Field(  # type: ignore[assignment]
        default_factory=list,
        description='`"grad_norms"` answers the last batch\'s gradient norms (one more pass '
        'over every gradient: 2 ms a step for ResNet-18), `"grads"` the gradients in full.',
    )

    @model_validator(mode="after")
    def _inputs_or_batches(self) -> "SessionTrainCreate":
        if self.batches is not None and self.inputs:
            raise ValueError('give the batch as "inputs" or several as "batches", not both')
        return self


class ParameterPatch(BaseModel):
    """Freeze or unfreeze a parameter, or write new values into it."""

    model_config = ConfigDict(extra="forbid")

    requires_grad: bool | SkipJsonSchema[None] = _optional(
        "false freezes the parameter (backward leaves its `.grad` alone, step skips it)."
    )
    value: TensorWire | SkipJsonSchema[None] = _optional(
        "New values, as `with torch.no_grad(): p.copy_(value)`: the same shape and dtype; "
        "the gradient and optimizer state are kept."
    )


# -- answers -----------------------------------------------------------------------------------


class ArrayInfoPublic(BaseModel):
    shape: list[NonNegativeInt]
    dtype: str


class ParameterInfo(ArrayInfoPublic):
    requires_grad: bool
    grad: bool = Field(description="Whether a gradient is accumulated (`.grad` is not None).")
    optimizer_state: list[str] = Field(description="The optimizer state buffers it has.")


class ProgramPublic(BaseModel):
    model: dict[str, Any] | SkipJsonSchema[None] = _optional(
        "The model template and its options; `GET /v1/models/{name}` (or `?include=program` "
        "here) shows its nodes."
    )
    model_program: dict[str, Any] | SkipJsonSchema[None] = _optional(
        "With `?include=program`: the model's program in training mode (nodes, outputs)."
    )
    expr: str | SkipJsonSchema[None] = _optional("The program text.")
    nodes: list[GraphNode] | SkipJsonSchema[None] = _optional("The program's nodes.")
    outputs: list[str] | SkipJsonSchema[None] = _optional("With `nodes`: the output nodes.")


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


class ParameterChanged(ArrayInfoPublic):
    """A parameter after PUT or PATCH."""

    name: str
    requires_grad: bool
    version: int = Field(description="The session's new version (also the ETag).")


class ParameterPublic(ParameterChanged):
    """One parameter's values, and on request its gradient and optimizer state."""

    value: TensorPublic
    grad: TensorPublic | None | SkipJsonSchema[None] = _optional(
        "With `include=grad`: `.grad`, null when there is none."
    )
    optimizer_state: dict[str, TensorPublic] | SkipJsonSchema[None] = _optional(
        "With `include=optimizer_state`: the optimizer's buffers for it, in torch's names."
    )


class SessionForwardPublic(BaseModel):
    version: int
    outputs: dict[str, TensorPublic]


class SessionBackwardPublic(BaseModel):
    version: int
    loss: float
    outputs: dict[str, TensorPublic]
    grad_norms: dict[str, float] = Field(
        description="L2 norm of each accumulated gradient, by parameter."
    )
    grads: dict[str, TensorPublic] | SkipJsonSchema[None] = _optional(
        'With `include: ["grads"]`: the accumulated gradients.'
    )


class SessionStepPublic(BaseModel):
    version: int
    step_count: int
    dry_run: bool
    updated: list[str] = Field(description="Parameters that had a gradient, so moved.")
    update_norms: dict[str, float] = Field(description="L2 norm of each Δθ.")
    delta: dict[str, TensorPublic] | SkipJsonSchema[None] = _optional(
        "With `dry_run`: Δθ, the update step would apply."
    )


class SessionZeroGradPublic(BaseModel):
    version: int


class SessionTrainPublic(BaseModel):
    version: int
    step_count: int
    losses: list[float] = Field(description="The loss of each batch, before its step.")
    loss: float = Field(description="The last batch's loss.")
    outputs: dict[str, TensorPublic] = Field(description="The last batch's outputs asked for.")
    grad_norms: dict[str, float] | SkipJsonSchema[None] = _optional(
        'With `include: ["grad_norms"]`: the last batch\'s gradient norms.'
    )
    grads: dict[str, TensorPublic] | SkipJsonSchema[None] = _optional(
        'With `include: ["grads"]`: the last batch\'s gradients.'
    )


class SessionStatePublic(BaseModel):
    """The JSON form of a session's state: a `SessionCreate` that restores it."""

    parameters: dict[str, TensorPublic]
    buffers: dict[str, TensorPublic]
    grads: dict[str, TensorPublic]
    optimizer_state: dict[str, dict[str, TensorPublic]]
    optimizer: dict[str, Any]
    step_count: int
    model: dict[str, Any] | SkipJsonSchema[None] = _optional("The model template, options.")
    expr: str | SkipJsonSchema[None] = _optional("The program text.")
    nodes: list[GraphNode] | SkipJsonSchema[None] = _optional("The program's nodes.")
    outputs: list[str] | SkipJsonSchema[None] = _optional("With `nodes`: the output nodes.")
    loss: str | SkipJsonSchema[None] = _optional("The session's loss output.")


class StateDictLoaded(BaseModel):
    """`model.load_state_dict(file, strict)`: what was copied, and what did not match."""

    version: int
    loaded: list[str] = Field(description="The keys copied into the session's tensors.")
    missing_keys: list[str] = Field(description="Session tensors the file lacks (strict=false).")
    unexpected_keys: list[str] = Field(description="File tensors the session lacks (strict=false).")
