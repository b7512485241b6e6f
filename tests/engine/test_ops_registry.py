"""Every registered op, checked the same way (parametrized over tests/engine/cases):

- values and gradients equal torch 2.13.0's: in float64 to rtol 1e-10; in float32 judged
  against torch's float64 result of the same float32 inputs (tests/float_ref.py), so the
  outcome does not hang on the summation order a BLAS kernel picks;
- gradcheck: our gradients equal central finite differences in float64;
- the grad_fn graph has torch's node names and structure;
- and every op in the registry is exercised by some case, so a new op cannot land untested.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import engine
from engine.registry import OPS
from tests.float_ref import assert_float32_close

from .cases import T, all_cases

CASES = all_cases()
RTOL = 1e-10  # float64 against float64


def _inputs(case, dtype, seed=0):
    rng = np.random.default_rng(seed)
    arrays = []
    for spec in case.inputs:
        if isinstance(spec, T):
            a = spec.make(rng)
            arrays.append(a.astype(dtype) if a.dtype.kind == "f" else a)
        else:
            arrays.append(spec)
    return arrays


def _wrap(m, case, arrays):
    out = []
    for spec, a in zip(case.inputs, arrays, strict=True):
        if isinstance(spec, T):
            t = m.tensor(a.copy())
            if spec.grad and case.grad:
                t.requires_grad_(True)
            out.append(t)
        else:
            out.append(a)
    return out


def _outputs(res):
    return list(res) if isinstance(res, (tuple, list)) else [res]


def _run(m, case, arrays, rng_seed=1, weights_dtype=None):
    """The case's outputs, and the gradients of a random weighting of them. `weights_dtype`
    rounds the weights first (the float64 reference of a float32 run weighs as it does)."""
    ins = _wrap(m, case, arrays)
    outs = _outputs(case.fn(m, *ins))
    grads = None
    diff = [o for o in outs if o.requires_grad]
    if case.grad and diff:
        rng = np.random.default_rng(rng_seed)
        total = None
        for o in diff:
            w = rng.standard_normal(tuple(o.shape))
            if weights_dtype is not None:
                w = w.astype(weights_dtype)
            w = m.tensor(w.astype(o.detach().numpy().dtype))
            term = (o * w).sum()
            total = term if total is None else total + term
        leaves = [t for t in ins if hasattr(t, "requires_grad") and t.requires_grad]
        grads = m.autograd.grad(total, leaves, allow_unused=True)
    return ins, outs, grads


def _np(t):
    if t is None:
        return None
    return t.detach().numpy()


def _same(ours, theirs, reference, dtype, atol, what):
    if ours is None or theirs is None:
        assert theirs is None or not np.any(_np(theirs)), what
        assert ours is None or not np.any(_np(ours)), what
        return
    assert tuple(ours.shape) == tuple(theirs.shape), what
    assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch."), (what, ours.dtype)
    a = _np(ours)
    if a.dtype == np.float32:
        assert_float32_close(a, _np(theirs), _np(reference), what)
    elif a.dtype.kind == "f":
        np.testing.assert_allclose(a, _np(theirs), rtol=RTOL, atol=atol, err_msg=what)
    else:
        np.testing.assert_array_equal(a, _np(theirs), err_msg=what)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_matches_torch(case, dtype):
    if dtype is np.float32 and not case.float32:
        pytest.skip("float64 only")
    arrays = _inputs(case, dtype)
    _, ours, our_grads = _run(engine, case, arrays)
    _, theirs, their_grads = _run(torch, case, arrays)
    reference, ref_grads = theirs, their_grads
    if dtype is np.float32:  # torch's float64 run of the same float32 values
        wide = [a.astype(np.float64) if getattr(a, "dtype", None) == dtype else a for a in arrays]
        _, reference, ref_grads = _run(torch, case, wide, weights_dtype=dtype)
    assert len(ours) == len(theirs)
    atol = case.atol or 1e-12
    for i, (o, t, r) in enumerate(zip(ours, theirs, reference, strict=True)):
        _same(o, t, r, dtype, atol, f"output {i}")
    if their_grads is not None:
        assert our_grads is not None
        grads = zip(our_grads, their_grads, ref_grads, strict=True)
        for i, (g, h, r) in enumerate(grads):
            _same(g, h, r, dtype, atol, f"gradient {i}")


def _walk(fn, seen=None):
    """The grad_fn graph as nested (name, children) with torch's output indices."""
    if fn is None:
        return None
    return (
        type(fn).__name__,
        tuple((_walk(n), i) if n is not None else None for n, i in fn.next_functions),
    )


@pytest.mark.parametrize(
    "case",
    [c for c in CASES if c.check_graph and c.grad],
    ids=[c.id for c in CASES if c.check_graph and c.grad],
)
def test_grad_fn_graph_matches_torch(case):
    arrays = _inputs(case, np.float64)
    ours = _outputs(case.fn(engine, *_wrap(engine, case, arrays)))
    theirs = _outputs(case.fn(torch, *_wrap(torch, case, arrays)))
    for o, t in zip(ours, theirs, strict=True):
        assert _walk(o.grad_fn) == _walk(t.grad_fn)
        assert o.requires_grad == t.requires_grad


GRADCHECK = [c for c in CASES if c.grad and c.gradcheck]


@pytest.mark.parametrize("case", GRADCHECK, ids=[c.id for c in GRADCHECK])
def test_gradcheck(case):
    arrays = _inputs(case, np.float64, seed=2)
    ins = _wrap(engine, case, arrays)
    leaves = [t for t in ins if isinstance(t, engine.Tensor) and t.requires_grad]
    if not leaves:
        pytest.skip("no differentiable input")

    def fn(*xs):
        it = iter(xs)
        args = [next(it) if isinstance(t, engine.Tensor) and t.requires_grad else t for t in ins]
        return case.fn(engine, *args)

    assert engine.autograd.gradcheck(fn, leaves, eps=1e-6, atol=1e-5, rtol=1e-3)


def _ops_in_graph(fn, acc):
    stack = [fn]
    while stack:
        node = stack.pop()
        if node is None or id(node) in acc:
            continue
        acc[id(node)] = getattr(node, "op", None)
        stack.extend(n for n, _ in node.next_functions)


def test_every_registered_op_has_a_case():
    covered = set()
    for case in CASES:
        covered.update(case.covers)
        arrays = _inputs(case, np.float64)
        outs = _outputs(case.fn(engine, *_wrap(engine, case, arrays)))
        seen = {}
        for o in outs:
            _ops_in_graph(o.grad_fn, seen)
        covered.update(op.name for op in seen.values() if op is not None)
    missing = sorted(set(OPS) - covered)
    assert not missing, f"ops without a test case: {missing}"
