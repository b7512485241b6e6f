"""Cost rules shared by op families: the FLOP estimate `program.check` holds to `max_flops`,
and the peak bytes it holds to `max_request_bytes`.

An op's record names its rule (`defop(..., cost=...)`, `deffn(..., cost=...)`); a record
without one costs `pointwise`. A rule takes the shapes of the call's tensor operands
positionally (numbers are not operands here) and the result's shapes as `out`, a tuple with
one shape per output; it may name attributes to receive them by keyword (see registry).

These are estimates of the forward's work; `check` triples the total when the backward
pass will run too (it costs about twice the forward).

A memory rule (`defop(..., memory=...)`; the second half of this module) bounds the bytes a
call allocates; a record without one has `BUFFERS`."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .conv_kernels import COLS_CHUNK
from .conv_rules import conv_ints
from .im2col import WINDOW_CHUNK
from .pool_rules import pool_args, pool_pair


def _elements(shapes) -> int:
    return sum(math.prod(s) for s in shapes)


def pointwise(*shapes, out):
    """The larger of the output's and the operands' element counts: one operation per
    element read or written."""
    return max(_elements(out), _elements(shapes))


def contraction(at: int | None):
    """2·(output elements)·k, k the last dimension of the operand at index `at` (the
    contracted size), or with `at=None` the largest last dimension of any operand (an upper
    bound): matmul, mm, bmm, mv, dot, addmm, linear."""

    def cost(*shapes, out):
        if at is not None and at < len(shapes) and shapes[at]:
            k = shapes[at][-1]
        else:
            k = max((s[-1] for s in shapes if s), default=1)
        return 2 * _elements(out) * max(k, 1)

    cost.__qualname__ = f"contraction({at})"
    return cost


def convolution(*shapes, out):
    """Each output element is a dot product over the weight's C_in/groups × kH × kW entries
    (operand 1 is the weight): 2·(output elements)·k."""
    if len(shapes) > 1 and len(shapes[1]) > 2:
        return 2 * _elements(out) * math.prod(shapes[1][1:])
    return pointwise(*shapes, out=out)


def window(*shapes, out, kernel_size):
    """Pooling: each output element reads a kH·kW window, so (output elements)·kH·kW, and
    no less than `pointwise` (a kernel of 150 on a 300x300 input is 5·10⁸, not 9·10⁴)."""
    n = math.prod(pool_pair("", "kernel_size", kernel_size))  # (the shape rule checked it)
    return max(pointwise(*shapes, out=out), _elements(out[:1]) * n)


def adaptive(*shapes, out):
    """adaptive_avg_pool2d as it runs: two averaging matmuls, (Ho, H) @ x then @ (W, Wo),
    2·lead·Ho·W·(H + Wo) — far more than its elements when the output is large."""
    *lead, h, w = shapes[0]
    ho, wo = out[0][-2:]
    return max(pointwise(*shapes, out=out), 2 * math.prod(lead) * ho * w * (h + wo))


# -- memory: the peak bytes of a call's forward and of its backward ---------------------------
#
# A memory rule takes the operands' specs (shapes with `.dtype`) positionally and the results'
# as `out`, and returns `Peak(forward, backward)`: the bytes the forward allocates at its
# peak, its results included, and the bytes the backward allocates, the gradients it returns
# included, both counted above what was alive before the call. `check` adds OVERHEAD to each,
# keeps a program's values alive for the whole request (and as many gradients with backward)
# and adds the largest call's peak. tests/engine/test_cost_bounds.py measures every function
# against its rule under tracemalloc.


class Peak(NamedTuple):
    forward: int
    backward: int


#: Bytes of one call beyond its arrays' data: the Tensor, node and array objects, argument
#: tuples, attribute dicts and first-use caches it makes (measured up to ~34 KiB for a
#: small max_pool2d; `check` counts this once, for the largest call).
OVERHEAD = 1 << 16

#: Bytes of one kept value beyond its data (its Tensor, array header and node), as `check`
#: counts the values of a program.
VALUE_OVERHEAD = 1 << 10


def nbytes(spec) -> int:
    """A spec's data bytes (a plain shape counts 8 bytes an element)."""
    dt = getattr(spec, "dtype", None)
    return math.prod(spec) * (dt.itemsize if dt is not None else 8)


