"""Tensors on the wire, as requests send them and answers hold them.

Tensor fields are documented in full here but not validated by pydantic: a 10^6-element list
would cost a Python call per element. `TensorWire` passes the raw JSON value through, and
`service.wire.decode_tensor` validates and converts it in one vectorised step.
"""

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PlainValidator,
)
from pydantic.json_schema import SkipJsonSchema
from typing_extensions import TypeAliasType

from service.schemas.fields import optional

DType = Literal["float32", "float64", "int64", "bool"]
NonFiniteToken = Literal["NaN", "Infinity", "-Infinity"]

Element = TypeAliasType("Element", bool | int | float | NonFiniteToken)
NestedData = TypeAliasType("NestedData", Element | list["NestedData"])


class TensorData(BaseModel):
    """A tensor written as numbers."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"data": [2, 3], "requires_grad": True},
                {"data": [1, 2, 3, 4, 5, 6], "shape": [2, 3], "dtype": "float64"},
                {"data": ["NaN", 1.5, "-Infinity"], "dtype": "float32"},
            ]
        },
    )

    data: NestedData = Field(
        description="A number, a nested list in row-major order, or (with `shape`) a flat "
        'list. Non-finite values are the strings "NaN", "Infinity" and "-Infinity".'
    )
    shape: list[NonNegativeInt] | SkipJsonSchema[None] = optional(
        "Dimensions. Without it the nesting of `data` gives the shape; with it `data` is "
        "nested exactly so or flat with the product of `shape` elements."
    )
    dtype: DType | SkipJsonSchema[None] = optional(
        "Element type. Without it the type follows `torch.tensor`: all booleans give bool, "
        "all integers int64, any float (or non-finite string) float32."
    )
    requires_grad: bool = Field(
        False,
        description="Record operations on this tensor for gradients. Floating-point only; "
        "integer `data` without `dtype` is then read as float32 (`[2, 3]` is `[2., 3.]`, as "
        "the seed's `torch.tensor([2., 3.], requires_grad=True)`); an explicit int64 or bool "
        "dtype is refused.",
    )


class TensorBinary(BaseModel):
    """A tensor as raw bytes: the fast form for large tensors."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"b64": "AACAPwAAAEA=", "shape": [2], "dtype": "float32"}]},
    )

    b64: str = Field(
        description="Standard base64 (with padding, no line breaks) of the elements as "
        "little-endian bytes in row-major order; bool is one byte, 0 or 1."
    )
    shape: list[NonNegativeInt] = Field(description="Dimensions; [] for a scalar.")
    dtype: DType = Field(description="Element type; fixes the byte width.")
    requires_grad: bool = Field(False, description="Floating-point tensors only.")


_TensorForms = NestedData | TensorData | TensorBinary

TensorWire = Annotated[
    _TensorForms,
    PlainValidator(lambda value: value, json_schema_input_type=_TensorForms),
]
"""A tensor in any wire form: a number or nested list (shorthand), `TensorData` or
`TensorBinary`. Pydantic passes it through untouched; decode it with `wire.decode_tensor`."""


class TensorPublic(BaseModel):
    """A tensor in an answer: `data` (numbers) or, when `binary` was asked, `b64`."""

    data: NestedData | SkipJsonSchema[None] = optional(
        'Nested list in row-major order; non-finite values are "NaN", "Infinity", "-Infinity".'
    )
    b64: str | SkipJsonSchema[None] = optional(
        "Base64 of the little-endian row-major bytes (with `binary: true`)."
    )
    shape: list[NonNegativeInt]
    dtype: DType
