"""convolution's numpy kernels: the forward and both gradients as im2col (or col2im) plus one
batched GEMM per group. Arrays in, arrays out; no autograd (conv.py's records call them)."""

from __future__ import annotations

import numpy as np

from ..deadline import check
from .im2col import col2im, im2col, need, padded

# Elements of im2col columns made at a time. Columns hold every window of the input,
# C/groups*kH*kW values per output position: a 500x500 input with a 250x250 kernel asked for
# 15.7 GB at once. Larger convolutions run a band of output rows at a time; the common
# sizes take one band, exactly as before.
COLS_CHUNK = 1 << 24


def _bands(k, n, ho, wo):
    """(first, end) output rows of each band: at most COLS_CHUNK column elements apiece."""
    rows = max(1, COLS_CHUNK // max(1, k * n * wo))
    return [(r, min(ho, r + rows)) for r in range(0, ho, rows)]


def _gemm(a, b):
    """a @ b over (groups, ., .) stacks. One group goes to np.dot: np.matmul keeps the GIL
    through a matrix-vector product (one output channel), 70 ms per band of a large kernel,
    which froze the server's event loop; np.dot releases it."""
    if a.shape[0] == 1:
        return np.dot(a[0], b[0])[None]
    return np.matmul(a, b)


def _rows_read(r0, r1, kh, sh, dh):
    """The padded input rows the windows of output rows r0..r1-1 read."""
    return slice(r0 * sh, r0 * sh + need(kh, sh, dh, r1 - r0))


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
    bands = _bands(cg * kh * kw, n, ho, wo)
    if len(bands) == 1:
        return _conv_block(x, w, b, stride, padding, dilation, groups, (ho, wo))
    xp = padded(x, padding[0], padding[0], padding[1], padding[1])
    out = np.empty((n, o, ho, wo), np.result_type(x.dtype, w.dtype))
    for r0, r1 in bands:
        check()  # a band is the unit of work a time limit can stop between
        xs = xp[:, :, _rows_read(r0, r1, kh, stride[0], dilation[0]), :]
        out[:, :, r0:r1] = _conv_block(xs, w, b, stride, (0, 0), dilation, groups, (r1 - r0, wo))
    return out


def _conv_block(x, w, b, stride, padding, dilation, groups, out_hw):
    n = x.shape[0]
    o, cg, kh, kw = w.shape
    k, m = cg * kh * kw, n * out_hw[0] * out_hw[1]
    cols = im2col(x, (kh, kw), stride, padding, dilation, out_hw).reshape(groups, k, m)
    out = _gemm(w.reshape(groups, o // groups, k), cols).reshape(o, m)
    if isinstance(b, np.ndarray):
        out += b[:, None]
    return _batch_first(out, n, out_hw)


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
    bands = _bands(cg * kh * kw, n, ho, wo)
    if len(bands) == 1:
        return col2im(_grad_cols(wg, g, c, (kh, kw)), hw, (kh, kw), stride, (ph, ph, pw, pw),
                      dilation)  # fmt: skip
    # Band by band into the padded input's gradient, each band onto the rows it read.
    hp = max(hw[0] + 2 * ph, need(kh, stride[0], dh, ho))
    wp = max(hw[1] + 2 * pw, need(kw, stride[1], dw, wo))
    acc = np.zeros((n, c, hp, wp), np.result_type(g.dtype, w.dtype))
    for r0, r1 in bands:
        check()  # a band is the unit of work a time limit can stop between
        at = _rows_read(r0, r1, kh, stride[0], dh)
        cols = _grad_cols(wg, g[:, :, r0:r1], c, (kh, kw))
        acc[:, :, at] += col2im(cols, (at.stop - at.start, wp), (kh, kw), stride, (0,) * 4,
                                dilation)  # fmt: skip
    return acc[:, :, ph : ph + hw[0], pw : pw + hw[1]].copy()


def _grad_cols(wg, g, c, khw):
    """The gradient's windows, (N, C, kH, kW, Ho, Wo): the weights times g, per group."""
    n, o, ho, wo = g.shape
    groups = wg.shape[0]
    cols = _gemm(wg, _batch_last(g).reshape(groups, o // groups, n * ho * wo))
    return cols.reshape(c, *khw, n, ho, wo).transpose(3, 0, 1, 2, 4, 5)


def grad_weight_np(x, g, khw, stride, padding, dilation, groups):
    n, c = x.shape[:2]
    o, ho, wo = g.shape[1:]
    cg = c // groups
    bands = _bands(cg * khw[0] * khw[1], n, ho, wo)
    if len(bands) == 1:
        gw = _weight_block(x, g, khw, stride, padding, dilation, groups)
    else:
        xp = padded(x, padding[0], padding[0], padding[1], padding[1])
        gw = None
        for r0, r1 in bands:
            check()  # a band is the unit of work a time limit can stop between
            xs = xp[:, :, _rows_read(r0, r1, khw[0], stride[0], dilation[0]), :]
            part = _weight_block(xs, g[:, :, r0:r1], khw, stride, (0, 0), dilation, groups)
            gw = part if gw is None else np.add(gw, part, out=gw)
    return gw.reshape(o, cg, *khw)


def _weight_block(x, g, khw, stride, padding, dilation, groups):
    n, c = x.shape[:2]
    o, ho, wo = g.shape[1:]
    cg, m = c // groups, n * ho * wo
    k = cg * khw[0] * khw[1]
    cols = im2col(x, khw, stride, padding, dilation, (ho, wo)).reshape(groups, k, m)
    return _gemm(_batch_last(g).reshape(groups, o // groups, m), cols.transpose(0, 2, 1))