def _widest(specs) -> int:
    return max((getattr(s, "dtype", _F8).itemsize for s in specs), default=8)


def _spread(specs, tail: int = 0) -> int:
    """Elements of the operands broadcast together (dimension by dimension from the right,
    the largest size: an upper bound that needs no validity check), the last `tail`
    dimensions of each left out."""
    dims: list[int] = []
    for s in specs:
        s = s[: len(s) - tail] if tail else s
        for i, n in enumerate(reversed(s)):
            if i < len(dims):
                dims[i] = max(dims[i], n)
            else:
                dims.append(n)
    return math.prod(dims)


_F8 = np.dtype(np.float64)


def buffers(
    forward: float, backward: float, *, wide: bool = False, batched: bool = False,
    broadcast: bool = False,
):  # fmt: skip
    """`forward` (`backward`) buffers the size of the largest operand or result, in the
    widest of their dtypes, or in 8 bytes with `wide` (the op computes in float64, or makes
    int64 indices, whatever its dtypes). With `broadcast`, or the size of the operands
    broadcast together where that is larger than the result (a reduced loss's
    `input - target`); `batched`: the operands are matrices (contractions) whose batch
    dimensions broadcast (a VJP's gradient at the broadcast batch shape)."""

    def memory(*specs, out):  # (one plain loop: this runs for every call `check` sees)
        n, w = 0, 1
        for s in (*specs, *out):
            n = max(n, math.prod(s))
            dt = getattr(s, "dtype", None)
            w = max(w, 8 if dt is None else dt.itemsize)
        if len(specs) > 1 and broadcast:
            if batched:
                mats = max(math.prod(s[-2:]) for s in specs)
                n = max(n, _spread(specs, 2) * mats)
            else:
                n = max(n, _spread(specs))
        w = 8 if wide else w
        return Peak(math.ceil(forward * n * w), math.ceil(backward * n * w))

    flags = "".join(
        f", {f}=True" for f, on in (("wide", wide), ("batched", batched), ("broadcast", broadcast))
        if on
    )  # fmt: skip
    memory.__qualname__ = f"buffers({forward}, {backward}{flags})"
    return memory


#: The default: the result and two temporaries, and in the backward a gradient per operand
#: with its broadcast intermediates (g·other, result-sized, before it is summed to the
#: operand's shape).
BUFFERS = buffers(3, 6)
#: float64 evaluation whatever the dtype: erf's rational approximations (erf.py), and gelu
#: and softplus built on it, keep about ten float64 arrays of the input's size at once.
SPECIAL = buffers(12, 12, wide=True)
#: Contractions (matmul, mm, bmm, addmm, linear...): the result, transposed copies of the
#: operands and, in the backward, both gradients at the broadcast batch shape.
CONTRACTION = buffers(3, 6, batched=True)
#: Pointwise losses and masked_fill: their operands broadcast to more than the result.
BROADCAST = buffers(3, 6, broadcast=True)


def _chunk(k: int, m: int, row: int, chunk: int) -> int:
    """Elements of a band of k×m columns cut at `chunk` elements, a band never less than one
    row of `row` columns (the chunking in conv_kernels.py and pool.py)."""
    return min(k * m, max(chunk, k * row))


