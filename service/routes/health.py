"""Liveness and readiness probes for process supervisors and load balancers."""

import os
from pathlib import Path

from fastapi import APIRouter

from service.deps import SettingsDep
from service.problems import PROBLEM_TYPES, problem_responses
from service.routing import ORJSONRoute
from service.schemas import Liveness, Readiness

router = APIRouter(tags=["health"], route_class=ORJSONRoute)


@router.get(
    "/livez", summary="Liveness probe", response_model=Liveness, responses=problem_responses(500)
)
async def livez() -> Liveness:
    """The process is up and serving requests. Does no other work, so it is cheap to poll."""
    return Liveness()


def _check_data_dir(path: Path) -> str:
    if not path.is_dir():
        return f"missing: {path}"
    if not os.access(path, os.W_OK | os.X_OK):
        return f"not writable: {path}"
    return "ok"


@router.get(
    "/readyz",
    summary="Readiness probe",
    response_model=Readiness,
    responses=problem_responses(500, 503),
)
async def readyz(settings: SettingsDep) -> Readiness:
    """The service has started and its data directory is usable; 503 says which check failed."""
    checks = {"data_dir": _check_data_dir(settings.data_dir)}
    failed = sorted(name for name, result in checks.items() if result != "ok")
    if failed:
        raise PROBLEM_TYPES["not-ready"].error(
            f"Failed readiness checks: {', '.join(failed)}.",
            headers={"Retry-After": "5"},
            checks=checks,
        )
    return Readiness(checks=checks)
