"""2-D convolution: torch.nn.functional.conv2d on im2col + BLAS.

`convolution` is ATen's op (ConvolutionBackward0): a 4-D input, explicit symmetric padding,
bias a tensor or the number 0 (no bias: the edge is None, as torch's). The front end `conv2d`
parses the torch arguments, pads asymmetrically for padding='same' with an even kernel
(ConstantPadNdBackward0 first, as torch), and wraps 3-D (unbatched) input in
unsqueeze/squeeze, as torch records it.

Gradients: the input's is the transposed convolution (for stride 1, a convolution of the
gradient with the flipped kernel; else GEMM + col2im), the weight's is a GEMM of the
gradient with the input's patches, the bias's a sum. Under create_graph both are the
registered ops `convolution_backward_input` / `convolution_backward_weight`, which with
`convolution` form a family closed under VJPs, so any order of derivative works.

The records come first: `convolution` and `conv2d`, every rule named in one screen. The
shape and dtype rules (torch's checks and messages) are in conv_rules.py, the numpy kernels
(im2col + one GEMM per group) in conv_kernels.py."""

from __future__ import annotations

import numpy as np

from ..dispatch import apply
from ..registry import FUNCTIONS, OPS, deffn, defop
from ..tensor import Tensor
from . import costs
from . import dual as d
from .conv_kernels import conv_np, grad_input_np, grad_weight_np
from .conv_rules import conv2d_dtype, conv2d_shape, conv_shape, parse_conv

# -- the record: ATen's convolution and its front end, torch.nn.functional.conv2d -------------


@defop(
    "convolution",
    vjp=(  # input: the transposed convolution; weight: input's patches times g; bias: a sum
        lambda g, weight, input_shape, stride, padding, dilation, groups: _grad_input(
            g, weight, input_shape[2:], _attrs(stride, padding, dilation, groups)
        ),
        lambda g, input, weight_shape, stride, padding, dilation, groups: _grad_weight(
            input, g, weight_shape[2:], _attrs(stride, padding, dilation, groups)
        ),
        lambda g: d.sum(g, axis=(0, 2, 3)),
    ),
    grad_fn="ConvolutionBackward0",
    shape=conv_shape,  # dtype: the input's (conv2d checks weight and bias match it)
    cost=costs.convolution,
    memory=costs.convolution_memory,
    public=False,
)
def convolution(input, weight, bias, *, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
    """Cross-correlation of a 4-D input with weight (out, in/groups, kH, kW), plus bias."""
    return conv_np(input, weight, bias, stride, padding, dilation, groups)


@deffn("conv2d", shape=conv2d_shape, dtype=conv2d_dtype, cost=costs.convolution,
       memory=costs.convolution_memory)  # fmt: skip
def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution over a (N, C, H, W) or (C, H, W) input (ConvolutionBackward0)."""
    bshape = None if bias is None else tuple(bias.shape)
    attrs, pad_nd, _ = parse_conv(
        tuple(input.shape), tuple(weight.shape), bshape, stride, padding, dilation, groups
    )
    conv2d_dtype(input.dtype, weight.dtype, None if bias is None else bias.dtype)
    x = input
    if input.ndim == 3:
        x = FUNCTIONS["unsqueeze"].fn(x, 0)
    if pad_nd:
        x = apply(OPS["constant_pad_nd"], (x,), {"pad": pad_nd, "value": 0.0})
    out = apply(OPS["convolution"], (x, weight, 0 if bias is None else bias), attrs)
    return FUNCTIONS["squeeze"].fn(out, 0) if input.ndim == 3 else out


# -- the VJPs' terms: numpy kernels, or under create_graph the registered ops below ----------


def _conv(x, w, attrs):
    if isinstance(x, Tensor) or isinstance(w, Tensor):
        return apply(OPS["convolution"], (x, w, 0), attrs)
    return conv_np(x, w, 0, **attrs)


def _grad_input(g, w, hw, attrs):
    if isinstance(g, Tensor) or isinstance(w, Tensor):
        return apply(OPS["convolution_backward_input"], (g, w), {"input_size": hw, **attrs})
    return grad_input_np(g, w, hw, **attrs)


def _grad_weight(x, g, khw, attrs):
    if isinstance(x, Tensor) or isinstance(g, Tensor):
        return apply(OPS["convolution_backward_weight"], (x, g), {"weight_size": khw, **attrs})
    return grad_weight_np(x, g, khw, **attrs)


def _attrs(stride, padding, dilation, groups):
    return {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}


def _bwd_in_shape(grad_output, weight, *, input_size, groups=1, **_):
    return (grad_output[0], weight[1] * groups, *input_size)


def _bwd_w_shape(input, grad_output, *, weight_size, groups=1, **_):
    return (grad_output[1], input[1] // groups, *weight_size)


@defop(
    "convolution_backward_input",
    public=False,
    grad_fn="ConvolutionBackwardBackward0",
    shape=_bwd_in_shape,
    vjp=(
        lambda g, weight, stride, padding, dilation, groups: _conv(
            g, weight, _attrs(stride, padding, dilation, groups)
        ),
        lambda g, grad_output, weight_shape, stride, padding, dilation, groups: _grad_weight(
            g, grad_output, weight_shape[2:], _attrs(stride, padding, dilation, groups)
        ),
    ),
)
def convolution_backward_input(
    grad_output, weight, *, input_size, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1
):
    """The gradient of a convolution's input: the transposed convolution."""
    return grad_input_np(grad_output, weight, tuple(input_size), stride, padding, dilation, groups)


@defop(
    "convolution_backward_weight",
    public=False,
    grad_fn="ConvolutionBackwardBackward0",
    shape=_bwd_w_shape,
    vjp=(
        lambda g, grad_output, input_shape, stride, padding, dilation, groups: _grad_input(
            grad_output, g, input_shape[2:], _attrs(stride, padding, dilation, groups)
        ),
        lambda g, input, stride, padding, dilation, groups: _conv(
            input, g, _attrs(stride, padding, dilation, groups)
        ),
    ),
)
def convolution_backward_weight(
    input, grad_output, *, weight_size, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1
):
    """The gradient of a convolution's weight: patches of input times grad_output."""
    return grad_weight_np(input, grad_output, tuple(weight_size), stride, padding, dilation, groups)


# -- constant_pad_nd: padding='same' with an even kernel -------------------------------------


def _pad_shape(input, *, pad, value=0.0):
    out = list(input)
    for i in range(len(pad) // 2):
        out[-1 - i] += pad[2 * i] + pad[2 * i + 1]
    return tuple(out)


def _unpad(g, pad):
    idx = [slice(None)] * g.ndim
    for i in range(len(pad) // 2):
        n = g.shape[-1 - i]
        idx[g.ndim - 1 - i] = slice(pad[2 * i], n - pad[2 * i + 1])
    return g[tuple(idx)]


@defop(
    "constant_pad_nd",
    public=False,
    shape=_pad_shape,
    vjp=lambda g, pad: _unpad(g, pad),
)
def constant_pad_nd(input, *, pad, value=0.0):
    """input with `value` borders; pad lists (before, after) from the last dim (F.pad's)."""
    width = [(0, 0)] * input.ndim
    for i in range(len(pad) // 2):
        width[input.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    return np.pad(input, width, constant_values=value)
