"""engine.nn.functional beyond the registry cases: second derivatives (VJPs written with
dual.py, so create_graph works) against torch, and the errors torch raises, with its text."""

import warnings

import numpy as np
import pytest
import torch

import engine

rng = np.random.default_rng(0)
X = rng.standard_normal((5, 4))
P = rng.uniform(0.1, 1, (5, 4))
P /= P.sum(1, keepdims=True)
LABELS = np.array([0, 3, 1, -1, 2])

SECOND_ORDER = {
    "softmax": lambda m, f, x: (f.softmax(x, 1) ** 2).sum(),
    "log_softmax": lambda m, f, x: (f.log_softmax(x, 0) ** 2).sum(),
    "cross_entropy": lambda m, f, x: f.cross_entropy(x * x, m.tensor(LABELS), ignore_index=-1),
    "ce_smooth": lambda m, f, x: f.cross_entropy(
        x * x, m.tensor(LABELS), label_smoothing=0.2, ignore_index=-1, reduction="sum"
    ),
    "ce_probs": lambda m, f, x: f.cross_entropy(x * x, m.tensor(P), label_smoothing=0.1),
    "mse": lambda m, f, x: f.mse_loss(x * x, m.tensor(P)),
    "bce_logits": lambda m, f, x: f.binary_cross_entropy_with_logits(
        x * x, m.tensor(P), pos_weight=m.tensor(np.array([0.5, 1.0, 2.0, 3.0]))
    ),
    "bce_logits_target": lambda m, f, x: f.binary_cross_entropy_with_logits(
        m.tensor(X), m.sigmoid(x), pos_weight=m.tensor(np.array([0.5, 1.0, 2.0, 3.0]))
    ),
    "linear": lambda m, f, x: m.tanh(f.linear(x, x * 0.5, m.tensor(np.ones(5)))).sum(),
    "linear_3d": lambda m, f, x: m.tanh(f.linear(x.reshape(1, 5, 4), x * 0.5)).sum(),
}


@pytest.mark.parametrize("name", list(SECOND_ORDER))
def test_second_derivatives_match_torch(name):
    v = rng.standard_normal(X.shape)

    def hvp(m):
        x = m.tensor(X.copy(), requires_grad=True)
        loss = SECOND_ORDER[name](m, m.nn.functional, x)
        (g,) = m.autograd.grad(loss, x, create_graph=True)
        (h,) = m.autograd.grad((g * m.tensor(v)).sum(), x)
        return g.detach().numpy(), h.numpy()

    (g1, h1), (g2, h2) = hvp(engine), hvp(torch)
    np.testing.assert_allclose(g1, g2, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h1, h2, rtol=1e-9, atol=1e-12)


def _raises(call):
    """torch's error message for call(torch, F) and ours for call(engine, F)."""
    with pytest.raises(Exception) as theirs:  # noqa: PT011 - torch raises several kinds
        call(torch, torch.nn.functional)
    with pytest.raises(engine.EngineError) as ours:
        call(engine, engine.nn.functional)
    return str(theirs.value), str(ours.value)


ERRORS = {
    "target_out_of_bounds": lambda m, f: f.cross_entropy(m.randn(3, 4), m.tensor([0, 5, 1])),
    "negative_target": lambda m, f: f.nll_loss(m.randn(3, 4), m.tensor([0, -1, 1])),
    "batch_mismatch": lambda m, f: f.cross_entropy(m.randn(3, 4), m.tensor([0, 1])),
    "bad_reduction": lambda m, f: f.mse_loss(m.randn(3), m.randn(3), reduction="avg"),
    "label_smoothing": lambda m, f: f.cross_entropy(
        m.randn(3, 4), m.tensor([0, 1, 2]), label_smoothing=1.5
    ),
    "float_class_target": lambda m, f: f.nll_loss(m.randn(3, 4), m.tensor([0.0, 1.0, 2.0])),
    "bce_size": lambda m, f: f.binary_cross_entropy_with_logits(m.randn(3, 4), m.rand(3)),
    "dropout_p": lambda m, f: f.dropout(m.randn(3), 1.5),
    "linear_mismatch": lambda m, f: f.linear(m.randn(3, 4), m.randn(5, 3)),
    "nll_weight": lambda m, f: f.nll_loss(m.randn(3, 4), m.tensor([0, 1, 2]), weight=m.rand(3)),
    "nd_target": lambda m, f: f.cross_entropy(m.randn(2, 4, 5), m.tensor(np.zeros((2, 4), int))),
    "softmax_dim": lambda m, f: f.softmax(m.randn(3, 4), 2),
    "probs_ignore_index": lambda m, f: f.cross_entropy(m.randn(3, 4), m.rand(3, 4), ignore_index=1),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_errors_carry_torchs_message(name):
    theirs, ours = _raises(ERRORS[name])
    assert theirs.split(" (")[0].rstrip(".") in ours


def test_mse_broadcast_warns_like_torch():
    with pytest.warns(UserWarning, match="different to the input size"):
        engine.nn.functional.mse_loss(engine.randn(3, 4), engine.randn(4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        engine.nn.functional.mse_loss(engine.randn(3, 4), engine.randn(3, 4))


def test_losses_are_stable_for_extreme_logits():
    f = engine.nn.functional
    x = engine.tensor([[1e4, -1e4, 0.0]], requires_grad=True)
    loss = f.cross_entropy(x, engine.tensor([1])) + f.binary_cross_entropy_with_logits(
        x, engine.tensor([[0.0, 1.0, 0.5]])
    )
    loss.backward()
    assert np.isfinite(loss.item()) and np.all(np.isfinite(x.grad.numpy()))
    np.testing.assert_allclose(loss.item(), 2e4 + (1e4 + 1e4 + np.log(2)) / 3, rtol=1e-6)
