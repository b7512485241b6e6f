"""Convolutions whose im2col columns would be large run a band of output rows at a time
(engine/ops/conv_kernels.py): a 500x500 input with a 250x250 kernel once asked numpy for
15.7 GB of columns at once (#12). Banded results equal the one-block results (float64, to
rounding: the GEMMs are split), for the forward and both gradients."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import engine
from engine.ops import conv_kernels as K


def _config(rng):
    groups = int(rng.choice([1, 2]))
    kh, kw = (int(v) for v in rng.integers(1, 4, 2))
    stride = tuple(int(v) for v in rng.integers(1, 3, 2))
    dilation = tuple(int(v) for v in rng.integers(1, 3, 2))
    padding = (int(rng.integers(0, kh)), int(rng.integers(0, kw)))
    n, c, o = int(rng.integers(1, 3)), 2 * groups, 2 * groups
    h, w = (int(v) for v in rng.integers(6, 11, 2))
    x = rng.standard_normal((n, c, h, w))
    wt = rng.standard_normal((o, c // groups, kh, kw))
    return x, wt, stride, padding, dilation, groups


@pytest.mark.parametrize("seed", range(30))
def test_bands_of_one_output_row_give_the_one_block_results(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    x, wt, stride, padding, dilation, groups = _config(rng)
    b = rng.standard_normal(wt.shape[0])
    y = K.conv_np(x, wt, b, stride, padding, dilation, groups)
    g = rng.standard_normal(y.shape)
    gi = K.grad_input_np(g, wt, x.shape[2:], stride, padding, dilation, groups)
    gw = K.grad_weight_np(x, g, wt.shape[2:], stride, padding, dilation, groups)
    monkeypatch.setattr(K, "COLS_CHUNK", 1)  # one output row per band
    assert len(K._bands(8, 1, y.shape[2], y.shape[3])) == y.shape[2]
    np.testing.assert_allclose(K.conv_np(x, wt, b, stride, padding, dilation, groups), y,
                               rtol=1e-12, atol=1e-12)  # fmt: skip
    banded_gi = K.grad_input_np(g, wt, x.shape[2:], stride, padding, dilation, groups)
    np.testing.assert_allclose(banded_gi, gi, rtol=1e-12, atol=1e-12)
    banded_gw = K.grad_weight_np(x, g, wt.shape[2:], stride, padding, dilation, groups)
    np.testing.assert_allclose(banded_gw, gw, rtol=1e-12, atol=1e-12)


def test_a_huge_kernel_convolves_in_bounded_memory():
    """160x160 input, 80x80 kernel: one block of columns would be 6,400 x 81 x 81 float32 =
    168 MB; bands keep the peak near COLS_CHUNK's 64 MB."""
    x = engine.ones(1, 1, 160, 160, requires_grad=True)
    w = engine.ones(1, 1, 80, 80, requires_grad=True)
    tracemalloc.start()
    try:
        y = engine.nn.functional.conv2d(x, w)
        y.sum().backward()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert tuple(y.shape) == (1, 1, 81, 81) and float(y[0, 0, 0, 0]) == 6400.0
    assert peak < 120 * 2**20, f"peak {peak / 2**20:.0f} MiB"
    assert float(w.grad.sum()) == pytest.approx(81 * 81 * 6400, rel=1e-5)
