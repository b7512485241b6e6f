"""The heavy lane: computations declared expensive run a few at a time in each worker.

Threads do not make a 2-core machine faster: four requests of seconds each running at once
in a worker take all its CPU, and every cheap request behind them waits on the cores and the
GIL (a hostile mix made well-behaved p99 4-9x its clean value). So a computation whose
checked cost is over AUTOGRAD_HEAVY_FLOPS waits for one of AUTOGRAD_HEAVY_SLOTS slots; cheap
ones never wait. The wait ends at the request's time limit (engine.deadline, which keeps
running meanwhile) with 503 server-busy and Retry-After."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from engine.deadline import remaining
from service.problems import PROBLEM_TYPES


class Lane:
    def __init__(self) -> None:
        self.configure(heavy_flops=100_000_000, slots=1)

    def configure(self, heavy_flops: int, slots: int) -> None:
        """Set at a worker's start from its settings (slots 0: no lane)."""
        self.heavy_flops = heavy_flops
        self.slots = slots
        self._free = threading.BoundedSemaphore(slots) if slots else None

    @contextmanager
    def admitted(self, flops: int) -> Iterator[None]:
        """Run the block now if it is cheap, else once a slot is free."""
        free = self._free
        if free is None or flops <= self.heavy_flops:
            yield
            return
        wait = remaining()
        if not free.acquire(timeout=10.0 if wait is None else wait):
            raise PROBLEM_TYPES["server-busy"].error(
                f"This worker is running {self.slots} expensive computation(s) already "
                f"(over {self.heavy_flops} estimated floating-point operations, "
                "AUTOGRAD_HEAVY_FLOPS) and none finished within this request's time limit; "
                "retry later.",
                headers={"Retry-After": str(max(1, math.ceil(wait or 10.0)))},
                flops=flops,
            )
        try:
            yield
        finally:
            free.release()


LANE = Lane()
