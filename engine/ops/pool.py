"""2-D max and average pooling: torch.nn.functional.max_pool2d and avg_pool2d.

max_pool2d records MaxPool2DWithIndicesBackward0 and its indices are torch's (flat positions
in each input plane; ties go to the first maximum of the window, NaN to the last NaN as
torch's kernel). Its gradient scatter-adds to those positions; under create_graph that is the
op `max_pool2d_with_indices_backward`, whose own VJP gathers at the same positions, so any
order of derivative works. avg_pool2d (AvgPool2DBackward0) divides window sums by torch's
divisor (the window clipped to the padded input with count_include_pad, else to the input,
or divisor_override); its gradient is `avg_pool2d_backward`, the adjoint, whose VJP is
avg_pool2d again. Windows are strided copies, a band of kernel rows at a time so memory stays
bounded whatever the kernel size; the only Python loops run over the kH*kW kernel offsets
(the first-maximum search, and col2im's scatter)."""

from __future__ import annotations

import math

import numpy as np

from .. import dtypes as _dt
from ..deadline import check
from ..dispatch import apply
from ..errors import ArgumentError
from ..registry import OPS, deffn, defop
from ..tensor import Tensor
from . import costs
from .im2col import WINDOW_CHUNK, col2im, fit, padded, windows
from .pool_rules import pool_args, pool_shape


def _lowest(dt):
    return -np.inf if dt.kind == "f" else np.iinfo(dt).min


