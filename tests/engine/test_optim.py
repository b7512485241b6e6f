"""engine.optim against torch.optim 2.13: a 5-8-4 MLP with identical initial weights trained
for 20 steps must end with the same parameters, for every SGD configuration torch accepts,
Adam, AdamW and AMSGrad; plus param groups, gradient accumulation, state_dict round trips and
clip_grad_norm_. float64 results equal torch's to rtol 1e-10; a float32 result is judged by
its distance from torch's float64 run of the same float32 start, next to torch's own float32
distance (tests/float_ref.py), so no BLAS kernel's summation order decides the outcome."""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest
import torch

import engine
from tests.float_ref import assert_float32_close

TOL64 = {"rtol": 1e-10, "atol": 1e-12}
DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
SHAPES = [(8, 5), (8,), (4, 8), (4,)]


def _init(dtype, seed=0, compute=None):
    """Weights and data drawn in `dtype`; with `compute`, those same values cast to it (the
    float64 reference of a float32 run starts where the float32 run starts)."""
    rng = np.random.default_rng(seed)
    weights = [(rng.standard_normal(s) * 0.5).astype(dtype) for s in SHAPES]
    x = rng.standard_normal((16, 5)).astype(dtype)
    y = rng.integers(0, 4, 16)
    if compute is not None:
        weights, x = [w.astype(compute) for w in weights], x.astype(compute)
    return weights, x, y


def _loss(m, params, x, y, kind="ce"):
    w1, b1, w2, b2 = params
    f = m.nn.functional
    h = m.tanh(f.linear(m.tensor(x), w1, b1))
    out = f.linear(h, w2, b2)
    if kind == "ce":
        return f.cross_entropy(out, m.tensor(y))
    target = m.tensor(np.eye(4, dtype=x.dtype)[y])
    return f.mse_loss(m.relu(out), target)


def _leaves(m, weights):
    return [m.tensor(w.copy(), requires_grad=True) for w in weights]


def _train(m, make, dtype, steps=20, kind="ce", seed=0, compute=None):
    weights, x, y = _init(dtype, seed, compute)
    params = _leaves(m, weights)
    opt = make(m, params)
    for _ in range(steps):
        opt.zero_grad()
        _loss(m, params, x, y, kind).backward()
        opt.step()
    return [p.detach().numpy().copy() for p in params], opt


