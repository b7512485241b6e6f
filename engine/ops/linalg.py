"""Matrix products: mm, bmm, mv, dot, addmm (matmul, composed of them, is in matmul.py).

Shape errors are torch's words; the VJPs are products again (`d.matmul`), hence
differentiable under create_graph."""

from __future__ import annotations

import numpy as np

from ..errors import DTypeError, ShapeError
from ..registry import defop
from . import costs
from . import dual as d
from .shape import (
    _expanded,
)


def _x(shape):
    return "x".join(str(n) for n in shape)


def _need_matrix(shape, name, op):
    if len(shape) != 2:
        raise ShapeError(f"{name} must be a matrix", op=op, shapes=[shape])


def _mm_shape(input_shape, mat2_shape):
    _need_matrix(input_shape, "self", "mm")
    _need_matrix(mat2_shape, "mat2", "mm")
    if input_shape[1] != mat2_shape[0]:
        raise ShapeError(
            f"mat1 and mat2 shapes cannot be multiplied ({_x(input_shape)} and {_x(mat2_shape)})",
            op="mm",
            shapes=[input_shape, mat2_shape],
        )
    return (input_shape[0], mat2_shape[1])


def _same_dtype(a, b, op):
    if a.dtype != b.dtype:
        names = {"float64": "double", "float32": "float", "int64": "long", "bool": "bool"}
        raise DTypeError(
            f"{op}: expected m1 and m2 to have the same dtype, but got: "
            f"{names.get(str(a.dtype), a.dtype)} != {names.get(str(b.dtype), b.dtype)}"
        )


def _mT(x):  # noqa: N802 - torch's name
    return d.swapaxes(x, -1, -2)


def _mat2_grad(g, input, mat2):
    """input^T @ g, laid out as mat2 is (torch's mm_mat2_backward). For linear's W.t() that
    gives a row-major gradient for W, so the optimizer's in-place updates run over matching
    layouts instead of a strided mix (3-4x slower)."""
    m = d.const(mat2)
    if m.ndim == 2 and m.flags.f_contiguous and not m.flags.c_contiguous:
        return _mT(d.matmul(_mT(g), input))
    return d.matmul(_mT(input), g)


@defop(
    "mm",
    cost=costs.contraction(0),
    memory=costs.CONTRACTION,
    method=True,
    shape=_mm_shape,
    vjp=(lambda g, mat2: d.matmul(g, _mT(mat2)), _mat2_grad),
)
def mm(input, mat2):
    """Matrix product of two 2-D tensors."""
    _mm_shape(input.shape, mat2.shape)
    _same_dtype(input, mat2, "mm")
    return input @ mat2


def _bmm_shape(input_shape, mat2_shape):
    for name, s in (("batch1", input_shape), ("batch2", mat2_shape)):
        if len(s) != 3:
            raise ShapeError(f"{name} must be a 3D tensor", op="bmm", shapes=[s])
    want = [input_shape[0], input_shape[2]]
    if list(mat2_shape[:2]) != want:
        raise ShapeError(
            f"Expected size for first two dimensions of batch2 tensor to be: {want} but got: "
            f"{list(mat2_shape[:2])}.",
            op="bmm",
            shapes=[input_shape, mat2_shape],
        )
    return (input_shape[0], input_shape[1], mat2_shape[2])


@defop(
    "bmm",
    cost=costs.contraction(0),
    memory=costs.CONTRACTION,
    method=True,
    shape=_bmm_shape,
    vjp=(lambda g, mat2: d.matmul(g, _mT(mat2)), lambda g, input: d.matmul(_mT(input), g)),
)
def bmm(input, mat2):
    """Batched matrix product of two 3-D tensors with the same batch size."""
    _bmm_shape(input.shape, mat2.shape)
    _same_dtype(input, mat2, "bmm")
    return input @ mat2


def _mv_shape(input_shape, vec_shape):
    if len(input_shape) != 2 or len(vec_shape) != 1:
        raise ShapeError(
            f"vector + matrix @ vector expected, got 1, {len(input_shape)}, {len(vec_shape)}",
            op="mv",
            shapes=[input_shape, vec_shape],
        )
    if input_shape[1] != vec_shape[0]:
        raise ShapeError(
            f"size mismatch, got input ({input_shape[0]}), mat ({_x(input_shape)}), vec "
            f"({vec_shape[0]})",
            op="mv",
            shapes=[input_shape, vec_shape],
        )
    return (input_shape[0],)


@defop(
    "mv",
    cost=costs.contraction(0),
    memory=costs.CONTRACTION,
    method=True,
    shape=_mv_shape,
    vjp=(
        lambda g, vec, input_shape: d.reshape(g, (input_shape[0], 1)) * vec,
        lambda g, input: d.matmul(_mT(input), g),
    ),
)
def mv(input, vec):
    """Matrix-vector product."""
    _mv_shape(input.shape, vec.shape)
    _same_dtype(input, vec, "mv")
    return input @ vec


def _dot_shape(input_shape, other_shape):
    if len(input_shape) != 1 or len(other_shape) != 1:
        raise ShapeError(
            f"1D tensors expected, but got {len(input_shape)}D and {len(other_shape)}D tensors",
            op="dot",
            shapes=[input_shape, other_shape],
        )
    if input_shape[0] != other_shape[0]:
        raise ShapeError(
            f"inconsistent tensor size, expected tensor [{input_shape[0]}] and src "
            f"[{other_shape[0]}] to have the same number of elements, but got "
            f"{input_shape[0]} and {other_shape[0]} elements respectively",
            op="dot",
            shapes=[input_shape, other_shape],
        )
    return ()


@defop(
    "dot",
    cost=costs.contraction(0),
    memory=costs.CONTRACTION,
    method=True,
    shape=_dot_shape,
    vjp=(lambda g, other: g * other, lambda g, input: g * input),
)
def dot(input, other):
    """Inner product of two 1-D tensors."""
    _dot_shape(input.shape, other.shape)
    _same_dtype(input, other, "dot")
    return np.asarray(np.dot(input, other))


def _addmm_shape(input_shape, mat1_shape, mat2_shape, *, beta=1, alpha=1):
    for name, s in (("mat1", mat1_shape), ("mat2", mat2_shape)):
        if len(s) != 2:
            raise ShapeError(
                f"{name} must be a matrix, got {len(s)}-D tensor", op="addmm", shapes=[s]
            )
    out = _mm_shape(mat1_shape, mat2_shape)
    try:
        _expanded(input_shape, out)
    except ShapeError as err:
        raise ShapeError(
            str(err).removeprefix("expand(): "), op="addmm", shapes=[input_shape, out]
        ) from None
    return out


def _scaled(g, k):
    return g if k == 1 else g * k


@defop(
    "addmm",
    cost=costs.contraction(1),
    memory=costs.CONTRACTION,
    method=True,
    shape=_addmm_shape,
    vjp=(
        lambda g, beta: _scaled(g, beta),
        lambda g, mat2, alpha: _scaled(d.matmul(g, _mT(mat2)), alpha),
        lambda g, mat1, mat2, alpha: _scaled(_mat2_grad(g, mat1, mat2), alpha),
    ),
)
def addmm(input, mat1, mat2, *, beta=1, alpha=1):
    """beta * input + alpha * (mat1 @ mat2), input broadcast to the product's shape."""
    _addmm_shape(input.shape, mat1.shape, mat2.shape)
    _same_dtype(mat1, mat2, "addmm")
    prod = _scaled(mat1 @ mat2, alpha)
    if beta == 0:  # torch ignores input then (nan and inf do not propagate)
        return prod
    return _scaled(input, beta) + prod
