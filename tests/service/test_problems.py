"""Every non-2xx answer is an RFC 9457 problem document; one test per way of failing."""

import json

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

from service.problems import PROBLEM_TYPES, ProblemError, json_pointer
from service.schemas.problems import Problem
from tests.service.echo_app import create_echo_app

PROBLEM_JSON = "application/problem+json"


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    Problem.model_validate(body)
    assert body["status"] == status
    return body


def post_json(client, text: str, path: str = "/echo"):
    return client.post(path, content=text, headers={"content-type": "application/json"})


def test_malformed_json_is_400_with_line_and_column(client):
    body = problem(post_json(client, '{"inputs":\n  {"a": [1, 2,]}}'), 400)
    assert body["type"] == "/problems/invalid-json"
    assert body["title"] == "Malformed JSON"
    assert (body["line"], body["column"], body["position"]) == (2, 14, 24)
    assert body["detail"].startswith("Malformed JSON at line 2, column 14")
    assert body["instance"] == "/echo"


# orjson stops after the minus sign of -Infinity, one column later.
@pytest.mark.parametrize(("token", "column"), [("NaN", 22), ("Infinity", 22), ("-Infinity", 23)])
def test_bare_non_finite_tokens_are_400_with_the_spelling_to_use(client, token, column):
    body = problem(post_json(client, f'{{"inputs": {{"a": [1, {token}]}}}}'), 400)
    assert body["type"] == "/problems/invalid-json"
    assert body["column"] == column
    assert '"NaN", "Infinity", "-Infinity"' in body["detail"]


def test_unknown_path_is_404(client):
    body = problem(client.get("/no/such/thing", headers={"X-Request-ID": "req-1"}), 404)
    assert body == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "No resource at /no/such/thing",
        "instance": "/no/such/thing",
        "request_id": "req-1",
    }


def test_wrong_method_is_405_with_allow_header(client):
    response = client.delete("/livez")
    body = problem(response, 405)
    assert response.headers["allow"] == "GET"
    assert body["title"] == "Method Not Allowed"
    assert body["detail"] == "DELETE is not allowed on /livez; allowed: GET"


def test_declared_length_over_limit_is_413(client, settings):
    payload = b'{"inputs": {}, "label": "' + b"x" * settings.max_body_bytes + b'"}'
    body = problem(post_json(client, payload.decode()), 413)
    assert body["type"] == "/problems/body-too-large"
    assert (body["limit"], body["value"], body["maximum"]) == (
        "max_body_bytes",
        len(payload),
        settings.max_body_bytes,
    )


def test_chunked_body_over_limit_is_413(client, settings):
    def chunks():
        yield b'{"inputs": {}, "label": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    response = client.post("/echo", content=chunks(), headers={"content-type": "application/json"})
    body = problem(response, 413)
    assert body["maximum"] == settings.max_body_bytes
    assert body["value"] > settings.max_body_bytes


def test_body_at_the_limit_is_accepted(client, settings):
    head, tail = '{"inputs": {}, "label": "', '"}'
    label = "y" * (settings.max_body_bytes - len(head) - len(tail))
    response = post_json(client, head + label + tail)
    assert response.status_code == 200, response.text
    assert response.json()["label"] == label


def test_non_json_body_is_415(client):
    response = client.post("/echo", content=b"a=1", headers={"content-type": "text/plain"})
    body = problem(response, 415)
    assert body["type"] == "/problems/unsupported-media-type"
    assert body["content_type"] == "text/plain"


def test_invalid_fields_are_422_with_json_pointers(client):
    body = problem(client.post("/echo", json={"binary": "perhaps", "label": 3}), 422)
    assert body["type"] == "/problems/validation-error"
    assert body["title"] == "Request validation failed"
    assert {e["pointer"] for e in body["errors"]} == {"/inputs", "/binary", "/label"}
    by_pointer = {e["pointer"]: e["detail"] for e in body["errors"]}
    assert by_pointer["/inputs"] == "Field required"
    assert by_pointer["/binary"].startswith("Input should be a valid boolean")
    assert body["detail"].startswith("3 invalid fields; first /")


