"""`check` holds a program's estimated peak bytes to `max_request_bytes` (issue #12): the
attacks that once asked numpy for gigabytes are refused from shapes alone, in
milliseconds and without allocating, while the models the service is meant for pass."""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pytest

import engine
from engine.models import mlp, resnet18
from engine.models.program import to_program
from engine.program import Limits, ProgramError, TensorSpec, check, parse_expr, parse_nodes, run

# Only the byte limit binds here (the attacks exceed max_flops as well).
LOOSE = Limits(max_flops=10**15, max_request_bytes=64 << 20)

ATTACKS = {
    "pooling, a huge kernel": "y = x.expand(1,1,300,300).double()\nz = max_pool2d(y, 150, 1)",
    "conv2d, huge im2col": "z = conv2d(x.expand(1,1,500,500), x.expand(1,1,250,250))",
    "float64 values": "y = x.reshape(1, 1).expand(1000, 2000).double()\nz = y * y + y",
}


@pytest.mark.parametrize("text", ATTACKS.values(), ids=list(ATTACKS))
def test_over_the_limit_is_refused_before_any_numpy_work(text):
    x = engine.ones(1, 1, 1, 1, requires_grad=True)
    program = parse_expr(text)
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(ProgramError) as info:
            check(program, {"x": x}, LOOSE, backward=True)
        seconds = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    err = info.value
    assert (err.kind, err.limit) == ("limit", "max_request_bytes")
    assert err.value > LOOSE.max_request_bytes
    assert "bytes at its peak" in err.message and err.line is not None
    assert seconds < 0.05 and peak < 1 << 20  # shapes only: no array was made


def test_the_estimate_bounds_what_a_program_allocates():
    program = parse_expr("h = relu(x @ w)\ny = max_pool2d(h.view(1, 4, 64, 64), 3, 2)\ns = y.sum()")
    x = engine.tensor(np.random.default_rng(0).standard_normal((64, 32)), requires_grad=True)
    w = engine.tensor(np.random.default_rng(1).standard_normal((32, 256)), requires_grad=True)
    checked = check(program, {"x": x, "w": w}, backward=True)
    tracemalloc.start()
    try:
        s = run(program, {"x": x, "w": w})["s"]
        s.backward()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= checked.bytes
    assert checked.bytes < 20 * peak  # an upper bound, not an absurd one


def _model_bytes(model, x):
    prog = to_program(model, mode="train")
    specs = {k: TensorSpec(v.shape, v.dtype, True) for k, v in model.named_parameters()}
    specs |= {k: TensorSpec(v.shape, v.dtype) for k, v in model.named_buffers()}
    checked = check(parse_nodes(prog.nodes, prog.outputs), {**specs, "input": x}, backward=True)
    return checked.bytes


def test_the_default_limit_lets_the_services_models_train():
    """ResNet-18 on an 8x3x64x64 batch (about as much as max_flops allows) and the
    benchmarks' MLP, with backward, under the default 1 GiB."""
    assert _model_bytes(resnet18(10), TensorSpec((8, 3, 64, 64), np.float32)) < 300 << 20
    assert _model_bytes(mlp([784, 256, 256, 10]), TensorSpec((64, 784), np.float32)) < 16 << 20
