"""The program endpoint `POST /v1/evaluate`: the graph language shared by evaluate, jacobian,
hessian and gradcheck, and evaluate's answer."""

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from service.schemas.fields import MAX_LISTED, Listed, drop_default, optional
from service.schemas.tensors import DType, TensorPublic, TensorWire


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

    expr: str | SkipJsonSchema[None] = optional(
        "Assignments `name = expression`, one per line or `;`-separated, in Python "
        "expression syntax with PyTorch's function names minus the `torch.`/`F.` prefix "
        "(`sum(x, dim=1)`, `x.sum(1)`, `softmax(z, dim=-1)`, `x @ W.T + b`, `relu(x)[:, 0]`). "
        "The seed's notation is read as written: `Q = 3a³ − b²` (superscript powers, "
        "unicode minus, `×`/`·`, number-times-name products). Parsed against a whitelist, "
        "never evaluated as Python. Exclusive with `nodes`."
    )
    nodes: list[GraphNode] | SkipJsonSchema[None] = optional(
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
    gradient: TensorWire | SkipJsonSchema[None] = optional(
        "dL/d(output): a tensor of the output's shape (the v of the vector-Jacobian "
        "product). Optional for a scalar output, where it is 1."
    )


class EvaluateCreate(ProgramCreate):
    """Run a program forward, optionally backward, and describe the graph autograd built."""

    outputs: Listed[str] | SkipJsonSchema[None] = Field(
        None,
        description="Names of the values to answer. With `expr` optional: by default "
        "every assigned name. With `nodes` required: the ids of the output nodes.",
        json_schema_extra=drop_default,
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
        json_schema_extra=drop_default,
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
    input: str | SkipJsonSchema[None] = optional(
        "AccumulateGrad only: the name of the input tensor it accumulates into."
    )
    requires_grad: bool | SkipJsonSchema[None] = optional("AccumulateGrad only.")


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
    dag: DagPublic | SkipJsonSchema[None] = optional('With `include: ["dag"]`.')