def convolution_memory(*specs, out, stride=1, padding=0, dilation=1, groups=1):
    """im2col convolution (conv_kernels.py): the padded input, a band of columns (at most
    COLS_CHUNK elements, or one output row's), the GEMM's result and its re-layout; the
    backward does the same for both gradients: the transposed convolution (a convolution of
    the padded gradient with the flipped kernel, or GEMM + col2im into the padded input) and
    the weight's GEMM over the input's columns."""
    input, weight = specs[:2]
    (dh, dw), g = conv_ints(dilation, "dilation"), groups
    if isinstance(padding, str):  # 'valid', or 'same': at most the dilated kernel, all told
        ph, pw = (0, 0) if padding == "valid" else (dh * weight[2], dw * weight[3])
    else:
        ph, pw = conv_ints(padding, "padding")
    n, c, h, w = (1, *input) if len(input) == 3 else tuple(input)
    o, cg, kh, kw = weight
    ho, wo = out[0][-2:]
    e = _widest((input, weight, *out))
    x, y, wt = n * c * h * w, n * o * ho * wo, math.prod(weight)
    p = n * c * (h + 2 * ph + dh * kh) * (w + 2 * pw + dw * kw)  # padded, ceil-extended
    k = cg * kh * kw
    cols = _chunk(k, n * ho * wo, n * wo, COLS_CHUNK)
    forward = 2 * p + cols + 3 * y + wt
    flipped = n * o * (h + 2 * dh * kh) * (w + 2 * dw * kw)
    flip = flipped + _chunk(o // g * kh * kw, n * h * w, n * w, COLS_CHUNK) + 3 * x + wt
    scatter = y + g * cols + 3 * p
    weight_grad = p + cols + y + 2 * wt
    backward = max(flip, scatter) + weight_grad + x + wt + o + 2 * p
    return Peak(forward * e, backward * e)


def _pool_sizes(input, out, kernel_size, stride, padding, dilation):
    k, s, pad, dil = pool_args("", kernel_size, stride, padding, dilation)
    *lead, h, w = input
    ho, wo = out[0][-2:]
    lead = math.prod(lead)
    hp = max(h + 2 * pad[0], (ho - 1) * s[0] + dil[0] * (k[0] - 1) + 1)
    wp = max(w + 2 * pad[1], (wo - 1) * s[1] + dil[1] * (k[1] - 1) + 1)
    return k, lead, lead * h * w, lead * hp * wp, lead * ho * wo, ho * wo


def window_memory(*specs, out, kernel_size, stride=None, padding=0, dilation=1):
    """Pooling (pool.py): the padded input, two bands of window copies at once (the one in
    use and the next; at most WINDOW_CHUNK elements, or one kernel row's), the maxima or
    sums, and for max pooling int64 offsets and positions (a table of every offset's
    positions, up to WINDOW_CHUNK entries); the backward a gradient the size of the padded
    input, and int64 flat positions for max pooling's scatter."""
    input = specs[0]
    k, lead, x, p, y, plane = _pool_sizes(input, out, kernel_size, stride, padding, dilation)
    e = _widest((input, *out))
    band = _chunk(k[1] * y, k[0], 1, WINDOW_CHUNK)
    forward = (p + 2 * band + 3 * y) * e + 8 * (7 * y + min(k[0] * k[1] * plane, WINDOW_CHUNK))
    backward = (2 * p + 2 * y) * e + 8 * (4 * y + 2 * plane)
    return Peak(forward, backward)


def adaptive_memory(*specs, out):
    """adaptive_avg_pool2d (adaptive_pool.py): the (Ho, H) and (Wo, W) averaging matrices
    (built through boolean and float64 temporaries) and the first matmul's (..., Ho, W)
    result; the backward the same transposed (and contiguous copies of g and a matrix)."""
    *lead, h, w = specs[0]
    ho, wo = out[0][-2:]
    lead = math.prod(lead)
    e = _widest((*specs, *out))
    matrices = 8 * 6 * (ho * h + wo * w)
    forward = matrices + e * lead * (ho * w + ho * wo)
    backward = matrices + e * (lead * (h * wo + h * w + ho * wo) + ho * h + wo * w)
    return Peak(forward, backward)
