"""What docker-compose.yml says, for the tests that run the same thing without Docker."""

from functools import cache
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"


@cache
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def service(name: str) -> dict[str, Any]:
    return compose()["services"][name]


def redis_args() -> list[str]:
    """The redis service's arguments to redis-server (its persistence settings)."""
    command = service("redis")["command"]
    assert command[0] == "redis-server", command
    return [str(arg) for arg in command[1:]]


def api_environment() -> dict[str, str]:
    return {k: str(v) for k, v in service("api")["environment"].items()}
