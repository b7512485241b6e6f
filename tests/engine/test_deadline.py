"""engine.deadline: a computation stops at the next step boundary once its time is up —
between program equations, backward nodes (both paths) and the bands of chunked ops —
and nothing changes for a thread without a limit."""

import threading
import time

import numpy as np
import pytest

import engine
import engine.fast
from engine.deadline import apart, armed, check, deadline, remaining
from engine.errors import DeadlineExceeded
from engine.program.expr import parse_expr
from engine.program.run import run

PATHS = [engine.fast.reference, engine.fast.fast]


def _stops_within(seconds, limit, work):
    """Run work() under deadline(limit); it must raise DeadlineExceeded within `seconds`."""
    started = time.perf_counter()
    with pytest.raises(DeadlineExceeded) as caught, deadline(limit):
        work()
    took = time.perf_counter() - started
    assert took < seconds, f"stopped after {took:.2f} s, limit {limit} s"
    assert f"{limit:g} s" in str(caught.value)
    return took


def test_a_program_stops_between_equations():
    # 4,000 matmuls of 200x200: about 10 s of work; stopped a fraction of a second in.
    text = "y = x @ x\n" + "y = y @ x / 200\n" * 4000
    program = parse_expr(text)
    x = engine.randn(200, 200)
    took = _stops_within(1.0, 0.2, lambda: run(program, {"x": x}))
    assert took >= 0.2


@pytest.mark.parametrize("path", PATHS, ids=["reference", "fast"])
def test_a_backward_pass_stops_between_nodes(path):
    with path():
        x = engine.randn(400_000, requires_grad=True)
        y = x
        for _ in range(3000):
            y = y * 1.0001 + 0.5
        loss = y.sum()
        took = _stops_within(1.0, 0.05, loss.backward)
        assert took >= 0.05
        assert x.grad is None  # the pass never reached the leaf


def test_pooling_stops_between_window_bands():
    # The 112-byte request: kernel 150 on 300x300, 74 bands, about 1.5 s.
    x = engine.ones(1, 1, 300, 300)
    _stops_within(0.6, 0.1, lambda: engine.nn.functional.max_pool2d(x, 150, 1))


def test_convolution_stops_between_im2col_bands():
    x = engine.ones(1, 1, 300, 300)
    w = engine.ones(1, 1, 150, 150)
    _stops_within(0.8, 0.1, lambda: engine.nn.functional.conv2d(x, w))


def test_work_within_the_limit_is_untouched():
    x = engine.randn(3, 4, requires_grad=True)
    with deadline(30):
        assert 0 < remaining() <= 30
        (x * x).sum().backward()
    assert remaining() is None
    np.testing.assert_array_equal(x.grad.numpy(), 2 * x.detach().numpy())


def test_nested_limits_keep_the_earlier_end_and_restore():
    with deadline(30):
        with deadline(100):
            assert remaining() <= 30
        with deadline(0.01):
            time.sleep(0.02)
            with pytest.raises(DeadlineExceeded):
                check()
        check()  # the outer limit is back
        assert 29 < remaining() <= 30
    assert armed[0] == 0
    check()


def test_work_apart_has_its_own_limit_and_moves_the_enclosing_one():
    with deadline(0.2):
        with apart(5.0):
            time.sleep(0.3)  # past the enclosing limit, within its own
            check()
        check()  # the enclosing limit moved later by the 0.3 s spent apart
        assert 0.1 < remaining() <= 0.2
        with apart(0.01):
            time.sleep(0.02)
            with pytest.raises(DeadlineExceeded):
                check()


def test_a_limit_belongs_to_its_thread():
    seen = []

    def other():
        time.sleep(0.05)
        check()  # the main thread's expired limit is not this thread's
        seen.append(remaining())

    with deadline(0.01):
        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert seen == [None]