def test_many_invalid_elements_give_a_bounded_answer(settings):
    router = APIRouter()

    @router.post("/ints")
    async def ints(values: list[int]) -> int:
        return len(values)

    app = create_echo_app(settings)
    app.include_router(router)
    with TestClient(app) as client:
        body = problem(client.post("/ints", json=["x"] * 300), 422)
    assert body["error_count"] == 300
    assert len(body["errors"]) == 50
    assert body["errors"][49]["pointer"] == "/49"


def test_body_that_is_not_an_object_points_at_the_root(client):
    body = problem(client.post("/echo", json=[1, 2]), 422)
    assert [e["pointer"] for e in body["errors"]] == [""]


def test_invalid_tensor_is_422_pointing_into_the_tensor(client):
    response = client.post("/echo", json={"inputs": {"x/y": {"data": [[1, 2], [3]]}}})
    body = problem(response, 422)
    assert body["type"] == "/problems/invalid-tensor"
    assert [e["pointer"] for e in body["errors"]] == ["/inputs/x~1y/data"]
    assert "ragged" in body["errors"][0]["detail"]


def test_tensor_over_the_element_limit_is_refused_before_allocation(client, settings):
    huge = {"b64": "AAAA", "shape": [100_000, 100_000], "dtype": "float64"}
    body = problem(client.post("/echo", json={"inputs": {"w": huge}}), 422)
    assert body["type"] == "/problems/limit-exceeded"
    assert (body["limit"], body["value"], body["maximum"]) == (
        "max_tensor_elements",
        10**10,
        settings.max_tensor_elements,
    )
    assert body["errors"] == [
        {"pointer": "/inputs/w", "detail": "tensor has 10000000000 elements; the limit is 1000"}
    ]


def test_query_parameter_errors_name_the_parameter(settings):
    router = APIRouter()

    @router.get("/items")
    async def items(limit: int) -> dict:
        return {"limit": limit}

    app = create_echo_app(settings)
    app.include_router(router)
    with TestClient(app) as client:
        body = problem(client.get("/items", params={"limit": "many"}), 422)
    assert body["errors"] == [
        {
            "parameter": "limit",
            "detail": "Input should be a valid integer, unable to parse string as an integer",
        }
    ]


def test_unexpected_exception_is_a_500_problem_without_internals(settings):
    router = APIRouter()

    @router.get("/boom")
    async def boom() -> dict:
        raise RuntimeError("secret internal state")

    app = create_echo_app(settings)
    app.include_router(router)
    with TestClient(app, raise_server_exceptions=False) as client:
        body = problem(client.get("/boom"), 500)
        assert "secret" not in json.dumps(body)
        assert body["title"] == "Internal Server Error"
        assert client.get("/livez").status_code == 200


def test_problem_error_carries_extensions_and_refuses_to_shadow_members():
    error = ProblemError(409, "Conflict", "busy", node="n3", shapes=[[2], [3]])
    assert error.document("/v1/x") == {
        "type": "about:blank",
        "title": "Conflict",
        "status": 409,
        "detail": "busy",
        "instance": "/v1/x",
        "node": "n3",
        "shapes": [[2], [3]],
    }
    with pytest.raises(ValueError, match="shadow"):
        ProblemError(400, "Bad", "x", instance="/elsewhere")


def test_json_pointer_escapes_tilde_and_slash():
    assert json_pointer(["inputs", "a/b~c", 0]) == "/inputs/a~1b~0c/0"
    assert json_pointer([]) == ""


def test_every_problem_type_is_documented_at_its_uri(client):
    listed = client.get("/problems").json()
    assert [p["type"] for p in listed] == [t.uri for t in PROBLEM_TYPES.values()]
    for kind in PROBLEM_TYPES.values():
        assert client.get(kind.uri).json() == {
            "type": kind.uri,
            "status": kind.status,
            "title": kind.title,
            "description": kind.description,
        }
    problem(client.get("/problems/no-such-kind"), 404)
