"""`GET /v1/ops`: the names of the expression language."""

from typing import Literal

from pydantic import (
    BaseModel,
    Field,
)


class OpPublic(BaseModel):
    """One name of the language."""

    name: str = Field(description="As written in `expr` (`sum`, `linalg.norm`, `+`, `.T`).")
    kind: Literal["function", "operator", "attribute"]
    signature: str = Field(description="Parameters as in PyTorch, defaults included.")
    method: bool = Field(description="Also callable as a Tensor method: `x.sum(1)`.")
    grad_fn: str | None = Field(
        description="Name of the backward node of a primitive (`SumBackward0`); null for "
        "composites, whose graph is made of their primitives' nodes, and for ops without "
        "gradient."
    )
    family: str = Field(description="The registry module defining it.")
    doc: str = Field(description="One line.")
