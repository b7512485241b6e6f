"""openapi/openapi.json is the running app's spec, and every error it can answer is declared."""

from pathlib import Path

import pytest

from service.app import create_app
from service.cli import main
from service.http.openapi import render_openapi
from service.settings import Settings

SPEC_FILE = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


@pytest.fixture(scope="module")
def spec() -> dict:
    return create_app(Settings()).openapi()


def operations(spec: dict):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def test_committed_spec_matches_the_app(spec):
    assert SPEC_FILE.read_text(encoding="utf-8") == render_openapi(spec), (
        "openapi/openapi.json is stale: run `autograd-service openapi` and commit it"
    )


def test_the_cli_writes_exactly_that_text(tmp_path, spec):
    out = tmp_path / "nested" / "spec.json"
    assert main(["openapi", "--output", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == render_openapi(spec)


def test_the_spec_does_not_depend_on_settings(spec, tmp_path):
    other = Settings(max_body_bytes=1, max_tensor_elements=1, data_dir=tmp_path, port=1)
    assert render_openapi(create_app(other).openapi()) == render_openapi(spec)


def test_every_error_response_is_a_declared_problem_document(spec):
    for path, method, operation in operations(spec):
        errors = {code: r for code, r in operation["responses"].items() if code[0] in "45"}
        assert "500" in errors, f"{method} {path}"
        for code, response in errors.items():
            assert list(response["content"]) == ["application/problem+json"], (method, path, code)
            media = response["content"]["application/problem+json"]
            assert media["schema"] == PROBLEM_REF, f"{method} {path} {code}"
            for example in media.get("examples", {}).values():
                assert example["value"]["status"] == int(code), (method, path, code)
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    problem = spec["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"title", "status", "detail"}
    assert problem["additionalProperties"] is True


def test_operation_ids_are_the_endpoint_names(spec):
    ids = {(path, method): op["operationId"] for path, method, op in operations(spec)}
    assert ids == {
        ("/livez", "get"): "livez",
        ("/readyz", "get"): "readyz",
        ("/metrics", "get"): "get_metrics",
        ("/problems", "get"): "list_problem_types",
        ("/problems/{slug}", "get"): "get_problem_type",
        ("/v1/ops", "get"): "list_ops",
        ("/v1/evaluate", "post"): "evaluate_program",
        ("/v1/jacobian", "post"): "jacobian",
        ("/v1/hessian", "post"): "hessian",
        ("/v1/gradcheck", "post"): "gradcheck",
        ("/v1/sessions", "post"): "create_session",
        ("/v1/sessions/{session_id}", "get"): "get_session",
        ("/v1/sessions/{session_id}", "delete"): "delete_session",
        ("/v1/sessions/{session_id}/fork", "post"): "fork_session",
        ("/v1/sessions/{session_id}/state", "get"): "get_session_state",
        ("/v1/sessions/{session_id}/state_dict", "get"): "get_state_dict",
        ("/v1/sessions/{session_id}/state_dict", "put"): "put_state_dict",
        ("/v1/models", "get"): "list_models",
        ("/v1/models/{name}", "get"): "get_model",
        ("/v1/sessions/{session_id}/forward", "post"): "session_forward",
        ("/v1/sessions/{session_id}/backward", "post"): "session_backward",
        ("/v1/sessions/{session_id}/step", "post"): "session_step",
        ("/v1/sessions/{session_id}/zero_grad", "post"): "session_zero_grad",
        ("/v1/sessions/{session_id}/train", "post"): "session_train",
        ("/v1/sessions/{session_id}/parameters/{name}", "get"): "get_parameter",
        ("/v1/sessions/{session_id}/parameters/{name}", "put"): "put_parameter",
        ("/v1/sessions/{session_id}/parameters/{name}", "patch"): "patch_parameter",
        ("/v1/sessions/{session_id}/parameters/{name}", "delete"): "delete_parameter",
    }


def test_tensor_schemas_document_every_wire_form(tmp_path):
    from tests.service.echo_app import create_echo_app

    spec = create_echo_app(Settings(data_dir=tmp_path)).openapi()
    schemas = spec["components"]["schemas"]
    inputs = schemas["EchoCreate"]["properties"]["inputs"]["additionalProperties"]
    assert inputs == {
        "anyOf": [
            {"$ref": "#/components/schemas/NestedData"},
            {"$ref": "#/components/schemas/TensorData"},
            {"$ref": "#/components/schemas/TensorBinary"},
        ]
    }
    assert schemas["Element"]["anyOf"][-1] == {
        "enum": ["NaN", "Infinity", "-Infinity"],
        "type": "string",
    }
    assert schemas["TensorBinary"]["required"] == ["b64", "shape", "dtype"]
    assert schemas["TensorData"]["properties"]["dtype"]["enum"] == [
        "float32",
        "float64",
        "int64",
        "bool",
    ]


def test_documented_answers_are_what_the_examples_get(spec, tmp_path):
    from fastapi.testclient import TestClient

    app = create_app(Settings(data_dir=tmp_path / "data"))
    with TestClient(app) as client:
        for path in ("/v1/evaluate", "/v1/jacobian", "/v1/hessian", "/v1/gradcheck"):
            operation = spec["paths"][path]["post"]
            request = next(
                iter(operation["requestBody"]["content"]["application/json"]["examples"].values())
            )
            answers = operation["responses"]["200"]["content"]["application/json"]["examples"]
            documented = next(iter(answers.values()))["value"]
            body = request["value"]
            if path == "/v1/evaluate":  # the documented answer shows the DAG too
                body = {**body, "include": ["dag"]}
            assert _without_nulls(client.post(path, json=body).json()) == documented, path


def _without_nulls(value):
    # FastAPI writes the spec with exclude_none: null members of examples are dropped.
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value
