"""The probes' answers."""

from typing import Literal

from pydantic import (
    BaseModel,
    Field,
)


class Liveness(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready"] = "ready"
    checks: dict[str, str] = Field(description="Each readiness check and its result.")
