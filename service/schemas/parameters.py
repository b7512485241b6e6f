"""A session's parameters (`/v1/sessions/{id}/parameters/{name}`): the patch and the answers."""

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
)
from pydantic.json_schema import SkipJsonSchema

from service.schemas.fields import optional
from service.schemas.sessions import ArrayInfoPublic
from service.schemas.tensors import TensorPublic, TensorWire


class ParameterPatch(BaseModel):
    """Freeze or unfreeze a parameter, or write new values into it."""

    model_config = ConfigDict(extra="forbid")

    requires_grad: bool | SkipJsonSchema[None] = optional(
        "false freezes the parameter (backward leaves its `.grad` alone, step skips it)."
    )
    value: TensorWire | SkipJsonSchema[None] = optional(
        "New values, as `with torch.no_grad(): p.copy_(value)`: the same shape and dtype; "
        "the gradient and optimizer state are kept."
    )


class ParameterChanged(ArrayInfoPublic):
    """A parameter after PUT or PATCH."""

    name: str
    requires_grad: bool
    version: int = Field(description="The session's new version (also the ETag).")


class ParameterPublic(ParameterChanged):
    """One parameter's values, and on request its gradient and optimizer state."""

    value: TensorPublic
    grad: TensorPublic | None | SkipJsonSchema[None] = optional(
        "With `include=grad`: `.grad`, null when there is none."
    )
    optimizer_state: dict[str, TensorPublic] | SkipJsonSchema[None] = optional(
        "With `include=optimizer_state`: the optimizer's buffers for it, in torch's names."
    )
