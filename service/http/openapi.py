"""The OpenAPI document: stable operation ids, the problem schema, and its canonical text."""

import json
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic.json_schema import models_json_schema

from service.problems import problem_responses
from service.schemas.problems import Problem


def operation_id(route: APIRoute) -> str:
    """The endpoint function's name: short, stable and what generated clients call."""
    return route.name


_FASTAPI_422 = "#/components/schemas/HTTPValidationError"


def _add_problem_schemas(spec: dict[str, Any]) -> None:
    # Error responses reference Problem under application/problem+json, a media type
    # FastAPI's `responses={..: {"model": ..}}` cannot target, so the schema is added here.
    _, defs = models_json_schema(
        [(Problem, "serialization")], ref_template="#/components/schemas/{model}"
    )
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(defs["$defs"])
    # FastAPI documents a 422 of its own shape for routes that declare none; ours is a problem.
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            content = responses.get("422", {}).get("content", {})
            if content.get("application/json", {}).get("schema", {}).get("$ref") == _FASTAPI_422:
                responses["422"] = problem_responses(422)[422]
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)


def install_openapi(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _add_problem_schemas(generate())
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def render_openapi(spec: dict[str, Any]) -> str:
    """Canonical text of the spec: sorted and indented, so diffs show real changes only."""
    return json.dumps(spec, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
