"""Each client's request rate: a token bucket per client, in this worker process.

A bucket holds up to `burst` tokens and gains `rate` a second; a request takes one or is
refused. Kept in memory per worker, not in the store: a store round trip on every request
would cost more than the cheapest requests themselves (the seed's evaluate is ~0.2 ms), so a
deployment with W workers and R replicas lets a client make up to W x R x rate requests a
second; nginx's `limit_req` (deploy/nginx.conf) bounds the whole at the edge.

The answer's fields follow draft-ietf-httpapi-ratelimit-headers-09 (March 2025):
`RateLimit-Policy: "client";q=<burst>;w=<seconds to refill it>` and
`RateLimit: "client";r=<requests left>;t=<seconds until the bucket is full again>`.
"""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

MAX_CLIENTS = 100_000  # buckets kept; past it full ones are dropped (they hold nothing)
POLICY = "client"


@dataclass(frozen=True)
class Rate:
    per_second: float
    burst: int
    policy: str = field(init=False)  # the RateLimit-Policy field, the same on every answer

    def __post_init__(self) -> None:
        window = max(1, math.ceil(self.burst / self.per_second))
        object.__setattr__(self, "policy", f'"{POLICY}";q={self.burst};w={window}')

    @classmethod
    def of(cls, per_second: float, burst: int) -> "Rate | None":
        """None when there is no limit (a rate of 0); burst 0 is one second's worth."""
        if per_second <= 0:
            return None
        return cls(per_second, burst or max(1, math.ceil(per_second)))


class Verdict(NamedTuple):  # a tuple: made on every request, and cheaper than a dataclass
    allowed: bool
    remaining: int  # whole requests left
    reset: int  # seconds until the bucket is full again
    retry_after: int  # seconds until the next request is allowed (0 when allowed)

    def field(self) -> str:
        return f'"{POLICY}";r={self.remaining};t={self.reset}'


class Buckets:
    def __init__(
        self, clock: Callable[[], float] = time.monotonic, max_clients: int = MAX_CLIENTS
    ) -> None:
        self.clock, self.max_clients = clock, max_clients
        self._buckets: dict[str, list[float]] = {}  # client -> [tokens, when counted]

    def take(self, client: str, rate: Rate) -> Verdict:
        """One request of `client`'s: taken from its bucket if a token is there."""
        now = self.clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= self.max_clients:
                self._prune(now, rate)
            bucket = self._buckets[client] = [float(rate.burst), now]
        tokens = min(float(rate.burst), bucket[0] + (now - bucket[1]) * rate.per_second)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        bucket[0], bucket[1] = tokens, now
        reset = math.ceil((rate.burst - tokens) / rate.per_second)
        wait = 0 if allowed else max(1, math.ceil((1.0 - tokens) / rate.per_second))
        return Verdict(allowed, int(tokens), reset, wait)

    def _prune(self, now: float, rate: Rate) -> None:
        """Drop the buckets that have refilled (forgetting them changes nothing); if that
        frees too little (a flood of new addresses), drop them all: each client then starts
        with a full bucket again, which bounds this table's memory."""
        full = [c for c, (tokens, at) in self._buckets.items()
                if tokens + (now - at) * rate.per_second >= rate.burst]  # fmt: skip
        for client in full:
            del self._buckets[client]
        if len(self._buckets) > self.max_clients // 2:
            self._buckets.clear()
