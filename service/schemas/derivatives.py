"""`POST /v1/jacobian`, `/v1/hessian`, `/v1/gradcheck`: requests and answers."""

from pydantic import (
    BaseModel,
    Field,
    NonNegativeInt,
)
from pydantic.json_schema import SkipJsonSchema

from service.schemas.fields import Listed, drop_default, optional
from service.schemas.programs import ProgramCreate
from service.schemas.tensors import TensorPublic


class DerivativeCreate(ProgramCreate):
    """A program, the output to differentiate and the inputs to differentiate it by."""

    outputs: Listed[str] | SkipJsonSchema[None] = Field(
        None,
        description="With `nodes` only: the ids of the output nodes.",
        json_schema_extra=drop_default,
    )
    output: str | SkipJsonSchema[None] = optional(
        "The output to differentiate; by default the last one assigned (or listed)."
    )
    wrt: Listed[str] | SkipJsonSchema[None] = Field(
        None,
        description="The inputs to differentiate by; by default those with `requires_grad` "
        "(or every floating-point input when none has it).",
        json_schema_extra=drop_default,
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
