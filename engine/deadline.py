"""A time limit on a computation, checked between steps: `with deadline(10): ...`.

A web service must answer in bounded time, and a numpy call cannot be interrupted from
outside without killing the process. So the engine looks at the clock where a computation
can stop cleanly: between the equations of a program, between the nodes of a backward pass,
between the chunks of a chunked op (pooling windows, im2col bands) and between an
optimizer's parameters. Past the limit the check raises DeadlineExceeded; every op is
bounded by the cost checks, so the overshoot is at most one step's time.

Thread-local, like grad mode, because the service runs requests on a thread pool. While no
thread has a limit the check costs one list read (`armed`), so library use pays nothing."""

from __future__ import annotations

import threading
from time import monotonic

from .errors import DeadlineExceeded


class _State(threading.local):
    at: float | None = None  # monotonic time past which work stops; None: no limit
    seconds: float = 0.0  # the limit as given, for the message


_state = _State()

# How many threads have a limit set; while none has, `check` skips the thread-local.
armed = [0]
_lock = threading.Lock()


def check() -> None:
    """Raise DeadlineExceeded if this thread's limit has passed."""
    if armed[0]:
        at = _state.at
        if at is not None and monotonic() > at:
            raise DeadlineExceeded(_state.seconds)


def remaining() -> float | None:
    """Seconds left before this thread's limit (never negative); None without a limit."""
    at = _state.at
    return None if at is None else max(0.0, at - monotonic())


def _arm(at: float | None, seconds: float) -> None:
    was = _state.at is not None
    if was != (at is not None):
        with _lock:
            armed[0] += 1 if at is not None else -1
    _state.at = at
    _state.seconds = seconds


class deadline:  # noqa: N801 - a context manager, named like no_grad
    """Stop work in this thread once `seconds` have passed (None: no limit). Nested limits
    keep the earlier end."""

    def __init__(self, seconds: float | None):
        self.seconds = seconds

    def __enter__(self):
        self.prev = (_state.at, _state.seconds)
        if self.seconds is not None:
            at = monotonic() + self.seconds
            if self.prev[0] is None or at < self.prev[0]:
                _arm(at, self.seconds)
        return self

    def __exit__(self, *exc):
        _arm(*self.prev)
        return False


class apart:  # noqa: N801
    """Run a block under its own limit of `seconds` instead of the enclosing one, which is
    moved later by the time the block took: work that is not the request's own (replaying a
    session's journal before a step) neither eats the request's time nor runs unbounded."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def __enter__(self):
        self.prev = (_state.at, _state.seconds)
        self.started = monotonic()
        _arm(self.started + self.seconds, self.seconds)
        return self

    def __exit__(self, *exc):
        at, seconds = self.prev
        _arm(None if at is None else at + (monotonic() - self.started), seconds)
        return False
