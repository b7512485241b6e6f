"""The fast path is pinned to the reference: every registry case (tests/engine/cases), in
float32 and float64, through `.backward()` and `autograd.grad`, first and second order, gives
the same results with engine.fast installed as on the reference path (dispatch.apply and
the interpreted backward loop): outputs and first-order gradients bit for bit, second-order
gradients within a few ulp.

A case whose function itself differentiates with create_graph (the `*_grad2`, `*_grad_grad`
cases) outputs first derivatives, so its gradients here are second and third derivatives:
they are held to the few ulp. (The generated `.backward()` runs a node's single-use producers
straight away, so a gradient with three or more contributions may be summed in another order
than the reference loop's; that happens in those graphs.)"""

from __future__ import annotations

import linecache
import os
import pathlib
import subprocess
import sys
import traceback

import numpy as np
import pytest

import engine
from engine import fast

from .test_ops_registry import CASES, _inputs, _outputs, _wrap

ROOT = pathlib.Path(__file__).resolve().parents[2]
MAX_ULP = 4  # second order: of the largest magnitude in the gradient (see _close)

RUNS = [
    pytest.param(case, dtype, id=f"{case.id}-{name}")
    for case in CASES
    for dtype, name in ((np.float64, "f64"), (np.float32, "f32"))
    if dtype is np.float64 or case.float32
]


def _weights(outs, seed):
    rng = np.random.default_rng(seed)
    return [engine.tensor(rng.standard_normal(tuple(o.shape)).astype(o.dtype)) for o in outs]


def _weighted(outs, seed):
    """sum(o · w) over the outputs, w fixed random weights: one scalar to differentiate."""
    total = None
    for o, w in zip(outs, _weights(outs, seed), strict=True):
        term = (o * w).sum()
        total = term if total is None else total + term
    return total


def _gradients(total, leaves, how, **kwargs):
    if how == "backward":
        for t in leaves:
            t.grad = None
        total.backward(**kwargs)
        return [t.grad for t in leaves]
    return list(engine.autograd.grad(total, leaves, allow_unused=True, **kwargs))


def _run(case, dtype, how, seen):
    """(outputs, first-order gradients, second-order gradients) as arrays, or Nones, and
    whether the case's function differentiated with create_graph (`seen` records that)."""
    engine.manual_seed(0)
    ins = _wrap(engine, case, _inputs(case, dtype))
    seen.clear()
    outs = _outputs(case.fn(engine, *ins))
    higher = any(seen)
    values = [o.detach().numpy().copy() for o in outs]
    leaves = [t for t in ins if isinstance(t, engine.Tensor) and t.requires_grad]
    diff = [o for o in outs if o.requires_grad]
    if not (case.grad and leaves and diff):
        return values, [], [], higher
    first = _gradients(_weighted(diff, 1), leaves, how, retain_graph=True)
    first = [None if g is None else g.numpy().copy() for g in first]
    # Second order: d/d(leaves) of sum(dL/d(leaves) · v), through create_graph.
    grads = engine.autograd.grad(_weighted(diff, 1), leaves, create_graph=True, allow_unused=True)
    again = [g for g in grads if g is not None and g.requires_grad]
    second = []
    if again:
        second = _gradients(_weighted(again, 2), leaves, how)
        second = [None if g is None else g.detach().numpy().copy() for g in second]
    return values, first, second, higher


def _both(case, dtype, how, monkeypatch):
    """The case's results on each path, and whether its function differentiates itself."""
    seen = []
    grad = engine.autograd.grad

    def spy(*args, **kwargs):
        seen.append(kwargs.get("create_graph", False))
        return grad(*args, **kwargs)

    monkeypatch.setattr(engine.autograd, "grad", spy)  # what the cases call, as m.autograd.grad
    with fast.reference():
        *ref, higher = _run(case, dtype, how, seen)
    with fast.fast():
        *got, _ = _run(case, dtype, how, seen)
    return ref, got, higher


def _same_bits(a, b):
    if a is None or b is None:
        return a is None and b is None
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _close(a, b):
    """Within MAX_ULP units in the last place of the gradient's largest magnitude."""
    if a is None or b is None:
        return a is None and b is None
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if _same_bits(a, b):
        return True
    if a.dtype.kind != "f":
        return False
    nan = np.isnan(a)
    if not np.array_equal(nan, np.isnan(b)):
        return False
    scale = np.max(np.abs(np.where(nan, 0, a)), initial=0.0)
    return bool(np.all(np.abs(a[~nan] - b[~nan]) <= MAX_ULP * np.spacing(scale)))


@pytest.mark.parametrize("how", ["backward", "grad"])
@pytest.mark.parametrize(("case", "dtype"), RUNS)
def test_fast_path_gives_the_reference_results(case, dtype, how, monkeypatch):
    ref, got, higher = _both(case, dtype, how, monkeypatch)
    (ref_out, ref_first, ref_second), (out, first, second) = ref, got
    assert len(out) == len(ref_out) and len(first) == len(ref_first)
    for a, b in zip(out, ref_out, strict=True):
        assert _same_bits(a, b), (a, b)
    for a, b in zip(first, ref_first, strict=True):
        assert _close(a, b) if higher else _same_bits(a, b), (a, b)
    assert len(second) == len(ref_second)
    for a, b in zip(second, ref_second, strict=True):
        assert _close(a, b), (a, b)


def test_the_paths_switch_in_process():
    was = fast.is_installed()
    with fast.reference():
        assert not fast.is_installed()
        assert "_back" not in vars(engine.graph.Node)
        with fast.fast():
            assert fast.is_installed()
        assert not fast.is_installed()
    assert fast.is_installed() == was


def _frames(exc):
    return [(f.filename, f.line) for f in traceback.extract_tb(exc.__traceback__)]


def test_a_traceback_shows_the_generated_lines():
    with fast.fast():
        x = engine.tensor([1.0, 2.0], requires_grad=True)
        y = x * x
        y.sum().backward()
        with pytest.raises(engine.GradError) as err:
            y.sum().backward()  # mul's saved operands are freed
        assert ("<engine.fast backward of mul>", "raise GradError(FREED_MESSAGE)") in _frames(
            err.value
        )
        with pytest.raises(engine.ShapeError) as err:
            x + engine.tensor([1.0, 2.0, 3.0])
        name = "<engine.fast binary operator of add>"
        assert (name, "raise explain(op, (x, y), EMPTY, exc) from None") in _frames(err.value)
        assert linecache.getline(name, 1) == "def run(x, y):\n"


def test_engine_fast_0_leaves_the_reference_path():
    code = (
        "import engine, engine.fast as f; "
        "x = engine.tensor([1.0, 2.0], requires_grad=True); (x * x).sum().backward(); "
        "print(f.is_installed(), engine.Tensor.__mul__.__module__, x.grad.tolist())"
    )
    env = {**os.environ, "ENGINE_FAST": "0", "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "engine.methods", "[2.0,", "4.0]"]