def _bands(x, kernel, stride, padding, dilation, out_hw, fill):
    """(first kernel row, contiguous (..., rows*kW, Ho, Wo) windows) for bands of kernel
    rows of x padded with `fill`: at most WINDOW_CHUNK elements copied at a time."""
    ph, pw = padding
    xp = fit(padded(x, ph, ph, pw, pw, fill), kernel, stride, dilation, out_hw, fill)
    win = windows(xp, kernel, stride, dilation, out_hw)  # a view (..., kH, kW, Ho, Wo)
    per_row = kernel[1] * math.prod(win.shape[:-4]) * out_hw[0] * out_hw[1]
    band = max(1, WINDOW_CHUNK // max(1, per_row))
    for r in range(0, kernel[0], band):
        check()  # a band is the unit of work a time limit can stop between
        rows = win[..., r : r + band, :, :, :]
        n = rows.shape[-4] * rows.shape[-3]  # (not -1: an empty batch has no size to divide)
        yield r, np.ascontiguousarray(rows).reshape(*rows.shape[:-4], n, *out_hw)


def _positions(q, hw, kernel, stride, padding, dilation):
    """Flat input positions of the window offsets `q` (..., Ho, Wo) picked. A padding
    position is moved to the window's first position inside the input, which is what torch
    reports for a window of nothing but -inf."""
    ho, wo = q.shape[-2:]
    axes = []  # per axis, (kernel offsets, outputs): the input row (column) each one reads
    for a, n in ((0, ho), (1, wo)):
        o = np.arange(n) * stride[a] - padding[a]
        first = o + -(-np.maximum(-o, 0) // dilation[a]) * dilation[a]
        pos = o[None, :] + (np.arange(kernel[a]) * dilation[a])[:, None]
        axes.append(np.maximum(pos, first[None, :]))
    rows, cols = axes
    k = kernel[0] * kernel[1]
    if k * ho * wo <= WINDOW_CHUNK:  # a table of every offset's positions, then one gather
        table = (rows[:, None, :, None] * hw[1] + cols[None, :, None, :]).reshape(-1)
        flat = q.reshape(-1, ho * wo).astype(np.intp) * (ho * wo) + np.arange(ho * wo)
        return np.take(table, flat).reshape(q.shape)
    qi, qj = np.divmod(q, kernel[1])  # a kernel too large for the table
    return rows[qi, np.arange(ho)[:, None]] * hw[1] + cols[qj, np.arange(wo)]


def _max_forward(x, kernel, stride, padding, dilation, ceil_mode):
    """Window maxima and the window offset of each, then their input positions. Ties keep
    the first maximum, NaN the last NaN, as torch's kernel."""
    ho, wo = pool_shape(x.shape, kernel, stride, padding, dilation, ceil_mode)[-2:]
    k = kernel[0] * kernel[1]
    dt = np.uint8 if k < 256 else np.int64
    m = q = None
    for r, cols in _bands(x, kernel, stride, padding, dilation, (ho, wo), _lowest(x.dtype)):
        mc, qc = _band_max(cols)
        if m is None:
            m, q = mc, qc.astype(dt, copy=False)
            continue
        # A later band takes over where it is larger, or holds a NaN (the last NaN wins).
        later = mc > m
        if m.dtype.kind == "f":
            later |= np.isnan(mc)
        np.copyto(m, mc, where=later)
        np.copyto(q, qc.astype(dt) + dt(r * kernel[1]), where=later)
    return m, _positions(q, x.shape[-2:], kernel, stride, padding, dilation)


def _band_max(cols):
    """(maxima, offset of the first maximum; of the last NaN where there is one) over axis
    -3 of contiguous windows."""
    m = cols.max(axis=-3)
    k = cols.shape[-3]
    # Window offset of the first maximum: walk the offsets backwards, each match taking
    # over (arithmetic on a small int: masked copies cost 10x more).
    dt = np.uint8 if k < 256 else np.int64
    q = np.full(m.shape, k - 1, dt)
    for i in range(k - 2, -1, -1):
        q -= (q - dt(i)) * (cols[..., i, :, :] == m)
    if m.dtype.kind == "f" and np.isnan(m).any():
        for i in range(k):  # torch's kernel keeps the last NaN
            np.copyto(q, i, where=np.isnan(cols[..., i, :, :]))
    return m, q


def _planes(shape, indices):
    """Flat positions of indices in the whole input (plane offset + in-plane index)."""
    lead, hw = shape[:-2], shape[-2] * shape[-1]
    base = (np.arange(math.prod(lead), dtype=np.int64) * hw).reshape(*lead, 1, 1)
    return (base + indices).reshape(-1)


def _max_backward_np(g, indices, input_size, overlap):
    out = np.zeros(math.prod(input_size), g.dtype)
    flat = _planes(input_size, indices)
    if overlap:
        np.add.at(out, flat, np.ravel(g))
    else:
        out[flat] = np.ravel(g)  # one window per position: plain assignment
    return out.reshape(input_size)


def _overlap(kernel, stride, dilation):
    return any(s < d * (k - 1) + 1 for k, s, d in zip(kernel, stride, dilation, strict=True))


def _max_vjp(g, ans, input_shape, kernel_size, stride, dilation):
    g0, idx = g[0], ans[1]
    over = _overlap(kernel_size, stride, dilation)
    if isinstance(g0, Tensor):
        attrs = {"indices": getattr(idx, "_a", idx), "input_size": input_shape, "overlap": over}
        return apply(OPS["max_pool2d_with_indices_backward"], (g0,), attrs)
    return _max_backward_np(g0, idx, input_shape, over)


def _mp_op_shape(input, *, kernel_size, stride, padding=(0, 0), dilation=(1, 1), ceil_mode=False):
    out = pool_shape(input, kernel_size, stride, padding, dilation, ceil_mode)
    return out, out


@defop(
    "max_pool2d_with_indices",
    public=False,
    n_outputs=2,
    grad_fn="MaxPool2DWithIndicesBackward0",
    shape=_mp_op_shape,
    cost=costs.window,
    memory=costs.window_memory,
    dtype=lambda input, **_: (input, _dt.int64),
    vjp=_max_vjp,
)
def max_pool2d_with_indices(
    input, *, kernel_size, stride, padding=(0, 0), dilation=(1, 1), ceil_mode=False
):
    """Window maxima of a 3-D or 4-D input and their flat positions in each plane."""
    return _max_forward(input, kernel_size, stride, padding, dilation, ceil_mode)


def _gather(g, indices, input_size):
    flat = _planes(input_size, indices)
    if isinstance(g, Tensor):
        return g.reshape(-1)[Tensor(flat)].reshape(indices.shape)
    return np.ravel(g)[flat].reshape(indices.shape)


@defop(
    "max_pool2d_with_indices_backward",
    public=False,
    grad_fn="MaxPool2DWithIndicesBackwardBackward0",
    shape=lambda grad_output, *, input_size, **_: tuple(input_size),
    vjp=lambda g, indices, input_size: _gather(g, indices, input_size),
)
def max_pool2d_with_indices_backward(grad_output, *, indices, input_size, overlap=True):
    """grad_output summed into the input positions `indices` name (max_pool2d's gradient)."""
    return _max_backward_np(grad_output, indices, tuple(input_size), overlap)


# -- avg_pool2d -------------------------------------------------------------------------------


def _divisor(hw, out_hw, kernel, stride, padding, count_include_pad, divisor_override, dt):
    if divisor_override:
        return dt.type(divisor_override)
    counts = []
    for a in (0, 1):
        start = np.arange(out_hw[a]) * stride[a] - padding[a]
        end = np.minimum(start + kernel[a], hw[a] + padding[a])
        if not count_include_pad:
            start, end = np.maximum(start, 0), np.minimum(end, hw[a])
        counts.append(end - start)
    return np.outer(*counts).astype(dt if dt.kind == "f" else np.int64)


def _avg_attrs(kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    return {
        "kernel_size": kernel_size,
        "stride": stride,
        "padding": padding,
        "ceil_mode": ceil_mode,
        "count_include_pad": count_include_pad,
        "divisor_override": divisor_override,
    }


def _avg_forward(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
    one = (1, 1)
    out_hw = pool_shape(x.shape, kernel, stride, padding, one, ceil_mode, "avg_pool2d")[-2:]
    s = None
    for _, cols in _bands(x, kernel, stride, padding, one, out_hw, 0):
        part = cols.sum(axis=-3)
        s = part if s is None else np.add(s, part, out=s)
    div = _divisor(
        x.shape[-2:], out_hw, kernel, stride, padding, count_include_pad, divisor_override, x.dtype
    )
    if x.dtype.kind == "f":
        return s / div
    q = np.abs(s) // div  # integer input: C++ division, truncating toward zero
    return np.where(s < 0, -q, q).astype(x.dtype)


def _avg_backward_np(g, input_size, kernel, stride, padding, ceil_mode, cip, divisor_override):
    hw, out_hw = tuple(input_size[-2:]), g.shape[-2:]
    div = _divisor(hw, out_hw, kernel, stride, padding, cip, divisor_override, g.dtype)
    gd = g / div
    cols = np.broadcast_to(gd[..., None, None, :, :], (*gd.shape[:-2], *kernel, *out_hw))
    ph, pw = padding
    return col2im(cols, hw, kernel, stride, (ph, ph, pw, pw), (1, 1))


def _avg_vjp(g, input_shape, kernel_size, stride, padding, ceil_mode, count_include_pad,
             divisor_override):  # fmt: skip
    attrs = _avg_attrs(kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
    if isinstance(g, Tensor):
        return apply(OPS["avg_pool2d_backward"], (g,), {"input_size": input_shape, **attrs})
    return _avg_backward_np(g, input_shape, *attrs.values())


def _avg_op_shape(input, *, kernel_size, stride, padding=(0, 0), ceil_mode=False, **_):
    return pool_shape(input, kernel_size, stride, padding, (1, 1), ceil_mode, "avg_pool2d")


@defop(
    "avg_pool2d",
    public=False,
    grad_fn="AvgPool2DBackward0",
    shape=_avg_op_shape,
    cost=costs.window,
    memory=costs.window_memory,
    vjp=_avg_vjp,
)
def avg_pool2d_op(
    input, *, kernel_size, stride, padding=(0, 0), ceil_mode=False, count_include_pad=True,
    divisor_override=None,
):  # fmt: skip
    """Window means of a 3-D or 4-D input."""
    return _avg_forward(
        input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
    )


def _avg_bwd_vjp(g, kernel_size, stride, padding, ceil_mode, count_include_pad,
                 divisor_override):  # fmt: skip
    attrs = _avg_attrs(kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
    if isinstance(g, Tensor):
        return apply(OPS["avg_pool2d"], (g,), attrs)
    return _avg_forward(g, *attrs.values())


@defop(
    "avg_pool2d_backward",
    public=False,
    grad_fn="AvgPool2DBackwardBackward0",
    shape=lambda grad_output, *, input_size, **_: tuple(input_size),
    vjp=_avg_bwd_vjp,
)
def avg_pool2d_backward(
    grad_output, *, input_size, kernel_size, stride, padding=(0, 0), ceil_mode=False,
    count_include_pad=True, divisor_override=None,
):  # fmt: skip
    """avg_pool2d's gradient: grad_output / divisor spread over each window."""
    return _avg_backward_np(
        grad_output, tuple(input_size), kernel_size, stride, padding, ceil_mode,
        count_include_pad, divisor_override,
    )  # fmt: skip


# -- torch.nn.functional front ends -----------------------------------------------------------


def _mp_shape(input, *, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
              return_indices=False):  # fmt: skip
    k, s, p, d = pool_args("max_pool2d", kernel_size, stride, padding, dilation)
    out = pool_shape(input, k, s, p, d, ceil_mode)
    return (out, out) if return_indices else out


def _mp_dtype(input, *, kernel_size=None, stride=None, padding=0, dilation=1, ceil_mode=False,
              return_indices=False):  # fmt: skip
    return (input, _dt.int64) if return_indices else input


@deffn("max_pool2d", shape=_mp_shape, dtype=_mp_dtype, cost=costs.window,
       memory=costs.window_memory)  # fmt: skip
def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):  # fmt: skip
    """Max over kH x kW windows of a (N, C, H, W) or (C, H, W) input; with return_indices,
    also the flat position of each maximum in its plane."""
    k, s, p, d = pool_args("max_pool2d", kernel_size, stride, padding, dilation)
    pool_shape(input.shape, k, s, p, d, ceil_mode)
    attrs = {"kernel_size": k, "stride": s, "padding": p, "dilation": d, "ceil_mode": ceil_mode}
    out, idx = apply(OPS["max_pool2d_with_indices"], (input,), attrs)
    return (out, idx) if return_indices else out


def _ap_shape(input, *, kernel_size, stride=None, padding=0, ceil_mode=False,
              count_include_pad=True, divisor_override=None):  # fmt: skip
    k, s, p, _ = pool_args("avg_pool2d", kernel_size, stride, padding)
    if divisor_override is not None and divisor_override == 0:
        raise ArgumentError("divisor must be not zero")
    return pool_shape(input, k, s, p, (1, 1), ceil_mode, "avg_pool2d")


@deffn("avg_pool2d", shape=_ap_shape, cost=costs.window, memory=costs.window_memory)
def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):  # fmt: skip
    """Mean over kH x kW windows of a (N, C, H, W) or (C, H, W) input (AvgPool2DBackward0)."""
    _ap_shape(input.shape, kernel_size=kernel_size, stride=stride, padding=padding,
              ceil_mode=ceil_mode, count_include_pad=count_include_pad,
              divisor_override=divisor_override)  # fmt: skip
    k, s, p, _ = pool_args("avg_pool2d", kernel_size, stride, padding)
    attrs = _avg_attrs(k, s, p, ceil_mode, count_include_pad, divisor_override)
    return apply(OPS["avg_pool2d"], (input,), attrs)
