"""check() hands the registry's rules what the call says (found by test_cost_bounds):

- a dtype rule takes operands as dtypes (a number as its type) but attributes as values, so
  `max_pool2d(x, 2, return_indices=False)` is one tensor, not the pair `bool` (truthy) made
  it, which was refused as `no_rule`;
- `x.expand()` and `x.repeat()` (a `*sizes` parameter given nothing) are torch's argument
  error, in torch's words, not a `no_rule` refusal; `x.expand(())` is an empty size.

Each call is checked, run, and compared with torch 2.13: the inferred specs are what the run
gives, values and gradients are torch's (float64 to 1e-10; float32 judged against torch's
float64 run of the same inputs, tests/float_ref.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import engine
from engine.program import ProgramError, check, parse_expr, run
from engine.program.specs import Multi
from tests.float_ref import assert_float32_close

TF = torch.nn.functional


def _tensors(lib, arrays):
    return {k: lib.tensor(a.copy()).requires_grad_(a.dtype.kind == "f") for k, a in arrays.items()}


def _outputs(res):
    return list(res) if isinstance(res, tuple | list) else [res]


def _run(lib, fn, arrays, weights):
    """fn's outputs and the gradients of sum(output * weight) over the float outputs."""
    ins = _tensors(lib, arrays)
    outs = _outputs(fn(lib, ins))
    total = sum(
        (o * lib.tensor(w)).sum() for o, w in zip(outs, weights, strict=False) if w is not None
    )
    grads = lib.autograd.grad(total, list(ins.values()))
    return outs, grads


def _np(t):
    return np.asarray(t.detach().numpy())


def _same(ours, theirs, reference, what):
    assert tuple(ours.shape) == tuple(theirs.shape), what
    assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch."), what
    a = _np(ours)
    if a.dtype == np.float32:
        assert_float32_close(a, _np(theirs), _np(reference), what)
    elif a.dtype.kind == "f":
        np.testing.assert_allclose(a, _np(theirs), rtol=1e-10, atol=1e-12, err_msg=what)
    else:
        np.testing.assert_array_equal(a, _np(theirs), err_msg=what)


def _compare(text, torch_fn, arrays):
    """Check and run `text` (one result, `z`, maybe a tuple), compare with torch_fn."""
    prog = parse_expr(text)
    ours_in = _tensors(engine, arrays)
    checked = check(prog, ours_in, backward=True)
    z = run(prog, ours_in)["z"]
    ours = _outputs(z)
    spec = checked.outputs["z"]
    specs = list(spec) if isinstance(spec, Multi) else [spec]
    assert len(specs) == len(ours)
    for s, o in zip(specs, ours, strict=True):
        assert s.shape == tuple(o.shape) and s.dtype == o.dtype, (s, o.shape, o.dtype)
        assert s.requires_grad == o.requires_grad

    rng = np.random.default_rng(5)
    weights = [rng.standard_normal(tuple(o.shape)).astype(_np(o).dtype) if o.requires_grad
               else None for o in ours]  # fmt: skip
    theirs, their_grads = _run(torch, torch_fn, arrays, weights)
    leaves = list(ours_in.values())
    total = sum(
        (o * engine.tensor(w)).sum() for o, w in zip(ours, weights, strict=True) if w is not None
    )
    our_grads = engine.autograd.grad(total, leaves)
    reference, ref_grads = theirs, their_grads
    if any(a.dtype == np.float32 for a in arrays.values()):
        wide = {k: a.astype(np.float64) if a.dtype == np.float32 else a for k, a in arrays.items()}
        reference, ref_grads = _run(torch, torch_fn, wide, weights)
    for i, (o, t, r) in enumerate(zip(ours, theirs, reference, strict=True)):
        _same(o, t, r, f"output {i}")
    for i, (g, h, r) in enumerate(zip(our_grads, their_grads, ref_grads, strict=True)):
        _same(g, h, r, f"gradient {i}")


# -- a dtype rule's attributes are values ------------------------------------------------------

