"""convolution's numpy kernels: the forward and both gradients as im2col (or col2im) plus one
batched GEMM per group. Arrays in, arrays out; no autograd (conv.py's records call them)."""

from __future__ import annotations

import numpy as np

from .im2col import col2im, im2col


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
