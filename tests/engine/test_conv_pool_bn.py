"""conv2d, pooling and batch_norm beyond the registry cases (tests/engine/cases/conv.py):
batch-norm running statistics over several training steps, the in-place update, tie and
-inf handling of max pooling, higher derivatives, and torch's error messages."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import engine
from engine.errors import EngineError
from tests.float_ref import assert_float32_close

EF, TF = engine.nn.functional, torch.nn.functional


def _pair(x, grad=False):
    return engine.tensor(x.copy(), requires_grad=grad), torch.tensor(x.copy(), requires_grad=grad)


# -- batch norm's running statistics ---------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    ("shape", "momentum", "eps"),
    [
        ((4, 3, 5, 5), 0.1, 1e-5),
        ((6, 3), 0.3, 1e-3),
        ((2, 3, 7), 0.5, 1e-5),
        ((1, 3, 2, 2), 1.0, 1e-1),
    ],
)
def test_running_statistics_after_several_steps_equal_torchs(dtype, shape, momentum, eps):
    """Five training steps, then eval: float64 to rtol 1e-12; float32 judged against torch's
    float64 run of the same float32 values (tests/float_ref.py)."""
    rng = np.random.default_rng(0)
    c = shape[1]
    start = {
        "rm": np.zeros(c, dtype),
        "rv": np.ones(c, dtype),
        "w": rng.uniform(0.5, 2, c).astype(dtype),
        "b": rng.standard_normal(c).astype(dtype),
    }
    xs = [(rng.standard_normal(shape) * 3 + 2).astype(dtype) for _ in range(5)]
    x_eval = rng.standard_normal(shape).astype(dtype)

    def run(lib, F, wide=False):
        cast = (lambda a: a.astype(np.float64)) if wide else (lambda a: a)
        make = lambda a, grad=False: lib.tensor(cast(a).copy(), requires_grad=grad)  # noqa: E731
        rm, rv, w, b = (
            make(start["rm"]),
            make(start["rv"]),
            make(start["w"], True),
            make(start["b"], True),
        )
        seen = []
        for x in xs:
            tx = make(x, True)
            y = F.batch_norm(tx, rm, rv, w, b, training=True, momentum=momentum, eps=eps)
            (y * y).sum().backward()
            seen += [("output", y), ("input gradient", tx.grad)]
        seen += [("running_mean", rm), ("running_var", rv), ("weight grad", w.grad)]
        seen += [("bias grad", b.grad), ("eval", F.batch_norm(make(x_eval), rm, rv, w, b, eps=eps))]
        return seen

    ours, theirs = run(engine, EF), run(torch, TF)
    if dtype == np.float64:
        for (what, o), (_, t) in zip(ours, theirs, strict=True):
            np.testing.assert_allclose(_arr(o), _arr(t), rtol=1e-12, atol=1e-12, err_msg=what)
        return
    wide = run(torch, TF, wide=True)
    for (what, o), (_, t), (_, r) in zip(ours, theirs, wide, strict=True):
        assert_float32_close(o, t, r, what)


def _arr(t):
    return t.detach().numpy()


def test_running_statistics_update_in_place_and_only_in_training():
    x = engine.tensor(np.random.default_rng(1).standard_normal((4, 2, 3, 3)))
    rm, rv = engine.zeros(2, dtype=engine.float64), engine.ones(2, dtype=engine.float64)
    before_m, before_v = rm.numpy(), rv.numpy()  # the arrays, not copies
    EF.batch_norm(x, rm, rv)
    assert (rm.numpy() == 0).all() and (rv.numpy() == 1).all()
    EF.batch_norm(x, rm, rv, training=True, momentum=0.5)
    assert rm.numpy() is before_m and rv.numpy() is before_v
    xs = x.numpy()
    np.testing.assert_allclose(rm.numpy(), 0.5 * xs.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(
        rv.numpy(), 0.5 + 0.5 * xs.var(axis=(0, 2, 3), ddof=1), rtol=1e-12
    )  # the unbiased variance, as torch
    with engine.no_grad():  # under no_grad too, as torch's
        EF.batch_norm(x, rm, rv, training=True, momentum=1.0)
    np.testing.assert_allclose(rm.numpy(), xs.mean(axis=(0, 2, 3)), rtol=1e-12)


# -- max pooling: ties, -inf, NaN --------------------------------------------------------------


@pytest.mark.parametrize(
    "args", [(2,), (3, 1, 1), (3, 2, 1), (2, 1, 0, 2), (3, 2, 1, 1, True)], ids=str
)
def test_max_pool_ties_route_the_gradient_to_the_first_maximum(args):
    x = np.random.default_rng(2).integers(0, 3, (2, 3, 7, 7)).astype(np.float64)
    ex, tx = _pair(x, grad=True)
    (y, i), (ty, ti) = (
        EF.max_pool2d(ex, *args, return_indices=True),
        TF.max_pool2d(tx, *args, return_indices=True),
    )
    np.testing.assert_array_equal(i.numpy(), ti.numpy())
    g = np.random.default_rng(3).standard_normal(tuple(y.shape))
    (y * engine.tensor(g)).sum().backward()
    (ty * torch.tensor(g)).sum().backward()
    np.testing.assert_array_equal(ex.grad.numpy(), tx.grad.numpy())


def test_max_pool_windows_of_minus_infinity_and_nan_index_as_torch():
    x = np.full((1, 1, 5, 5), -np.inf)
    x[0, 0, 3, 3] = 1.0
    x[0, 0, 0, 4] = np.nan
    x[0, 0, 1, 3] = np.nan
    ey, ei = EF.max_pool2d(engine.tensor(x), 3, 2, 1, return_indices=True)
    ty, ti = TF.max_pool2d(torch.tensor(x), 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(ei.numpy(), ti.numpy())
    np.testing.assert_array_equal(ey.numpy(), ty.numpy())


# -- higher derivatives through the backward ops --------------------------------------------


def _third(lib, f, x, w):
    (gx,) = lib.autograd.grad((f(x, w) ** 3).sum(), x, create_graph=True)
    (gxx,) = lib.autograd.grad((gx * gx).sum(), w, create_graph=True)
    return lib.autograd.grad(gxx.sum(), x)[0]


@pytest.mark.parametrize(
    "kind",
    ["conv_s1", "conv_s2_groups", "max_pool", "avg_pool"],
)
def test_third_derivatives_equal_torchs(kind):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 4, 6, 6))
    w = (
        rng.standard_normal((4, 2, 3, 3))
        if kind != "conv_s1"
        else rng.standard_normal((3, 4, 3, 3))
    )

    def make(F):
        def f(x, w):
            if kind == "conv_s1":
                return F.conv2d(x, w, padding=1)
            if kind == "conv_s2_groups":
                return F.conv2d(x, w, stride=2, groups=2, dilation=(1, 2), padding=(1, 2))
            y = F.conv2d(x, w, padding=1, groups=2)
            return F.max_pool2d(y, 3, 2, 1) if kind == "max_pool" else F.avg_pool2d(y, 2, 1, 1)

        return f

    ours = _third(engine, make(EF), *_pair(x, True)[:1], _pair(w, True)[0])
    theirs = _third(torch, make(TF), *_pair(x, True)[1:], _pair(w, True)[1])
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-9, atol=1e-9)


# -- torch's messages ------------------------------------------------------------------------

X = np.zeros((2, 4, 9, 9))
W = np.zeros((4, 4, 3, 3))
BAD = [
    ("conv_channels", lambda F, m: F.conv2d(m(X[:, :3]), m(W))),
    ("conv_groups", lambda F, m: F.conv2d(m(X), m(W), groups=3)),
    ("conv_bias", lambda F, m: F.conv2d(m(X), m(W), m(np.zeros(3)))),
    ("conv_input_dims", lambda F, m: F.conv2d(m(X[0, 0]), m(W))),
    ("conv_weight_dims", lambda F, m: F.conv2d(m(X), m(W[0, 0]))),
    ("conv_kernel_too_big", lambda F, m: F.conv2d(m(X[:, :, :2, :2]), m(W))),
    ("conv_stride", lambda F, m: F.conv2d(m(X), m(W), stride=0)),
    ("conv_padding", lambda F, m: F.conv2d(m(X), m(W), padding=-1)),
    ("conv_dilation", lambda F, m: F.conv2d(m(X), m(W), dilation=0)),
    ("conv_groups_zero", lambda F, m: F.conv2d(m(X), m(W), groups=0)),
    ("conv_stride_len", lambda F, m: F.conv2d(m(X), m(W), stride=(1, 2, 3))),
    ("conv_same_strided", lambda F, m: F.conv2d(m(X), m(W), stride=2, padding="same")),
    ("conv_bad_string", lambda F, m: F.conv2d(m(X), m(W), padding="full")),
    ("conv_bias_dtype", lambda F, m: F.conv2d(m(X), m(W), m(np.zeros(4, np.float32)))),
    ("mp_dims", lambda F, m: F.max_pool2d(m(X[0, 0]), 2)),
    ("mp_pad", lambda F, m: F.max_pool2d(m(X), 3, padding=2)),
    ("mp_small", lambda F, m: F.max_pool2d(m(X), 10)),
    ("mp_kernel", lambda F, m: F.max_pool2d(m(X), 0, 1)),
    ("mp_stride0", lambda F, m: F.max_pool2d(m(X), 2, 0)),
    ("mp_dilation", lambda F, m: F.max_pool2d(m(X), 2, dilation=0)),
    ("mp_neg_pad", lambda F, m: F.max_pool2d(m(X), 2, padding=-1)),
    ("mp_kernel_len", lambda F, m: F.max_pool2d(m(X), (1, 2, 3))),
    ("mp_stride_len", lambda F, m: F.max_pool2d(m(X), 2, (1, 2, 3))),
    ("mp_dilated_pad", lambda F, m: F.max_pool2d(m(X), 2, 1, 2, 3)),
    ("ap_pad", lambda F, m: F.avg_pool2d(m(X), 3, padding=2)),
    ("ap_small", lambda F, m: F.avg_pool2d(m(X), 10)),
    ("ap_divisor", lambda F, m: F.avg_pool2d(m(X), 2, divisor_override=0)),
    ("ap_5d", lambda F, m: F.avg_pool2d(m(X[None]), 2)),
    ("aap_dims", lambda F, m: F.adaptive_avg_pool2d(m(X[0, 0]), 2)),
    ("aap_len", lambda F, m: F.adaptive_avg_pool2d(m(X), (1, 2, 3))),
    ("aap_negative", lambda F, m: F.adaptive_avg_pool2d(m(X), -1)),
    ("aap_empty", lambda F, m: F.adaptive_avg_pool2d(m(np.zeros((1, 2, 0, 3))), 2)),
    ("bn_one_value", lambda F, m: F.batch_norm(m(X[:1, :, :1, :1]), None, None, training=True)),
    ("bn_running_mean", lambda F, m: F.batch_norm(m(X), m(np.zeros(3)), m(np.ones(4)))),
    ("bn_running_var", lambda F, m: F.batch_norm(m(X), m(np.zeros(4)), m(np.ones(3)))),
    ("bn_weight", lambda F, m: F.batch_norm(m(X), None, None, m(np.ones(2)), training=True)),
    ("bn_eps", lambda F, m: F.batch_norm(m(X), None, None, training=True, eps=0)),
    ("bn_param_dtype", lambda F, m: F.batch_norm(m(X), m(np.zeros(4, np.float32)), m(np.ones(4)))),
    ("bn_eval_without_stats", lambda F, m: F.batch_norm(m(X), None, None)),
    ("bn_mixed_dtype", lambda F, m: F.batch_norm(m(X), None, None, m(np.ones(4, np.float32)),
                                                 training=True)),
]  # fmt: skip


@pytest.mark.parametrize("bad", BAD, ids=[b[0] for b in BAD])
def test_errors_say_what_torch_says(bad):
    _, call = bad
    with pytest.raises(Exception) as theirs:
        call(TF, torch.tensor)
    with pytest.raises(EngineError) as ours:
        call(EF, engine.tensor)
    assert str(ours.value).splitlines()[0] == str(theirs.value).splitlines()[0]


# -- an empty batch, as torch allows -----------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda F, x, w: F.conv2d(x, w, padding=1),
        lambda F, x, w: F.conv2d(x, w[:, :1], stride=2, groups=3),
        lambda F, x, w: F.max_pool2d(x, 3, 2, 1),
        lambda F, x, w: F.avg_pool2d(x, 2, ceil_mode=True),
        lambda F, x, w: F.adaptive_avg_pool2d(x, (2, 3)),
    ],
    ids=["conv", "conv_groups", "max_pool", "avg_pool", "adaptive"],
)
def test_an_empty_batch_gives_torchs_shapes(call):
    x, w = np.zeros((0, 3, 7, 7)), np.ones((6, 3, 3, 3))
    shapes = []
    for lib, F in ((engine, EF), (torch, TF)):
        ex, ew = lib.tensor(x, requires_grad=True), lib.tensor(w, requires_grad=True)
        y = call(F, ex, ew)
        y.sum().backward()
        shapes.append((tuple(y.shape), tuple(ex.grad.shape)))
    assert shapes[0] == shapes[1]


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_of_an_empty_batch_leaves_the_running_statistics(training):
    got = []
    for lib, F in ((engine, EF), (torch, TF)):
        x = lib.tensor(np.zeros((0, 3, 4, 4)), requires_grad=True)
        w = lib.tensor(np.ones(3), requires_grad=True)
        rm, rv = lib.tensor(np.full(3, 0.5)), lib.tensor(np.full(3, 2.0))
        y = F.batch_norm(x, rm, rv, w, None, training=training)
        (y.sum() + 0 * w.sum()).backward()
        got.append((tuple(y.shape), tuple(x.grad.shape), w.grad.tolist(), rm.tolist(), rv.tolist()))
    assert got[0] == got[1]
