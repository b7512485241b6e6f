"""Window helpers shared by convolution and pooling (numpy only, no autograd).

Inputs are (..., H, W) arrays. `windows` is a zero-copy strided view of every kH x kW window
(stride and dilation applied) with the window offsets in front of the output positions,
(..., kH, kW, Ho, Wo), so `im2col` is a single strided copy and a reduction over the window
is a reduction over two middle axes. `col2im` is the adjoint: it scatter-adds window values
back onto the image with one strided add per kernel offset (kH*kW numpy calls, each over
the whole batch; measured faster than np.add.at or bincount for kernels up to 7x7)."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

# Elements of pooling's window copies made at a time (pool.py): a kernel's windows are copied
# a band of kernel rows at a time, so memory stays bounded whatever the kernel size (at kernel
# 150 on a 300x300 input one copy of all windows asked numpy for gigabytes); small kernels
# take one band. Here rather than in pool.py so that ops.costs can bound it too.
WINDOW_CHUNK = 1 << 24


def out_size(size, kernel, stride, pad_l, pad_r, dilation=1, ceil_mode=False) -> int:
    """torch's pooling_output_shape (also the convolution's size with ceil_mode off): in
    ceil_mode the last window must start inside the input or the left padding."""
    span = size + pad_l + pad_r - dilation * (kernel - 1) - 1
    n = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (n - 1) * stride >= size + pad_l:
        n -= 1
    return n


def padded(x, top, bottom, left, right, value=0.0):
    """x with a border (a fresh array); x itself when there is no border."""
    if not (top or bottom or left or right):
        return x
    *lead, h, w = x.shape
    out = np.empty((*lead, h + top + bottom, w + left + right), x.dtype)
    if top:
        out[..., :top, :] = value
    if bottom:
        out[..., h + top :, :] = value
    if left:
        out[..., top : top + h, :left] = value
    if right:
        out[..., top : top + h, w + left :] = value
    out[..., top : top + h, left : left + w] = x
    return out


def windows(xp, kernel, stride, dilation, out_hw):
    """Read-only view (..., kH, kW, Ho, Wo) of the windows of xp (already padded)."""
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = kernel, stride, dilation, out_hw
    *lead, st_h, st_w = xp.strides
    shape = (*xp.shape[:-2], kh, kw, ho, wo)
    strides = (*lead, st_h * dh, st_w * dw, st_h * sh, st_w * sw)
    return as_strided(xp, shape, strides, writeable=False)


def need(kernel, stride, dilation, n_out) -> int:
    """The extent the windows of n_out outputs reach, from the (padded) start."""
    return (n_out - 1) * stride + dilation * (kernel - 1) + 1


def fit(xp, kernel, stride, dilation, out_hw, value=0.0):
    """xp, extended on the bottom/right with `value` when ceil_mode windows reach beyond it."""
    h, w = xp.shape[-2:]
    eh = max(0, need(kernel[0], stride[0], dilation[0], out_hw[0]) - h)
    ew = max(0, need(kernel[1], stride[1], dilation[1], out_hw[1]) - w)
    return padded(xp, 0, eh, 0, ew, value) if eh or ew else xp


def im2col(x, kernel, stride, padding, dilation, out_hw):
    """Contiguous (C, kH, kW, N, Ho, Wo) patches of x (N, C, H, W), zero padded: the
    (C*kH*kW, N*Ho*Wo) matrix one GEMM multiplies, whatever the batch size."""
    (kh, kw), (sh, sw) = kernel, stride
    ph, pw = padding
    ho, wo = out_hw
    if kh == kw == 1 and ph == pw == 0:
        sub = x[..., : (ho - 1) * sh + 1 : sh, : (wo - 1) * sw + 1 : sw]
        return np.ascontiguousarray(sub.transpose(1, 0, 2, 3))[:, None, None]
    xp = padded(x, ph, ph, pw, pw)
    return np.ascontiguousarray(
        windows(xp, kernel, stride, dilation, out_hw).transpose(1, 2, 3, 0, 4, 5)
    )


def col2im(cols, hw, kernel, stride, padding, dilation):
    """The adjoint of im2col: sum (..., kH, kW, Ho, Wo) window values onto (..., H, W);
    `padding` is (top, bottom, left, right), and values that fall in it drop."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    ho, wo = cols.shape[-2:]
    lead = cols.shape[:-4]
    top, bottom, left, right = padding
    h, w = hw
    hp = max(h + top + bottom, need(kh, sh, dh, ho))
    wp = max(w + left + right, need(kw, sw, dw, wo))
    if kh == kw == 1 and sh == sw == 1 and hp == h and wp == w:
        return cols.reshape(*lead, h, w).copy()
    out = np.zeros((*lead, hp, wp), cols.dtype)
    overlap = sh < dh * (kh - 1) + 1 or sw < dw * (kw - 1) + 1
    for i in range(kh):
        rows = slice(i * dh, i * dh + sh * ho, sh)
        for j in range(kw):
            at = (..., rows, slice(j * dw, j * dw + sw * wo, sw))
            if overlap:
                out[at] += cols[..., i, j, :, :]
            else:  # every position gets at most one value
                out[at] = cols[..., i, j, :, :]
    return out[..., top : top + h, left : left + w]
