"""matmul composed of mm, bmm, mv and dot as at::matmul composes them.

It reproduces ATen's `_matmul_impl` call for call (dot, mv, unsqueeze/mm/squeeze_, mm,
folding the batch of an N-d operand into one matrix for mm/mv, or expand/reshape/bmm),
including its choice between folding and bmm (the operands' strides and requires_grad), so
grad_fn graphs and shape errors are torch's for every rank combination."""

from __future__ import annotations

import math

import numpy as np

from ..dispatch import apply
from ..errors import ShapeError
from ..registry import OPS, deffn, defop
from ..tensor import Tensor
from . import costs
from . import dual as d
from .arrange import t, transpose
from .linalg import _bmm_shape, _dot_shape, _mm_shape, _mv_shape, bmm, dot, mm, mv
from .shape import _dim_kind, _squeeze_shape, contiguous, expand, reshape, squeeze, unsqueeze


@defop(
    "squeeze_",
    public=False,
    shape=_squeeze_shape,
    vjp=lambda g, input_shape: d.reshape(g, input_shape),
    grad_fn=lambda a: f"SqueezeBackward{3 + _dim_kind(a['dim'])}",
)
def _squeeze_(input, *, dim=None):
    """torch's in-place squeeze_ (SqueezeBackward3/4/5), which matmul's 1-D @ 2-D path uses;
    here it returns a new tensor."""
    return input.reshape(_squeeze_shape(input.shape, dim=dim))


def _unsafe_view(x, shape):
    return apply(OPS["_unsafe_view"], (x,), {"shape": tuple(shape)})


def _should_fold(a, b):
    """ATen's should_fold: fold the batch of the N-d operand into mm/mv rather than bmm."""
    larger = a.ndim >= b.ndim
    t1 = a._a if larger else np.swapaxes(b._a, -1, -2)
    if not (t1.ndim >= 3 and (b.ndim if larger else a.ndim) <= 2):
        return False
    if (b if larger else a)._rg:  # a cheaper backward for the small operand
        return True
    if a.ndim == 2:
        return False
    if t1.size == 0:
        return True
    st, sh = t1.strides, t1.shape
    return all(st[i] == st[i + 1] * sh[i + 1] for i in range(t1.ndim - 2))


def _batch(b1, b2):
    """infer_size over the batch dims, with torch's message."""
    out = []
    n = max(len(b1), len(b2))
    for i in range(n):
        x = b1[i - n + len(b1)] if i - n + len(b1) >= 0 else 1
        y = b2[i - n + len(b2)] if i - n + len(b2) >= 0 else 1
        if x != y and x != 1 and y != 1:
            raise ShapeError(
                f"The size of tensor a ({x}) must match the size of tensor b ({y}) at "
                f"non-singleton dimension {i}",
                op="matmul",
                shapes=[b1, b2],
            )
        out.append(y if x == 1 else x)
    return tuple(out)


def _as_tensor(x):
    return x if isinstance(x, Tensor) else Tensor(np.asarray(x))


def _matmul_shape(input_shape, other_shape):
    d1, d2 = len(input_shape), len(other_shape)
    if not d1 or not d2:
        raise ShapeError(
            f"both arguments to matmul need to be at least 1D, but they are {d1}D and {d2}D",
            op="matmul",
            shapes=[input_shape, other_shape],
        )
    if (d1, d2) == (1, 1):
        return _dot_shape(input_shape, other_shape)
    if (d1, d2) == (2, 1):
        return _mv_shape(input_shape, other_shape)
    if (d1, d2) == (1, 2):
        return _mm_shape((1, *input_shape), other_shape)[1:]
    if (d1, d2) == (2, 2):
        return _mm_shape(input_shape, other_shape)
    n = input_shape[-2] if d1 > 1 else 1
    p = other_shape[-1] if d2 > 1 else 1
    m2 = other_shape[-2] if d2 > 1 else other_shape[0]
    batch = _batch(tuple(input_shape[:-2]), tuple(other_shape[:-2]))
    if input_shape[-1] != m2:
        if d2 <= 2:  # a contiguous N-d input is folded into one matrix for mm / mv
            flat = (math.prod(input_shape[:-1]), input_shape[-1])
            (_mv_shape(flat, other_shape) if d2 == 1 else _mm_shape(flat, other_shape))
        k = math.prod(batch)
        _bmm_shape((k, n, input_shape[-1]), (k, m2, p))
    return batch + ((n,) if d1 > 1 else ()) + ((p,) if d2 > 1 else ())


@deffn("matmul", method=True, shape=_matmul_shape, cost=costs.contraction(0),
       memory=costs.CONTRACTION)  # fmt: skip
def matmul(input, other):
    """Matrix product with numpy/torch broadcasting over batch dims (torch.matmul)."""
    a, b = _as_tensor(input), _as_tensor(other)
    d1, d2 = a.ndim, b.ndim
    if not d1 or not d2:
        _matmul_shape(a.shape, b.shape)
    if d1 == 1 and d2 == 1:
        return dot(a, b)
    if d1 == 2 and d2 == 1:
        return mv(a, b)
    if d1 == 1 and d2 == 2:
        return apply(OPS["squeeze_"], (mm(unsqueeze(a, 0), b),), {"dim": 0})
    if d1 == 2 and d2 == 2:
        return mm(a, b)
    if _should_fold(a, b):
        flip = d2 > d1  # fold the right operand's batch: compute (b^T a^T)^T
        t1 = transpose(b, -2, -1) if flip else a
        t2 = (t(a) if d1 == 2 else a) if flip else b
        out_shape = tuple(t1.shape[:-1])
        t1_folded = reshape(t1, math.prod(out_shape), t1.shape[-1])
        if t2.ndim == 1:
            return _unsafe_view(mv(t1_folded, t2), out_shape)
        out = _unsafe_view(mm(t1_folded, t2), out_shape + (t2.shape[1],))
        return contiguous(transpose(out, -2, -1)) if flip else out
    n = a.shape[-2] if d1 > 1 else 1
    m1 = a.shape[-1]
    m2 = b.shape[-2] if d2 > 1 else b.shape[0]
    p = b.shape[-1] if d2 > 1 else 1
    b1, b2 = tuple(a.shape[: max(d1 - 2, 0)]), tuple(b.shape[: max(d2 - 2, 0)])
    if d1 == 3 and d2 == 3 and b1[0] != b2[0]:
        # A broadcast batch of 1 with a gradient goes through the folding path instead.
        if b1[0] == 1 and a._rg:
            return matmul(squeeze(a, 0), b)
        if b2[0] == 1 and b._rg:
            return matmul(a, squeeze(b, 0))
    batch = _batch(b1, b2)
    k = math.prod(batch)
    a_e = reshape(expand(a, *batch, n, m1), k, n, m1)
    if d2 == 1:
        b_e = unsqueeze(reshape(expand(b, *batch, m2), k, m2), 2)
    else:
        b_e = reshape(expand(b, *batch, m2, p), k, m2, p)
    out_shape = batch + ((n,) if d1 > 1 else ()) + ((p,) if d2 > 1 else ())
    out = bmm(a_e, b_e)
    return _unsafe_view(squeeze(out, -1) if d2 == 1 else out, out_shape)
