"""Pooling arguments and output shapes, checked in torch's order with torch's messages
(Pool.h's pooling_output_shape and pool2d_shape_check)."""

from __future__ import annotations

import numpy as np

from ..errors import ArgumentError, ShapeError
from .im2col import out_size

_INT = (int, np.integer)


def _ints(v):
    if isinstance(v, _INT) and not isinstance(v, bool):
        return (int(v),)
    if isinstance(v, (tuple, list)) and all(
        isinstance(x, _INT) and not isinstance(x, bool) for x in v
    ):
        return tuple(int(x) for x in v)
    return None


def pool_pair(name, what, v, *, omittable=False):
    """kernel_size / stride / padding / dilation as a pair, with torch's complaint."""
    if omittable and (v is None or (isinstance(v, (tuple, list)) and not v)):
        return None
    t = _ints(v)
    if t is None or len(t) not in (1, 2):
        if what == "stride":
            raise ArgumentError(
                f"{name}: stride must either be omitted, a single int, or a tuple of two ints"
            )
        verb = "be either" if what == "dilation" else "either be"
        raise ArgumentError(f"{name}: {what} must {verb} a single int, or a tuple of two ints")
    return t * 2 if len(t) == 1 else t


def pool_args(name, kernel_size, stride, padding, dilation=1):
    kernel = pool_pair(name, "kernel_size", kernel_size)
    stride = pool_pair(name, "stride", stride, omittable=True) or kernel
    return (
        kernel,
        stride,
        pool_pair(name, "padding", padding),
        pool_pair(name, "dilation", dilation),
    )


def pool_shape(shape, kernel, stride, padding, dilation, ceil_mode, name="max_pool2d"):
    """The output shape (..., Ho, Wo) of a 2-D pooling of a 3-D or 4-D input."""
    shape = tuple(shape)
    sizes = []
    for i in (0, 1):
        k, s, p, d = kernel[i], stride[i], padding[i], dilation[i]
        if s == 0:
            raise ArgumentError("stride should not be zero")
        if p < 0:
            raise ArgumentError(f"pad must be non-negative, but got pad: {p}")
        if p > ((k - 1) * d + 1) // 2:
            raise ArgumentError(
                f"pad should be at most half of effective kernel size, but got pad={p}, "
                f"kernel_size={k} and dilation={d}"
            )
        n = shape[-2 + i] if len(shape) >= 2 else 0
        sizes.append(out_size(n, k, s, p, p, d, ceil_mode))
    kh, kw = kernel
    if kh <= 0 or kw <= 0:
        raise ArgumentError(f"kernel size should be greater than zero, but got kH: {kh} kW: {kw}")
    if stride[0] <= 0 or stride[1] <= 0:
        raise ArgumentError(
            f"stride should be greater than zero, but got dH: {stride[0]} dW: {stride[1]}"
        )
    if dilation[0] <= 0 or dilation[1] <= 0:
        raise ArgumentError(
            "dilation should be greater than zero, but got dilationH: "
            f"{dilation[0]} dilationW: {dilation[1]}"
        )
    nd = len(shape)
    if not (nd in (3, 4) and all(shape[-3:]) and (nd == 4 or shape[0])):
        if nd not in (3, 4) and name == "max_pool2d":
            raise ShapeError(
                "non-empty 3D or 4D (batch mode) tensor expected for input",
                op=name,
                shapes=[shape],
            )
        if nd == 2 and name == "avg_pool2d":
            raise ArgumentError(
                "Dimension out of range (expected to be in range of [-2, 1], but got -3)"
            )
        raise ShapeError(
            "Expected 3D or 4D (batch mode) tensor with optional 0 dim batch size for input, "
            f"but got:[{', '.join(map(str, shape))}]",
            op=name,
            shapes=[shape],
        )
    if kw // 2 < padding[1] or kh // 2 < padding[0]:
        raise ArgumentError(
            "pad should be smaller than or equal to half of kernel size, but got "
            f"padW = {padding[1]}, padH = {padding[0]}, kW = {kw}, kH = {kh}"
        )
    ho, wo = sizes
    if ho < 1 or wo < 1:
        c, h, w = shape[-3:]
        raise ShapeError(
            f"Given input size: ({c}x{h}x{w}). Calculated output size: ({c}x{ho}x{wo}). "
            "Output size is too small",
            op=name,
            shapes=[shape],
        )
    return (*shape[:-2], ho, wo)


def adaptive_size(shape, output_size):
    """adaptive_avg_pool2d's (Ho, Wo); None keeps the input's size."""
    t = (output_size, output_size) if output_size is None else output_size
    t = (t, t) if isinstance(t, _INT) and not isinstance(t, bool) else tuple(t)
    if len(t) != 2:
        raise ArgumentError("adaptive_avg_pool2d: output_size must be 2")
    shape = tuple(shape)
    if len(shape) not in (3, 4):
        raise ShapeError(
            "adaptive_avg_pool2d(): Expected 3D or 4D tensor, but got "
            f"[{', '.join(map(str, shape))}]",
            op="adaptive_avg_pool2d",
            shapes=[shape],
        )
    out = tuple(shape[-2 + i] if n is None else int(n) for i, n in enumerate(t))
    if out[0] < 0 or out[1] < 0:
        raise ArgumentError(
            "adaptive_avg_pool2d: elements of output_size must be greater than or equal to 0 "
            f"but received {{{out[0]}, {out[1]}}}"
        )
    for i in range(len(shape) - 3, len(shape)):
        if shape[i] == 0:
            raise ShapeError(
                "adaptive_avg_pool2d(): Expected input to have non-zero size for non-batch "
                f"dimensions, but input has sizes [{', '.join(map(str, shape))}] with "
                f"dimension {i} being empty",
                op="adaptive_avg_pool2d",
                shapes=[shape],
            )
    return out
