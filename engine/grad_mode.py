"""Whether operations are recorded. Thread-local, as in torch, because the service runs
requests on a thread pool and one request's no_grad must not leak into another's."""

import functools
import inspect
import threading


class _State(threading.local):
    enabled = True  # each thread starts with recording on


_state = _State()

# How many threads have recording off. While none has, the hot paths skip reading the
# thread-local (a fifth of a small op's bookkeeping): `if off[0] and not _state.enabled`.
# A thread counts itself before it can run an op with recording off, so it always sees
# its own count; one that ends with recording off leaves the count up (the slow path).
off = [0]
_lock = threading.Lock()


def is_grad_enabled() -> bool:
    return _state.enabled


def _set(mode: bool) -> None:
    if _state.enabled != mode:
        with _lock:
            off[0] += -1 if mode else 1
    _state.enabled = mode


class _GradMode:
    mode: bool

    def __new__(cls, orig_func=None):
        self = super().__new__(cls)
        if callable(orig_func):  # `@no_grad` without parentheses, as torch allows
            return self(orig_func)
        return self

    def __enter__(self):
        self.prev = is_grad_enabled()
        _set(self.mode)
        return self

    def __exit__(self, *exc):
        _set(self.prev)
        return False

    def __call__(self, fn):
        return _decorate(fn, self.__class__)


class no_grad(_GradMode):  # noqa: N801 - torch's name
    """Context manager and decorator: operations inside are not recorded."""

    mode = False


class enable_grad(_GradMode):  # noqa: N801
    """Context manager and decorator: turn recording back on inside a no_grad block."""

    mode = True


class set_grad_enabled(_GradMode):  # noqa: N801
    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self.prev = is_grad_enabled()
        _set(self.mode)  # torch applies it on construction, so it also works as a function

    def __enter__(self):
        return self

    def __call__(self, fn):
        _set(self.prev)  # as a decorator it applies only inside the call, not from now on
        mode = self.mode
        return _decorate(fn, lambda: set_grad_enabled(mode))


def _decorate(fn, context):
    """fn run inside a fresh `context()`; for a generator function, each step of the
    generator runs inside it (as torch does), not just the call that creates it."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator(*args, **kwargs):
            with context():
                gen = fn(*args, **kwargs)
            return (yield from _stepwise(gen, context))

        return generator

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with context():
            return fn(*args, **kwargs)

    return wrapper


def _stepwise(gen, context):
    try:
        with context():
            response = gen.send(None)
        while True:
            try:
                request = yield response
            except GeneratorExit:
                with context():
                    gen.close()
                raise
            except BaseException as exc:  # noqa: BLE001 - forwarded into the generator
                with context():
                    response = gen.throw(exc)
            else:
                with context():
                    response = gen.send(request)
    except StopIteration as stop:
        return stop.value