def _assert_same(ours, theirs, dtype, reference=None):
    """Equal to torch's results: to rtol 1e-10 in float64; in float32, judged against torch's
    float64 `reference` run (see tests/float_ref.py)."""
    if dtype is np.float32:
        for i, (a, b, r) in enumerate(zip(ours, theirs, reference, strict=True)):
            assert_float32_close(a, b, r, f"result {i}")
        return
    for a, b in zip(ours, theirs, strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(a, b, **TOL64)


def _compare(make, dtype, **kw):
    ours, _ = _train(engine, make, dtype, **kw)
    theirs, _ = _train(torch, make, dtype, **kw)
    reference = (
        _train(torch, make, dtype, compute=np.float64, **kw)[0] if dtype == np.float32 else None
    )
    _assert_same(ours, theirs, dtype, reference)


# -- SGD: every configuration of the grid torch accepts --------------------------------------

GRID = list(
    itertools.product(
        (0.0, 0.9),  # momentum
        (0.0, 0.3),  # dampening
        (False, True),  # nesterov
        (0.0, 0.05),  # weight_decay
        (False, True),  # maximize
    )
)


def _sgd(momentum, dampening, nesterov, weight_decay, maximize, lr=0.1):
    kw = dict(
        lr=lr,
        momentum=momentum,
        dampening=dampening,
        nesterov=nesterov,
        weight_decay=weight_decay,
        maximize=maximize,
    )
    return lambda m, params: m.optim.SGD(params, **kw)


def _torch_rejects(make):
    try:
        make(torch, [torch.zeros(1, requires_grad=True)])
    except ValueError as err:
        return str(err)
    return None


@DTYPES
@pytest.mark.parametrize(
    "config", GRID, ids=["m{}-d{}-n{:d}-wd{}-max{:d}".format(*c) for c in GRID]
)
def test_sgd_grid_matches_torch(config, dtype):
    make = _sgd(*config)
    rejected = _torch_rejects(make)
    if rejected is not None:
        with pytest.raises(engine.ArgumentError) as err:
            make(engine, [engine.zeros(1, requires_grad=True)])
        assert rejected in str(err.value)
        return
    _compare(make, dtype)


def test_sgd_grid_has_rejected_and_accepted_configs():
    rejected = [c for c in GRID if _torch_rejects(_sgd(*c))]
    assert 0 < len(rejected) < len(GRID)  # nesterov without momentum, or with dampening


@pytest.mark.parametrize(
    "kw",
    [
        {"lr": -0.1},
        {"lr": 0.1, "momentum": -0.5},
        {"lr": 0.1, "weight_decay": -1.0},
        {"lr": 0.1, "nesterov": True},
        {"lr": 0.1, "momentum": 0.9, "dampening": 0.1, "nesterov": True},
    ],
)
def test_sgd_rejects_what_torch_rejects(kw):
    with pytest.raises(ValueError) as theirs:
        torch.optim.SGD([torch.zeros(1, requires_grad=True)], **kw)
    with pytest.raises(engine.ArgumentError) as ours:
        engine.optim.SGD([engine.zeros(1, requires_grad=True)], **kw)
    assert str(theirs.value) in str(ours.value)


def test_sgd_mse_relu_model():
    _compare(_sgd(0.9, 0.0, True, 0.01, False), np.float32, kind="mse")


# -- Adam, AdamW, AMSGrad -------------------------------------------------------------------

ADAM = {
    "adam": ("Adam", {"lr": 0.01}),
    "adam_wd": ("Adam", {"lr": 0.01, "weight_decay": 0.1}),
    "adam_max": ("Adam", {"lr": 0.01, "maximize": True}),
    "adam_betas": ("Adam", {"lr": 0.01, "betas": (0.3, 0.8), "eps": 1e-6}),
    "amsgrad": ("Adam", {"lr": 0.01, "amsgrad": True}),
    "amsgrad_wd": ("Adam", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1}),
    "amsgrad_max": ("Adam", {"lr": 0.01, "amsgrad": True, "maximize": True}),
    "adam_decoupled": ("Adam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    "adamw": ("AdamW", {"lr": 0.01}),
    "adamw_wd": ("AdamW", {"lr": 0.01, "weight_decay": 0.5}),
    "adamw_amsgrad": ("AdamW", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
    "adamw_amsgrad_max": ("AdamW", {"lr": 0.01, "amsgrad": True, "maximize": True}),
}


@DTYPES
@pytest.mark.parametrize("name", list(ADAM))
def test_adam_family_matches_torch(name, dtype):
    cls, kw = ADAM[name]
    _compare(lambda m, params: getattr(m.optim, cls)(params, **kw), dtype)


@pytest.mark.parametrize(
    "kw",
    [
        {"lr": -1.0},
        {"eps": -1e-8},
        {"betas": (1.0, 0.999)},
        {"betas": (0.9, -0.1)},
        {"weight_decay": -0.1},
        {"betas": (0, 0.999)},
    ],
)
def test_adam_rejects_what_torch_rejects(kw):
    with pytest.raises(ValueError) as theirs:
        torch.optim.Adam([torch.zeros(1, requires_grad=True)], **kw)
    with pytest.raises(engine.ArgumentError) as ours:
        engine.optim.Adam([engine.zeros(1, requires_grad=True)], **kw)
    assert str(theirs.value) in str(ours.value)


def test_amsgrad_state_keeps_max_of_raw_second_moment():
    _, opt = _train(engine, lambda m, p: m.optim.Adam(p, lr=0.01, amsgrad=True), np.float64)
    for state in opt.state.values():
        assert set(state) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
        assert np.all(state["max_exp_avg_sq"].numpy() >= state["exp_avg_sq"].numpy())


# -- groups, accumulation, skipping, zero_grad ----------------------------------------------


def _grouped(m, params):
    groups = [{"params": params[:2], "lr": 0.05}, {"params": params[2:], "momentum": 0.5}]
    return m.optim.SGD(groups, lr=0.2, momentum=0.9)


@DTYPES
def test_param_groups_with_their_own_options(dtype):
    _compare(_grouped, dtype)
    _, opt = _train(engine, _grouped, dtype, steps=1)
    assert [g["lr"] for g in opt.param_groups] == [0.05, 0.2]
    assert [g["momentum"] for g in opt.param_groups] == [0.9, 0.5]


def test_add_param_group_and_duplicate_parameters():
    a, b = engine.zeros(2, requires_grad=True), engine.zeros(3, requires_grad=True)
    opt = engine.optim.Adam([a], lr=0.1)
    opt.add_param_group({"params": b, "lr": 0.5})
    assert opt.param_groups[1]["lr"] == 0.5 and opt.param_groups[1]["betas"] == (0.9, 0.999)
    with pytest.raises(engine.ArgumentError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(engine.ArgumentError, match="empty parameter list"):
        engine.optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="iterable of Tensors"):
        engine.optim.SGD(a, lr=0.1)
    with pytest.raises(engine.ArgumentError, match="non-leaf"):
        engine.optim.SGD([a * 2], lr=0.1)


@DTYPES
def test_gradient_accumulation(dtype):
    def run(m, compute=None):
        weights, x, y = _init(dtype, compute=compute)
        params = _leaves(m, weights)
        opt = m.optim.SGD(params, lr=0.1, momentum=0.9)
        for _ in range(5):
            opt.zero_grad()
            for half in (slice(0, 8), slice(8, 16)):
                (_loss(m, params, x[half], y[half]) / 2).backward()
            opt.step()
        return [p.detach().numpy() for p in params]

    _assert_same(run(engine), run(torch), dtype, run(torch, np.float64))


def test_parameters_without_grad_are_skipped():
    def run(m, cls):
        weights, x, y = _init(np.float64)
        params = _leaves(m, weights)
        unused = m.tensor(np.ones(3), requires_grad=True)
        opt = getattr(m.optim, cls)([*params, unused], lr=0.1, weight_decay=0.1)
        for _ in range(3):
            opt.zero_grad()
            _loss(m, params, x, y).backward()
            opt.step()
        return unused.detach().numpy(), len(opt.state)

    for cls in ("SGD", "Adam", "AdamW"):
        ours, theirs = run(engine, cls), run(torch, cls)
        np.testing.assert_array_equal(ours[0], np.ones(3))
        assert ours[1] == theirs[1]


def test_zero_grad():
    p = engine.tensor([1.0, 2.0], requires_grad=True)
    opt = engine.optim.SGD([p], lr=0.1)
    (p * p).sum().backward()
    old = p.grad._a
    opt.zero_grad(set_to_none=False)
    assert p.grad is not None and p.grad._a is not old
    np.testing.assert_array_equal(p.grad.numpy(), [0.0, 0.0])
    np.testing.assert_array_equal(old, [2.0, 4.0])  # the old array was not written
    opt.zero_grad()
    assert p.grad is None


def test_step_updates_parameter_array_in_place_and_returns_closure_loss():
    p = engine.tensor([1.0, 2.0], requires_grad=True)
    arr = p._a
    opt = engine.optim.SGD([p], lr=0.5)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == 5.0 and p._a is arr
    np.testing.assert_array_equal(p.detach().numpy(), [0.0, 0.0])
    assert p.grad_fn is None and p.requires_grad


# -- state_dict ------------------------------------------------------------------------------

STATEFUL = {
    "sgd": lambda m, p: m.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
    "adam": lambda m, p: m.optim.Adam(p, lr=0.01, amsgrad=True),
    "adamw_groups": lambda m, p: m.optim.AdamW(
        [{"params": p[:2]}, {"params": p[2:], "lr": 0.003}], lr=0.01
    ),
}


def _plain(value):
    if isinstance(value, (engine.Tensor, torch.Tensor)):
        return np.asarray(value.detach().numpy())
    return value


@pytest.mark.parametrize("name", list(STATEFUL))
def test_state_dict_layout_matches_torch(name):
    _, ours = _train(engine, STATEFUL[name], np.float64, steps=3)
    _, theirs = _train(torch, STATEFUL[name], np.float64, steps=3)
    a, b = ours.state_dict(), theirs.state_dict()
    assert a.keys() == b.keys() == {"state", "param_groups"}
    assert a["param_groups"] == b["param_groups"]
    assert a["state"].keys() == b["state"].keys()
    for i in b["state"]:
        assert a["state"][i].keys() == b["state"][i].keys()
        for k, v in b["state"][i].items():
            mine = _plain(a["state"][i][k])
            assert mine.dtype == _plain(v).dtype, k
            np.testing.assert_allclose(mine, _plain(v), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", list(STATEFUL))
def test_state_dict_round_trip_continues_identically(name):
    make = STATEFUL[name]
    weights, x, y = _init(np.float32)
    params = _leaves(engine, weights)
    opt = make(engine, params)

    def steps(opt, params, n):
        for _ in range(n):
            opt.zero_grad()
            _loss(engine, params, x, y).backward()
            opt.step()

    steps(opt, params, 10)
    saved = copy.deepcopy(opt.state_dict())
    clone = _leaves(engine, [p.detach().numpy() for p in params])
    resumed = make(engine, clone)
    resumed.load_state_dict(saved)
    steps(opt, params, 10)
    steps(resumed, clone, 10)
    for p, q in zip(params, clone, strict=True):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())
    theirs, _ = _train(torch, make, np.float32)
    reference, _ = _train(torch, make, np.float32, compute=np.float64)
    _assert_same([p.detach().numpy() for p in params], theirs, np.float32, reference)


def test_load_state_dict_checks_groups():
    a = engine.zeros(2, requires_grad=True)
    opt = engine.optim.SGD([a], lr=0.1)
    two = engine.optim.SGD([{"params": [a]}, {"params": [engine.zeros(1, requires_grad=True)]}])
    with pytest.raises(engine.ArgumentError, match="different number of parameter groups"):
        opt.load_state_dict(two.state_dict())
    wide = engine.optim.SGD([a, engine.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(engine.ArgumentError, match="doesn't match the size"):
        opt.load_state_dict(wide.state_dict())


# -- clip_grad_norm_ -------------------------------------------------------------------------


@DTYPES
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3, float("inf")])
@pytest.mark.parametrize("max_norm", [0.1, 100.0])
def test_clip_grad_norm_matches_torch(norm_type, max_norm, dtype):
    def run(m, compute=None):
        weights, x, y = _init(dtype, compute=compute)
        params = _leaves(m, weights)
        _loss(m, params, x, y).backward()
        total = m.nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm_type)
        return total, [p.grad.numpy() for p in params]

    (ours, ogr), (theirs, tgr) = run(engine), run(torch)
    (ref, rgr) = run(torch, np.float64)
    assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch.")
    _assert_same([ours.numpy(), *ogr], [theirs.numpy(), *tgr], dtype, [ref.numpy(), *rgr])


def test_clip_grad_norm_edge_cases():
    p = engine.tensor([3.0, 4.0], requires_grad=True)
    assert engine.nn.utils.clip_grad_norm_([p], 1.0).item() == 0.0  # no gradients yet
    (p * p).sum().backward()
    old = p.grad._a
    total = engine.nn.utils.clip_grad_norm_(p, 1.0)
    np.testing.assert_allclose(total.item(), 10.0)
    np.testing.assert_allclose(p.grad.numpy(), [0.6, 0.8], rtol=1e-6)
    np.testing.assert_array_equal(old, [6.0, 8.0])  # the gradient array was not written
    p.grad = engine.tensor([float("nan"), 1.0])
    with pytest.raises(engine.GradError, match="non-finite"):
        engine.nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
