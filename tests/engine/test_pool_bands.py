"""Pooling copies its windows a band of kernel rows at a time (engine/ops/pool.py), so its
memory stays bounded whatever the kernel size: a 112-byte request pooling a 300x300 input
with a 150x150 kernel once made numpy copy every window, 5.95 GB for 12.9 s (#12).

The banded result is the one-copy result: the same maxima and torch's indices (first
maximum on ties, last NaN), and the same window sums."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import engine
from engine.ops import pool
from engine.program import check, parse_expr

F = engine.nn.functional


def _config(rng):
    h, w = (int(v) for v in rng.integers(5, 10, 2))  # at least the kernel
    kh, kw = (int(v) for v in rng.integers(2, 5, 2))
    return {
        "x": rng.integers(-2, 3, (2, 3, h, w)).astype(np.float64),  # many ties
        "kernel": (kh, kw),
        "stride": tuple(int(v) for v in rng.integers(1, 3, 2)),
        "padding": (int(rng.integers(0, kh // 2 + 1)), int(rng.integers(0, kw // 2 + 1))),
    }


@pytest.mark.parametrize("seed", range(40))
def test_bands_of_one_kernel_row_give_the_one_copy_result(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    c = _config(rng)
    x = c["x"]
    if seed % 4 == 0:
        x[rng.random(x.shape) < 0.15] = np.nan
    args = (x, c["kernel"], c["stride"], c["padding"], (1, 1), bool(seed % 2))
    whole = pool._max_forward(*args)
    avg_args = (x, c["kernel"], c["stride"], c["padding"], bool(seed % 2), True, None)
    whole_avg = pool._avg_forward(*avg_args)
    monkeypatch.setattr(pool, "WINDOW_CHUNK", 1)  # one kernel row per band
    banded = pool._max_forward(*args)
    np.testing.assert_array_equal(banded[0], whole[0])
    np.testing.assert_array_equal(banded[1], whole[1])
    assert banded[1].dtype == whole[1].dtype == np.int64
    np.testing.assert_allclose(pool._avg_forward(*avg_args), whole_avg, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fn", ["max_pool2d", "avg_pool2d"])
def test_a_huge_kernel_pools_in_bounded_memory(fn):
    x = engine.ones(1, 1, 200, 200, requires_grad=True)
    tracemalloc.start()
    try:
        y = getattr(F, fn)(x, 100, 1)
        y.sum().backward()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert tuple(y.shape) == (1, 1, 101, 101)
    # One copy of every window would be 10,000 x 101 x 101 float32 = 408 MB.
    assert peak < 150 * 2**20, f"{fn}: peak {peak / 2**20:.0f} MiB"
    # Every output sends a gradient of 1 into its window: in all, one per output.
    assert float(x.grad.sum()) == pytest.approx(101 * 101, rel=1e-4)


@pytest.mark.parametrize("fn", ["max_pool2d", "avg_pool2d"])
def test_the_cost_estimate_counts_every_window_read(fn):
    """The record's cost rule (ops.costs.window): (output elements)·kH·kW, which the
    request's FLOP limit is checked against; it once counted max(input, output) elements."""
    program = parse_expr(f"y = x.expand(1,1,300,300)\nz = {fn}(y, 150, 1)")
    checked = check(program, {"x": engine.ones(1, 1, 1, 1)})
    assert checked.flops >= 151 * 151 * 150 * 150
    small = check(parse_expr(f"z = {fn}(x, (3, 2))"), {"x": engine.ones(1, 2, 9, 8)})
    assert small.flops == 2 * 3 * 4 * 3 * 2  # out (1, 2, 3, 4) x a 3x2 window
