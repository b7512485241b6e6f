"""The OpenAPI document: stable operation ids, the problem schema, and its canonical text."""

import json
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic.json_schema import models_json_schema

from service.problems import CLIENT_401, RATE_429, problem_responses
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


API_KEY_SCHEME = {
    "type": "apiKey",
    "in": "header",
    "name": "X-API-Key",
    "description": "Needed on every /v1 call when the server has API keys "
    "(AUTOGRAD_API_KEYS_FILE); calls that take no session token may send it as "
    "`Authorization: Bearer <key>` instead.",
}


_CLIENT_ANSWERS = ((401, CLIENT_401, "api-key"), (429, RATE_429, "rate-limited"))


def _add_client_answers(spec: dict[str, Any]) -> None:
    """Every /v1 operation may need an API key (401) and be rate limited (429): documented
    whatever this server's settings, as the document does not depend on them."""
    spec["components"].setdefault("securitySchemes", {})["ApiKey"] = API_KEY_SCHEME
    for path, operations in spec.get("paths", {}).items():
        if not path.startswith("/v1/"):
            continue
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status, text, slug in _CLIENT_ANSWERS:
                declared = responses.get(str(status))
                if declared is None:
                    declared = problem_responses(status, descriptions={status: text})[status]
                    responses[str(status)] = declared
                elif slug not in declared["description"]:  # a session's token: say both
                    declared["description"] += " " + text
            # The key is optional (`{}`): a server without a keys file asks for none.
            own = operation.get("security", [{}])
            with_key = [{**requirement, "ApiKey": []} for requirement in own]
            operation["security"] = with_key + [r for r in own if r not in with_key]


def install_openapi(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = generate()
            _add_problem_schemas(spec)
            _add_client_answers(spec)
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def render_openapi(spec: dict[str, Any]) -> str:
    """Canonical text of the spec: sorted and indented, so diffs show real changes only."""
    return json.dumps(spec, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
