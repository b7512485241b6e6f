"""The generated fast paths (engine/fast: forward.py, backward.py)
give what the general ones give: `engine.autograd.grad` runs the general backward loop,
`.backward()` the compiled one."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import engine
from engine.fast import backward as compiled


@pytest.mark.parametrize(
    "number", [3, 2.5, 0.0, -0.0, float("nan"), float("inf"), 10**30, 2**24 + 1, 1e-40, True]
)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_operators_with_numbers_compute_as_numpy_does(number, dtype):
    a = np.array([1.0, -2.0], dtype=dtype)
    x = engine.tensor(a, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for got, want in (
            (x * number, a * number),
            (number * x, number * a),
            (x + number, a + number),
            (x - number, a - number),
            (x / number, a / number),
            (x**2 * number, a * a * number),
        ):
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got.detach().numpy(), want)
            got.sum().backward()


def _graph(x, y, n):
    """Chains longer than the direct-call depth, joined through multi-use nodes."""
    z = x * 1.5
    w = y
    for i in range(n):
        z = z * 0.9 + w if i % 7 == 0 else z * 1.01 - 0.1
        w = w + z * 0.01 if i % 11 == 0 else w
    return (z * w).sum() + (z**2).mean()


@pytest.mark.parametrize("n", [3, compiled.MAX_DEPTH + 5, 4 * compiled.MAX_DEPTH])
def test_backward_matches_the_general_loop(n):
    x = engine.tensor(np.linspace(-1, 1, 6), requires_grad=True)
    y = engine.tensor(np.linspace(2, 3, 6), requires_grad=True)
    want = engine.autograd.grad(_graph(x, y, n), [x, y])
    _graph(x, y, n).backward()
    np.testing.assert_allclose(x.grad.numpy(), want[0].numpy(), rtol=1e-12)
    np.testing.assert_allclose(y.grad.numpy(), want[1].numpy(), rtol=1e-12)


def test_retain_grad_inside_a_chain_and_a_second_backward():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2.0
    h.retain_grad()
    loss = (h**3).sum()
    loss.backward(retain_graph=True)
    assert h.grad.tolist() == [12.0, 48.0] and x.grad.tolist() == [24.0, 96.0]
    loss.backward()
    assert h.grad.tolist() == [24.0, 96.0] and x.grad.tolist() == [48.0, 192.0]
    with pytest.raises(engine.GradError, match="second time"):
        loss.backward()


def _records(x):
    """Whether each kind of path (operator, one-operand op, general apply) records."""
    return [
        (x * 2).requires_grad,
        (x**2).requires_grad,
        x.sum().requires_grad,
        engine.exp(x).requires_grad,
        engine.maximum(x, x).requires_grad,
    ]


def test_recording_follows_each_threads_grad_mode():
    import threading

    x = engine.tensor([1.0, 2.0], requires_grad=True)
    seen = {}
    inside, release = threading.Event(), threading.Event()

    def worker():
        with engine.no_grad():
            seen["worker"] = _records(x)
            inside.set()
            release.wait(5)
            seen["worker, later"] = _records(x)

    def leaves_it_off():
        engine.set_grad_enabled(False)  # as a function: this thread ends with it off
        seen["left off"] = _records(x)

    t = threading.Thread(target=worker)
    t.start()
    inside.wait(5)
    seen["main"] = _records(x)
    release.set()
    t.join()
    t = threading.Thread(target=leaves_it_off)
    t.start()
    t.join()
    seen["main, after"] = _records(x)
    with engine.no_grad():
        seen["main, no_grad"] = _records(x)
    assert seen == {
        "worker": [False] * 5,
        "worker, later": [False] * 5,
        "main": [True] * 5,
        "left off": [False] * 5,
        "main, after": [True] * 5,
        "main, no_grad": [False] * 5,
    }
