"""Prometheus metrics: what `GET /metrics` answers.

- `autograd_http_requests_total` and `autograd_http_request_duration_seconds`, by method,
  route template (`/v1/sessions/{session_id}/train`, never the raw path, so that ids do not
  multiply the series; `unmatched` for paths no route serves) and status;
- `autograd_engine_seconds` by endpoint: the computation alone (the engine's forward,
  backward and optimizer work), without HTTP parsing, rendering or the store;
- `autograd_store_seconds` by store operation: every call of the session store;
- `autograd_live_sessions` and `autograd_store_up`, read from the store at scrape time, so
  they are the shared store's figures whichever worker or replica answers the scrape.

Several worker processes: counters and histograms live in files under
PROMETHEUS_MULTIPROC_DIR (prometheus-client's multiprocess mode), which `autograd-service
serve --workers N` creates empty at start, so any worker's scrape sums them all. The mode is
chosen when prometheus-client is first imported, so the variable must be set before: the CLI
sets it for the workers it starts.
"""

import functools
import os
import time
from collections.abc import Callable, Iterator
from typing import Any, ParamSpec, TypeVar

import prometheus_client
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = prometheus_client.CONTENT_TYPE_LATEST  # the text format
UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# `_created` series say when a counter was made: noise here, and absent in multiprocess mode.
prometheus_client.disable_created_metrics()

MULTIPROC_DIR = os.environ.get(MULTIPROC_ENV)
"""Fixed at import, as prometheus-client fixes its storage at import."""

REGISTRY = CollectorRegistry()
"""The service's metrics; not prometheus-client's global registry, which libraries share."""
if MULTIPROC_DIR is None:  # a scrape of one process may describe that process
    ProcessCollector(registry=REGISTRY)

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_STORE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                  0.5, 1, 5)  # fmt: skip

REQUESTS = Counter(
    "autograd_http_requests_total",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "autograd_http_request_duration_seconds",
    "Time from the request's arrival to the end of its answer, by method, route template "
    "and status.",
    ["method", "route", "status"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
ENGINE = Histogram(
    "autograd_engine_seconds",
    "Time computing in the engine (forward, backward, optimizer), by endpoint.",
    ["endpoint"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
STORE = Histogram(
    "autograd_store_seconds",
    "Latency of session store calls, by operation (failed calls included).",
    ["operation"],
    buckets=_STORE_BUCKETS,
    registry=REGISTRY,
)

_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def observe_request(method: str, route: str | None, status: int, seconds: float) -> None:
    """Count one answered request. Label sets are few (routes x methods x statuses), so their
    children are cached: `.labels()` takes a lock and builds a tuple every call."""
    key = (method if method in METHODS else "OTHER", route or UNMATCHED, status)
    children = _children.get(key)
    if children is None:
        labels = (key[0], key[1], str(status))
        children = _children[key] = (REQUESTS.labels(*labels), LATENCY.labels(*labels))
    children[0].inc()
    children[1].observe(seconds)


P = ParamSpec("P")
R = TypeVar("R")


def engine_time(endpoint: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator: the function's wall time goes to `autograd_engine_seconds{endpoint}`."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        child = ENGINE.labels(endpoint)

        @functools.wraps(fn)
        def timed(*args: P.args, **kwargs: P.kwargs) -> R:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                child.observe(time.perf_counter() - start)

        return timed

    return decorate


class TimedStore:
    """A session store whose every call is timed into `autograd_store_seconds`; the rest of
    the service sees the same `SessionStore` interface."""

    OPERATIONS = ("create", "get", "get_header", "get_meta", "get_arrays", "commit", "touch",
                  "delete", "count", "ids", "get_response", "save_response", "expire")  # fmt: skip

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        for name in self.OPERATIONS:
            setattr(self, name, self._timed(name, getattr(inner, name)))

    @staticmethod
    def _timed(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        child = STORE.labels(name)

        @functools.wraps(method)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                child.observe(time.perf_counter() - start)

        return timed

    def lock(self, session_id: str) -> Any:
        return self.inner.lock(session_id)

    def forget(self, session_id: str) -> None:
        self.inner.forget(session_id)

    def storage_fault(self) -> str | None:
        return self.inner.storage_fault()  # the readiness probe's: not a store operation

    @property
    def limits(self) -> Any:
        return self.inner.limits

    @property
    def clock(self) -> Any:
        return self.inner.clock

    def close(self) -> None:
        self.inner.close()


class _StoreGauges:
    """A collector of two gauges read from the store once per scrape."""

    def __init__(self, live_sessions: int | None) -> None:
        self.live_sessions = live_sessions

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = "1 when the session store answered this scrape, else 0."
        yield GaugeMetricFamily("autograd_store_up", up, value=int(self.live_sessions is not None))
        if self.live_sessions is not None:
            yield GaugeMetricFamily(
                "autograd_live_sessions",
                "Sessions in the store that have not expired (all replicas' together).",
                value=self.live_sessions,
            )


def _store_gauges(live_sessions: int | None) -> bytes:
    registry = CollectorRegistry()
    registry.register(_StoreGauges(live_sessions))  # type: ignore[arg-type]
    return generate_latest(registry)


def render(live_sessions: int | None) -> bytes:
    """The exposition text: this process's metrics, or every worker's in multiprocess mode,
    then the store's gauges (None: the store did not answer)."""
    if MULTIPROC_DIR is None:
        text = generate_latest(REGISTRY)
    else:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=MULTIPROC_DIR)
        text = generate_latest(registry)
    return text + _store_gauges(live_sessions)


def prepare_multiprocess_dir(make: Callable[[], str]) -> tuple[str, bool]:
    """The directory the workers will share, emptied: PROMETHEUS_MULTIPROC_DIR when set (its
    old files would add a previous run's counts), else a new one from `make`. Returns it and
    whether it was made here (the caller removes it when the server stops)."""
    given = os.environ.get(MULTIPROC_ENV)
    if given is None:
        return make(), True
    os.makedirs(given, exist_ok=True)
    for name in os.listdir(given):
        if name.endswith(".db"):
            os.remove(os.path.join(given, name))
    return given, False
