"""A session's calls (`forward`, `backward`, `step`, `zero_grad`, `train`): requests and
answers."""

from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from service.schemas.fields import MAX_LISTED, Listed, drop_default, optional
from service.schemas.sessions import MAX_BATCHES, MAX_NAMES, Name, ProgramFields
from service.schemas.tensors import TensorPublic, TensorWire


class BatchFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputs: dict[Name, TensorWire] = Field(
        default_factory=dict,
        max_length=MAX_NAMES,
        description="The batch: the program's names that are neither parameters nor buffers "
        "(`x`, `y`...).",
    )


Mode = Literal["train", "eval"]


class RunFields(BatchFields, ProgramFields):
    """A batch, and optionally this request's own program."""

    mode: Mode = Field(
        "train",
        description="For a model session: `model.train()` (batch norm normalises with the "
        "batch's statistics and updates the running ones, stored with the session; dropout "
        "on) or `model.eval()` (the running statistics; nothing stored).",
    )

    expr: str | SkipJsonSchema[None] = optional(
        "This request's program: extends the session's (it runs after it and may use its "
        "outputs, the parameters and the buffers by name) or, with `program: replace`, runs "
        "instead of it. Exclusive with `nodes`."
    )
    program: Literal["extend", "replace"] = Field(
        "extend",
        description="How this request's `expr`/`nodes` relate to the session's program.",
    )
    binary: bool = Field(False, description="Answer every tensor in the base64 form.")


class SessionForwardCreate(RunFields):
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
        json_schema_extra=drop_default,
    )


class SessionBackwardCreate(RunFields):
    """Forward, then `loss.backward()`: gradients add up in the stored `.grad`."""

    outputs: list[str] = Field(
        default_factory=list,
        max_length=MAX_LISTED,
        description="Values to answer besides the loss. With `nodes`, also the ids of this "
        "request's output nodes.",
    )
    loss: str | SkipJsonSchema[None] = optional("The output to minimise instead of the session's.")
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


class SessionBatch(BatchFields):
    """One batch of a `train` call."""


class SessionTrainCreate(SessionBackwardCreate):
    """zero_grad, forward, backward and step: once on `inputs`, or once per batch in order."""

    batches: list[SessionBatch] | SkipJsonSchema[None] = Field(
        None,
        min_length=1,
        max_length=MAX_BATCHES,
        description="Several batches: one full iteration on each, in order, committed "
        "together. Exclusive with `inputs`.",
        json_schema_extra=drop_default,
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
    grads: dict[str, TensorPublic] | SkipJsonSchema[None] = optional(
        'With `include: ["grads"]`: the accumulated gradients.'
    )


class SessionStepPublic(BaseModel):
    version: int
    step_count: int
    dry_run: bool
    updated: list[str] = Field(description="Parameters that had a gradient, so moved.")
    update_norms: dict[str, float] = Field(description="L2 norm of each Δθ.")
    delta: dict[str, TensorPublic] | SkipJsonSchema[None] = optional(
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
    grad_norms: dict[str, float] | SkipJsonSchema[None] = optional(
        'With `include: ["grad_norms"]`: the last batch\'s gradient norms.'
    )
    grads: dict[str, TensorPublic] | SkipJsonSchema[None] = optional(
        'With `include: ["grads"]`: the last batch\'s gradients.'
    )
