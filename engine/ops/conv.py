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
`convolution` form a family closed under VJPs, so any order of derivative works."""

from __future__ import annotations

import numpy as np

from ..dispatch import apply
from ..registry import FUNCTIONS, OPS, deffn, defop
from ..tensor import Tensor
from . import costs
from . import dual as d
from .conv_rules import conv2d_dtype, conv2d_shape, conv_shape, parse_conv
from .im2col import col2im, im2col

# -- numpy kernels ----------------------------------------------------------------------------


def _batch_last(g):
    """(N, O, H, W) -> (O, N*H*W), the layout of the GEMMs (a copy unless N == 1)."""
    n, o, h, w = g.shape
    return g.reshape(n, o, h * w).transpose(1, 0, 2).reshape(o, n * h * w)


def _batch_first(y, n, hw):
    """(O, N*H*W) result of a GEMM -> contiguous (N, O, H, W)."""
    o = y.shape[0]
    y = y.reshape(o, n, hw[0] * hw[1]).transpose(1, 0, 2)
    return np.ascontiguousarray(y).reshape(n, o, *hw)


def conv_np(x, w, b, stride, padding, dilation, groups):
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    ho = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (wd + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    k = cg * kh * kw
    cols = im2col(x, (kh, kw), stride, padding, dilation, (ho, wo)).reshape(groups, k, n * ho * wo)
    out = np.matmul(w.reshape(groups, o // groups, k), cols).reshape(o, n * ho * wo)
    if isinstance(b, np.ndarray):
        out += b[:, None]
    return _batch_first(out, n, (ho, wo))


def grad_input_np(g, w, hw, stride, padding, dilation, groups):
    n, o, ho, wo = g.shape
    _, cg, kh, kw = w.shape
    c = cg * groups
    (ph, pw), (dh, dw) = padding, dilation
    qh, qw = dh * (kh - 1) - ph, dw * (kw - 1) - pw
    if stride == (1, 1) and qh >= 0 and qw >= 0 and n * ho * wo >= 4 * o:
        # A stride-1 transposed convolution is a convolution of the gradient with the
        # flipped, in/out-swapped kernel: one im2col instead of a kH*kW scatter. (The
        # kernel copy only pays off when the image is large next to the channel count.)
        wf = w.reshape(groups, o // groups, cg, kh, kw)[..., ::-1, ::-1].transpose(0, 2, 1, 3, 4)
        wf = np.ascontiguousarray(wf).reshape(c, o // groups, kh, kw)
        return conv_np(g, wf, 0, (1, 1), (qh, qw), dilation, groups)
    wg = w.reshape(groups, o // groups, cg * kh * kw).transpose(0, 2, 1)
    cols = np.matmul(wg, _batch_last(g).reshape(groups, o // groups, n * ho * wo))
    cols = cols.reshape(c, kh, kw, n, ho, wo).transpose(3, 0, 1, 2, 4, 5)
    return col2im(cols, hw, (kh, kw), stride, (ph, ph, pw, pw), dilation)


def grad_weight_np(x, g, khw, stride, padding, dilation, groups):
    n, c = x.shape[:2]
    o, ho, wo = g.shape[1:]
    cg, m = c // groups, n * ho * wo
    k = cg * khw[0] * khw[1]
    cols = im2col(x, khw, stride, padding, dilation, (ho, wo)).reshape(groups, k, m)
    gw = np.matmul(_batch_last(g).reshape(groups, o // groups, m), cols.transpose(0, 2, 1))
    return gw.reshape(o, cg, *khw)


# -- VJPs: numpy kernels, or the registered ops under create_graph -----------------------------


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


@defop(
    "convolution",
    public=False,
    grad_fn="ConvolutionBackward0",
    shape=conv_shape,
    cost=costs.convolution,
    vjp=(
        lambda g, weight, input_shape, stride, padding, dilation, groups: _grad_input(
            g, weight, input_shape[2:], _attrs(stride, padding, dilation, groups)
        ),
        lambda g, input, weight_shape, stride, padding, dilation, groups: _grad_weight(
            input, g, weight_shape[2:], _attrs(stride, padding, dilation, groups)
        ),
        lambda g: d.sum(g, axis=(0, 2, 3)),
    ),
)
def convolution(input, weight, bias, *, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
    """Cross-correlation of a 4-D input with weight (out, in/groups, kH, kW), plus bias."""
    return conv_np(input, weight, bias, stride, padding, dilation, groups)


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


# -- torch.nn.functional.conv2d ---------------------------------------------------------------


@deffn("conv2d", shape=conv2d_shape, dtype=conv2d_dtype, cost=costs.convolution)
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
