"""Pydantic schemas of everything on the wire: tensors, problems and health answers.

Tensor fields are documented in full here but not validated by pydantic: a 10^6-element list
would cost a Python call per element. `TensorWire` passes the raw JSON value through, and
`service.wire.decode_tensor` validates and converts it in one vectorised step.
"""

from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PlainValidator,
    model_validator,
)
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
    request_id: str | SkipJsonSchema[None] = _optional(
        "The request's id: its `X-Request-ID` header when that was safe (at most 128 "
        "letters, digits and `._:=+/@-`), else one the server made; also in the answer's "
        "`X-Request-ID` header and in the server's log lines for the request."
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


# -- programs: the graph language, shared by evaluate, jacobian, hessian and gradcheck -------

MAX_LISTED = 1000  # most entries a request may list in `outputs`, `wrt` or `backward`
T = TypeVar("T")
# The bound on the list itself: on an optional field it would also be applied to an explicit
# null, where pydantic raises TypeError (a 500) instead of a validation error.
Listed = Annotated[list[T], Field(max_length=MAX_LISTED)]


class GraphNode(BaseModel):
    """One operation of a generated graph: the `nodes` form of a program."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"id": "a3", "op": "pow", "inputs": ["a", 3]}]},
    )

    id: str = Field(description="Unique name of this node's value; other nodes refer to it.")
    op: str = Field(
        description="A function of `GET /v1/ops` (`pow`, `sum`, `softmax`, `linalg.norm`) or "
        "an operator's registry name (`add`, `sub`, `mul`, `matmul`, `getitem`...)."
    )
    inputs: list[Any] = Field(
        default_factory=list,
        description="Positional arguments: a string is the id of a node or the name of an "
        "input tensor; numbers, booleans and null are constants; a list is a list argument "
        "(cat's tensors, a shape).",
    )
    attrs: dict[str, Any] = Field(
        default_factory=dict,
        description="Keyword arguments, by PyTorch's names (`dim`, `keepdim`...).",
    )


class ProgramCreate(BaseModel):
    """A program and its inputs: `expr` text, or `nodes` with `outputs`."""

    model_config = ConfigDict(extra="forbid")

    expr: str | SkipJsonSchema[None] = _optional(
        "Assignments `name = expression`, one per line or `;`-separated, in Python "
        "expression syntax with PyTorch's function names minus the `torch.`/`F.` prefix "
        "(`sum(x, dim=1)`, `x.sum(1)`, `softmax(z, dim=-1)`, `x @ W.T + b`, `relu(x)[:, 0]`). "
        "The seed's notation is read as written: `Q = 3a³ − b²` (superscript powers, "
        "unicode minus, `×`/`·`, number-times-name products). Parsed against a whitelist, "
        "never evaluated as Python. Exclusive with `nodes`."
    )
    nodes: list[GraphNode] | SkipJsonSchema[None] = _optional(
        "The program as a flat list of operations, for generated graphs (flat, so its size "
        "is not bounded by JSON nesting). Nodes may come in any order; they must form a DAG. "
        "Exclusive with `expr`; needs `outputs`."
    )
    inputs: dict[str, TensorWire] = Field(
        default_factory=dict,
        description="Every free name of the program, by name: a tensor in any wire form. "
        "Those with `requires_grad` are the leaves gradients flow to.",
    )

    @model_validator(mode="after")
    def _one_form(self) -> "ProgramCreate":
        if (self.expr is None) == (self.nodes is None):
            raise ValueError('give the program either as "expr" text or as "nodes", not both')
        if self.nodes is not None and not getattr(self, "outputs", None):
            raise ValueError('"nodes" needs "outputs": the ids of the nodes to answer')
        return self


class BackwardCreate(BaseModel):
    """One `.backward()` call: `output.backward(gradient=gradient, retain_graph=True)`."""

    model_config = ConfigDict(extra="forbid")

    output: str = Field(description="Name of the output to start from.")
    gradient: TensorWire | SkipJsonSchema[None] = _optional(
        "dL/d(output): a tensor of the output's shape (the v of the vector-Jacobian "
        "product). Optional for a scalar output, where it is 1."
    )


class EvaluateCreate(ProgramCreate):
    """Run a program forward, optionally backward, and describe the graph autograd built."""

    outputs: Listed[str] | SkipJsonSchema[None] = Field(
        None,
        description="Names of the values to answer. With `expr` optional: by default "
        "every assigned name. With `nodes` required: the ids of the output nodes.",
        json_schema_extra=_drop_default,
    )
    backward: (
        BackwardCreate
        | Annotated[list[BackwardCreate], Field(max_length=MAX_LISTED)]
        | SkipJsonSchema[None]
    ) = Field(
        None,
        description="Backward pass(es) after the forward one. A list runs each in order "
        "on the same graph and the gradients add up, as repeated "
        "`.backward(retain_graph=True)` calls do; its passes count against `max_flops`.",
        json_schema_extra=_drop_default,
    )
    include: list[Literal["dag"]] = Field(
        default_factory=list,
        description='`["dag"]` adds the backward graph (`dag`) to the answer. Asking for '
        "`Accept: image/svg+xml` answers the same graph as an SVG picture instead of JSON.",
    )
    binary: bool = Field(
        False,
        description="Answer every tensor in the base64 form: exact, and far smaller and "
        "faster than JSON numbers for large tensors.",
    )


class DerivativeCreate(ProgramCreate):
    """A program, the output to differentiate and the inputs to differentiate it by."""

    outputs: Listed[str] | SkipJsonSchema[None] = Field(
        None,
        description="With `nodes` only: the ids of the output nodes.",
        json_schema_extra=_drop_default,
    )
    output: str | SkipJsonSchema[None] = _optional(
        "The output to differentiate; by default the last one assigned (or listed)."
    )
    wrt: Listed[str] | SkipJsonSchema[None] = Field(
        None,
        description="The inputs to differentiate by; by default those with `requires_grad` "
        "(or every floating-point input when none has it).",
        json_schema_extra=_drop_default,
    )
    binary: bool = Field(False, description="Answer every tensor in the base64 form.")


class JacobianCreate(DerivativeCreate):
    """d output / d inputs, every entry, as `torch.autograd.functional.jacobian`."""


class HessianCreate(DerivativeCreate):
    """Second derivatives of a scalar output, as `torch.autograd.functional.hessian`."""


class GradcheckCreate(DerivativeCreate):
    """Backward's Jacobian beside central finite differences, as `torch.autograd.gradcheck`."""

    eps: float = Field(1e-6, gt=0, le=1, description="Finite-difference step.")
    atol: float = Field(1e-5, ge=0, description="Absolute tolerance.")
    rtol: float = Field(1e-3, ge=0, description="Relative tolerance.")


class TensorPublic(BaseModel):
    """A tensor in an answer: `data` (numbers) or, when `binary` was asked, `b64`."""

    data: NestedData | SkipJsonSchema[None] = _optional(
        'Nested list in row-major order; non-finite values are "NaN", "Infinity", "-Infinity".'
    )
    b64: str | SkipJsonSchema[None] = _optional(
        "Base64 of the little-endian row-major bytes (with `binary: true`)."
    )
    shape: list[NonNegativeInt]
    dtype: DType


class OutputPublic(TensorPublic):
    """A computed value and its place in the graph."""

    requires_grad: bool = Field(description="Whether gradients flow back from this value.")
    grad_fn: str | None = Field(
        description="Name of the backward node that made it (`SubBackward0`), as "
        "`tensor.grad_fn`; null for inputs and for values that do not require grad."
    )


class DagNodePublic(BaseModel):
    """One node of the backward graph: a `grad_fn` or the `AccumulateGrad` of a leaf."""

    id: int = Field(description="Position in topological order from the outputs.")
    name: str = Field(description="`PowBackward0`, `AccumulateGrad`, ... as torch names it.")
    op: str | None = Field(description="The forward op that recorded it; null for leaves.")
    shape: list[NonNegativeInt] | None = Field(description="Shape of the value it produced.")
    dtype: DType | None = Field(description="Dtype of the value it produced.")
    next: list[int | None] = Field(
        description="Ids of the nodes this node's gradient flows to, in operand order, as "
        "`next_functions` (null where no gradient flows)."
    )
    input: str | SkipJsonSchema[None] = _optional(
        "AccumulateGrad only: the name of the input tensor it accumulates into."
    )
    requires_grad: bool | SkipJsonSchema[None] = _optional("AccumulateGrad only.")


class DagPublic(BaseModel):
    """The backward graph as JSON, and the same graph as Graphviz DOT text."""

    nodes: list[DagNodePublic] = Field(description="Every node, outputs' nodes first.")
    outputs: dict[str, int | None] = Field(
        description="The node of each answered output; null when it has none (it does not "
        "require grad)."
    )
    dot: str = Field(
        description="Graphviz DOT text drawing the graph as the seed's figure does: arrows "
        "in the forward direction, leaves in light blue. `dot -Tsvg` renders it; "
        "`Accept: image/svg+xml` answers that picture."
    )


class EvaluatePublic(BaseModel):
    """What the program computed, the gradients backward produced, and the graph."""

    outputs: dict[str, OutputPublic] = Field(description="The requested values, by name.")
    grads: dict[str, TensorPublic | None] = Field(
        description="With `backward`: `.grad` of every input with `requires_grad`; null "
        "when no gradient reached it (torch leaves `.grad` None then). Empty without "
        "`backward`."
    )
    dag: DagPublic | SkipJsonSchema[None] = _optional('With `include: ["dag"]`.')


class JacobianBlockPublic(TensorPublic):
    """d output / d one input: the shape is output shape + input shape, as torch's."""

    matrix_shape: list[NonNegativeInt] = Field(
        description="[output elements, input elements]: the same data read as a matrix."
    )


class JacobianPublic(BaseModel):
    output: str = Field(description="The output differentiated.")
    output_shape: list[NonNegativeInt]
    wrt: list[str] = Field(description="The inputs, in the order of the matrix's columns.")
    jacobian: dict[str, JacobianBlockPublic] = Field(description="One block per input.")
    matrix: TensorPublic = Field(
        description="The full Jacobian, [output elements, sum of input elements]: the "
        "blocks side by side in `wrt` order."
    )


class HessianPublic(BaseModel):
    output: str = Field(description="The scalar output differentiated twice.")
    wrt: list[str] = Field(description="The inputs, in the order of the matrix's rows.")
    hessian: dict[str, dict[str, JacobianBlockPublic]] = Field(
        description="`hessian[x][y]` is d²output / dx dy, of shape x.shape + y.shape."
    )
    matrix: TensorPublic = Field(
        description="The full symmetric Hessian over all `wrt` inputs flattened in order."
    )


class GradcheckBlockPublic(BaseModel):
    """One input's Jacobian both ways."""

    analytical: TensorPublic = Field(description="From backward, [output, input elements].")
    numerical: TensorPublic = Field(description="From central differences, same shape.")
    max_abs_diff: float = Field(description="Largest |analytical - numerical|.")
    passed: bool = Field(description="Every entry within atol + rtol * |numerical|.")


class GradcheckWorstPublic(BaseModel):
    """The entry furthest outside the tolerance (or closest to it when all pass)."""

    input: str
    output_index: int = Field(description="Flat index into the output.")
    input_index: int = Field(description="Flat index into the input.")
    analytical: float
    numerical: float


class GradcheckPublic(BaseModel):
    output: str
    passed: bool = Field(description="Whether every input passed.")
    max_abs_diff: float = Field(description="Largest difference over every input.")
    eps: float
    atol: float
    rtol: float
    worst: GradcheckWorstPublic | None = Field(
        description="Where the two differ most relative to the tolerance; null with no "
        "entries at all."
    )
    checks: dict[str, GradcheckBlockPublic] = Field(description="One per input, by name.")


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