POOL = [
    ("max_pool2d(img, 2, return_indices=False)", {"return_indices": False}),
    ("F.max_pool2d(img, 3, 2, 1, return_indices=False)", {"stride": 2, "padding": 1}),
    ("max_pool2d(img, 2, 1, 0, 1, False, False)", {"stride": 1}),
    ("max_pool2d(img, 2, return_indices=True)", {"return_indices": True}),
    ("max_pool2d(img, 2)", {}),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(("call", "kw"), POOL, ids=[c for c, _ in POOL])
def test_max_pool2d_return_indices_spelled_out_is_checked_and_matches_torch(call, kw, dtype):
    arrays = {"img": np.random.default_rng(1).standard_normal((2, 3, 7, 6)).astype(dtype)}
    k = 3 if "3, 2, 1" in call else 2

    def torch_fn(m, t):
        return TF.max_pool2d(t["img"], k, **kw)

    _compare(f"z = {call}", torch_fn, arrays)


def test_return_indices_false_is_one_tensor_to_check():
    img = engine.ones(1, 1, 4, 4)
    for flag, n in (("False", 1), ("True", 2), ("0", 1), ("1", 2)):
        spec = check(parse_expr(f"z = max_pool2d(x, 2, return_indices={flag})"), {"x": img})
        out = spec.outputs["z"]
        assert (len(out) if isinstance(out, Multi) else 1) == n, flag


def test_dtype_rules_still_take_number_operands_as_types():
    """Operands (positional in the rule) stay types: promotion reads their kind."""
    xi = engine.tensor([1, 2, 3])
    for text, dtype in [
        ("z = clamp(x, 0.5)", engine.float32),
        ("z = x.clamp(min=0.5)", engine.float32),
        ("z = clamp(x, 0, 2)", engine.int64),
        ("z = pow(x, 2.0)", engine.float32),
        ("z = where(x > 1, x, 0.5)", engine.float32),
        ("z = add(x, 2, alpha=3)", engine.int64),
    ]:
        prog = parse_expr(text)
        assert check(prog, {"x": xi}).outputs["z"].dtype == dtype, text
        assert run(prog, {"x": xi})["z"].dtype == dtype, text
    with pytest.raises(ProgramError) as e:
        check(parse_expr("z = add(x, 2, alpha=0.5)"), {"x": xi})
    assert e.value.kind == "argument"
    assert "alpha must not be a floating point number" in str(e.value)


# -- a *sizes parameter given nothing -----------------------------------------------------------


def _torch_error(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - the exception is the result
        return e
    raise AssertionError("torch accepted the call")


@pytest.mark.parametrize("shape", [(2,), (), (2, 3)], ids=["1d", "0d", "2d"])
@pytest.mark.parametrize(
    "text", ["z = x.expand()", "z = expand(x)", "z = x.repeat()", "z = repeat(x)"]
)
def test_no_sizes_is_torchs_argument_error(text, shape):
    name = "expand" if "expand" in text else "repeat"
    theirs = _torch_error(lambda: getattr(torch.ones(shape), name)())
    assert isinstance(theirs, TypeError)
    with pytest.raises(ProgramError) as e:
        check(parse_expr(text), {"x": engine.ones(*shape, requires_grad=True)})
    assert e.value.kind == "argument"
    assert str(e.value).endswith(str(theirs)), (str(e.value), str(theirs))
    with pytest.raises(engine.SignatureError) as eager:  # and a TypeError, as torch's
        getattr(engine.ones(*shape), name)()
    assert str(eager.value) == str(theirs)


EMPTY = [
    ("z = x.expand(())", lambda m, t: t["x"].expand(())),
    ("z = x.repeat(())", lambda m, t: t["x"].repeat(())),
    ("z = x.expand([]) * 2 + x.repeat([])", lambda m, t: t["x"].expand([]) * 2 + t["x"].repeat([])),
    ("z = x.expand(3) + x.repeat(2, 1)", lambda m, t: t["x"].expand(3) + t["x"].repeat(2, 1)),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(("text", "torch_fn"), EMPTY, ids=[t for t, _ in EMPTY])
def test_explicit_empty_sizes_of_a_0d_tensor_still_run(text, torch_fn, dtype):
    _compare(text, torch_fn, {"x": np.array(1.5, dtype)})


@pytest.mark.parametrize("text", ["z = x.expand(())", "z = x.repeat(())"])
def test_explicit_empty_sizes_of_a_1d_tensor_are_torchs_shape_error(text):
    name = "expand" if "expand" in text else "repeat"
    theirs = _torch_error(lambda: getattr(torch.ones(2), name)(()))
    with pytest.raises(ProgramError) as e:
        check(parse_expr(text), {"x": engine.ones(2)})
    assert e.value.kind == "shape"
    # torch prints the tensor in its message's prefix (expand(torch.FloatTensor{[2]}, ...))
    tail = str(theirs).split("): ", 1)[-1]
    assert tail in str(e.value), (str(e.value), str(theirs))
