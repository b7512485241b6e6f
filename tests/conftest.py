"""Test tiers. `pytest -m "not integration"` is the quick run: the engine, the programs and
the app in process. Tests that start servers (uvicorn subprocesses, redis-server, nginx),
drive Chromium or build the deploy image are marked `integration` here, by the fixtures they
use and the folder they live in, so no test file has to remember to mark itself. So is the
schemathesis run over every operation (minutes of generated requests, in process)."""

from __future__ import annotations

import pytest

# Fixtures that start a process the test talks to over a socket.
SERVER_FIXTURES = frozenset(
    {
        "live_server",
        "echo_server",
        "metered_server",
        "server",
        "http",
        "short_lived",
        "capped",
        "sqlite_two_workers",
        "two_replicas_on_redis",
        "redis_server",
        "topology",
        "container",
        "attacked",
    }
)
# Folders, modules and tests that start their servers, browsers or installs themselves.
INTEGRATION_PATHS = (
    "tests/deploy/",
    "tests/service/test_swagger_browser.py",
    "tests/sessions/test_durability.py",
    "tests/sessions/test_quotas.py",
    "tests/store/test_durability.py::test_sessions_survive_a_killed_redis",
    "tests/service/test_fuzz.py::test_every_answer_is_declared",
)


def _is_integration(item: pytest.Item) -> bool:
    if item.nodeid.startswith(INTEGRATION_PATHS):
        return True
    if SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
        return True
    # The store suite runs each test on SQLite and on a real redis-server.
    callspec = getattr(item, "callspec", None)
    return callspec is not None and callspec.params.get("backend") == "redis"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _is_integration(item):
            item.add_marker(pytest.mark.integration)
