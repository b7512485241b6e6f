"""Training dropout draws a random mask torch cannot reproduce, so instead of comparing
values with torch (the registry cases cover only its deterministic settings) this checks
the mask's statistics, the scaling, the gradient (mask / (1 - p)), seeding and the graph."""

import numpy as np
import pytest
import torch

import engine

F = engine.nn.functional


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
@pytest.mark.parametrize("dtype", [engine.float32, engine.float64])
def test_mask_statistics_scaling_and_gradient(p, dtype):
    engine.manual_seed(0)
    x = engine.ones(200, 500, dtype=dtype, requires_grad=True)
    y = F.dropout(x, p)
    out = y.detach().numpy()
    assert out.dtype == dtype
    kept = out != 0
    n = kept.size
    # the kept fraction is Binomial(n, 1 - p): within 5 standard deviations
    assert abs(kept.mean() - (1 - p)) < 5 * np.sqrt(p * (1 - p) / n)
    np.testing.assert_allclose(out[kept], dtype.type(1) / dtype.type(1 - p))
    assert abs(out.mean() - 1) < 5 * np.sqrt(p / (1 - p) / n)  # unbiased: E[y] = x
    w = np.random.default_rng(1).standard_normal(out.shape).astype(dtype)
    (y * engine.tensor(w)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), w * (kept.astype(dtype) / dtype.type(1 - p)))


def test_seeded_and_fresh_masks():
    x = engine.randn(50, 40)
    engine.manual_seed(3)
    a = F.dropout(x, 0.5).numpy()
    b = F.dropout(x, 0.5).numpy()
    engine.manual_seed(3)
    c = F.dropout(x, 0.5).numpy()
    np.testing.assert_array_equal(a, c)
    assert not np.array_equal(a != 0, b != 0)


def test_graph_is_mul_by_a_constant_mask_as_torch():
    x = engine.randn(3, 4, requires_grad=True)
    t = torch.randn(3, 4, requires_grad=True)
    ours, theirs = F.dropout(x, 0.3).grad_fn, torch.nn.functional.dropout(t, 0.3).grad_fn
    assert type(ours).__name__ == type(theirs).__name__ == "MulBackward0"
    assert [type(n).__name__ for n, _ in ours.next_functions] == [
        type(n).__name__ for n, _ in theirs.next_functions
    ]  # (AccumulateGrad, None): the mask is a constant


def test_identity_when_not_training_or_p_zero_and_bad_p():
    x = engine.randn(3, requires_grad=True)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    for p in (-0.1, 1.5):
        with pytest.raises(engine.ArgumentError, match="dropout probability has to be between"):
            F.dropout(x, p)
