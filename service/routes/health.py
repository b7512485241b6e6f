"""Liveness and readiness probes for process supervisors and load balancers, and the
Prometheus metrics."""

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import anyio
from fastapi import APIRouter, Response

from service import metrics
from service.http.deps import SettingsDep, StoreDep
from service.http.routing import ORJSONRoute
from service.problems import PROBLEM_TYPES, problem_responses
from service.schemas.health import Liveness, Readiness
from service.store import SessionStore, StorageFault, StoreUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

router = APIRouter(tags=["health"], route_class=ORJSONRoute)

STORE_CHECK_SECONDS = 2.0
"""A store slower than this to count its sessions is not ready (a scrape omits the count)."""


@router.get(
    "/livez", summary="Liveness probe", response_model=Liveness, responses=problem_responses(500)
)
async def livez() -> Liveness:
    """The process is up and serving requests. Does no other work (the session store is not
    asked), so it is cheap to poll and a store outage does not get replicas restarted."""
    return Liveness()


def _check_data_dir(path: Path) -> str:
    if not path.is_dir():
        return f"missing: {path}"
    if not os.access(path, os.W_OK | os.X_OK):
        return f"not writable: {path}"
    return "ok"


async def _ask_store(store: SessionStore, question: Callable[[], T]) -> T | str:
    """The store's answer, or why it did not answer within STORE_CHECK_SECONDS."""
    try:
        with anyio.fail_after(STORE_CHECK_SECONDS):
            # Abandoned on time-out: a hung connection must not hold the probe.
            return await anyio.to_thread.run_sync(question, abandon_on_cancel=True)
    except TimeoutError:
        return f"timeout: no answer in {STORE_CHECK_SECONDS:g} s"
    except StorageFault as exc:  # full, I/O, damaged: already what operators need to read
        return exc.reason
    except StoreUnavailable as exc:
        log.warning("session store check failed: %r", exc.__cause__ or exc)
        return f"unavailable: {exc.reason}"  # the driver's error, as operators know it
    except Exception as exc:  # any failure of any backend means: not ready
        log.warning("session store check failed: %r", exc)
        return f"unavailable: {type(exc).__name__}"


async def _count_sessions(store: SessionStore) -> int | str:
    """The store's live sessions, or why it did not answer."""
    return await _ask_store(store, store.count)


async def _store_check(store: SessionStore) -> str:
    """ "ok" if the store answers and takes writes; else why not, such as "full: database or
    disk is full" after a write failed for lack of room, until a probe write succeeds."""
    counted = await _count_sessions(store)
    if not isinstance(counted, int):
        return counted
    fault = await _ask_store(store, store.storage_fault)
    return fault or "ok"


@router.get(
    "/readyz",
    summary="Readiness probe",
    response_model=Readiness,
    responses=problem_responses(
        500, 503, descriptions={503: "Not ready (/problems/not-ready): `checks` says why."}
    ),
)
async def readyz(settings: SettingsDep, store: StoreDep) -> Readiness:
    """The service has started, its data directory is usable and the session store answers
    (Redis reachable, SQLite readable) and takes writes (not full, no I/O error, not
    damaged); 503 says which check failed, `checks.store` with the store's reason."""
    checks = {
        "data_dir": _check_data_dir(settings.data_dir),
        "store": await _store_check(store),
    }
    failed = sorted(name for name, result in checks.items() if result != "ok")
    if failed:
        raise PROBLEM_TYPES["not-ready"].error(
            f"Failed readiness checks: {', '.join(failed)}.",
            headers={"Retry-After": "5"},
            checks=checks,
        )
    return Readiness(checks=checks)


METRICS_EXAMPLE = """\
# HELP autograd_http_requests_total HTTP requests answered, by method, route template and status.
# TYPE autograd_http_requests_total counter
autograd_http_requests_total{method="POST",route="/v1/evaluate",status="200"} 42.0
# HELP autograd_live_sessions Sessions in the store that have not expired (all replicas' together).
# TYPE autograd_live_sessions gauge
autograd_live_sessions 3.0
"""


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {
            "description": "The Prometheus text exposition format.",
            "content": {"text/plain": {"schema": {"type": "string"}, "example": METRICS_EXAMPLE}},
        },
        **problem_responses(500),
    },
)
async def get_metrics(store: StoreDep) -> Response:
    """Requests and latency by route template and status, engine time by endpoint, session
    store latency by operation, and the live sessions of the store. With several workers,
    the sum over all of them, whichever answers."""
    counted = await _count_sessions(store)
    text = metrics.render(counted if isinstance(counted, int) else None)
    return Response(text, media_type=metrics.CONTENT_TYPE)
