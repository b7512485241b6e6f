"""Pydantic schemas of everything on the wire: tensors, problems and health answers.

Tensor fields are documented in full here but not validated by pydantic: a 10^6-element list
would cost a Python call per element. `TensorWire` passes the raw JSON value through, and
`service.wire.decode_tensor` validates and converts it in one vectorised step.
"""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PlainValidator
from pydantic.json_schema import SkipJsonSchema
from typing_extensions import TypeAliasType

DType = Literal["float32", "float64", "int64", "bool"]
NonFiniteToken = Literal["NaN", "Infinity", "-Infinity"]

Element = TypeAliasType("Element", bool | int | float | NonFiniteToken)
NestedData = TypeAliasType("NestedData", Element | list["NestedData"])


def _drop_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def _optional(description: str) -> Any:
    """A field that is absent rather than null, documented without a `null` default."""
    return Field(None, description=description, json_schema_extra=_drop_default)


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
    shape: list[NonNegativeInt] | SkipJsonSchema[None] = _optional(
        "Dimensions. Without it the nesting of `data` gives the shape; with it `data` is "
        "nested exactly so or flat with the product of `shape` elements."
    )
    dtype: DType | SkipJsonSchema[None] = _optional(
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


class ProblemErrorItem(BaseModel):
    """One invalid part of the request."""

    detail: str = Field(description="What is wrong with this part.")
    pointer: str | SkipJsonSchema[None] = _optional(
        'RFC 6901 JSON pointer into the request body ("" is the whole body).'
    )
    parameter: str | SkipJsonSchema[None] = _optional(
        "Name of the query, path, header or cookie parameter, when not in the body."
    )


class Problem(BaseModel):
    """RFC 9457 problem details: the body of every non-2xx answer."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "/problems/invalid-tensor",
                    "title": "Invalid tensor",
                    "status": 422,
                    "detail": "data has 5 elements but shape [2, 3] needs 6",
                    "instance": "/v1/evaluate",
                    "errors": [{"pointer": "/inputs/a/data", "detail": "5 elements, need 6"}],
                }
            ]
        },
    )

    type: str = Field(
        "about:blank",
        description='URI of the problem type; "about:blank" for a plain HTTP status, '
        "otherwise a path under /problems/ describing it.",
    )
    title: str = Field(description="Short summary of the problem type; fixed per type.")
    status: int = Field(description="The HTTP status code of this answer.")
    detail: str = Field(description="What went wrong in this occurrence.")
    instance: str | SkipJsonSchema[None] = _optional("Path of the request that failed.")
    errors: list[ProblemErrorItem] | SkipJsonSchema[None] = _optional(
        "Each invalid field of the request."
    )


class ProblemTypePublic(BaseModel):
    """One documented problem type."""

    type: str = Field(description="The `type` member problems of this kind carry.")
    status: int
    title: str
    description: str


class Liveness(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready"] = "ready"
    checks: dict[str, str] = Field(description="Each readiness check and its result.")
