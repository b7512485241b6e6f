"""The heavy lane: computations declared expensive run a few at a time on the machine.

Threads and workers do not make a 2-core machine faster: requests of seconds each running at
once take every core, and every cheap request behind them waits on the cores and the GIL (a
hostile mix made well-behaved p99 4-9x its clean value). So a computation whose checked cost
is over AUTOGRAD_HEAVY_FLOPS first takes one of AUTOGRAD_HEAVY_SLOTS slots, shared by every
worker of the data directory: slot i is an exclusive `flock` on `heavy-i.lock` there, which
the kernel releases if the worker dies. Cheap computations never wait. The wait ends at the
request's time limit (engine.deadline, which keeps running meanwhile) with 503 server-busy
and Retry-After. (Lowering the heavy threads' priority instead was tried: a preempted thread
holding the GIL then stalled its worker's event loop for seconds.)"""

from __future__ import annotations

import fcntl
import math
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from engine.deadline import remaining
from service.problems import PROBLEM_TYPES

POLL_SECONDS = 0.01  # how often a waiting computation tries the slots again


def on_event_loop() -> bool:
    """uvicorn runs a worker's event loop in its main thread; requests' work runs in others."""
    return threading.current_thread() is threading.main_thread()


class Lane:
    def __init__(self) -> None:
        self.configure(heavy_flops=100_000_000, slots=0, directory=Path("."))

    def configure(self, heavy_flops: int, slots: int, directory: Path) -> None:
        """Set at a worker's start from its settings (slots 0: no lane)."""
        self.heavy_flops = heavy_flops
        self.slots = slots
        self.files = [directory / f"heavy-{i}.lock" for i in range(slots)]

    def _claim(self) -> int | None:
        """A locked descriptor of a free slot, or None when all are taken."""
        for path in self.files:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                os.close(fd)
        return None

    @contextmanager
    def admitted(self, flops: int) -> Iterator[None]:
        """Run the block now if it is cheap, else once a slot is free."""
        if not self.files or flops <= self.heavy_flops or on_event_loop():
            yield  # (the event loop never waits: what runs there is small by construction)
            return
        wait = remaining()
        wait = 10.0 if wait is None else wait
        until = time.monotonic() + wait
        fd = self._claim()
        while fd is None and time.monotonic() < until:
            time.sleep(POLL_SECONDS)
            fd = self._claim()
        if fd is None:
            raise PROBLEM_TYPES["server-busy"].error(
                f"{self.slots} expensive computation(s) (over {self.heavy_flops} estimated "
                "floating-point operations, AUTOGRAD_HEAVY_FLOPS) are running on this server "
                "already and none finished within this request's time limit; retry later.",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
                flops=flops,
            )
        try:
            yield
        finally:
            os.close(fd)  # (closing the descriptor releases its lock)


LANE = Lane()
