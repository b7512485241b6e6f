"""POST /v1/evaluate's three ways through the server give the same answers and problems:
small requests run on the event loop, small bodies with real work run it in the threadpool,
everything else runs there whole. And the route's fast body path (a body that parses and
validates skips FastAPI's dependency resolution) leaves every refusal to FastAPI's path."""

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.examples import programs as examples
from service.routes import evaluate as route
from service.settings import Settings

SEED = examples.EVALUATE["seed"]["value"]
PROBLEM_JSON = "application/problem+json"

BODIES = [
    SEED,
    {**SEED, "include": ["dag"]},
    {**SEED, "binary": True},
    {
        "expr": "h = relu(x @ W.T + b); loss = cross_entropy(h, y)",
        "inputs": {
            "x": {"data": [[1, 2, 3], [4, 5, 6]], "dtype": "float32"},
            "W": {"data": [[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]], "requires_grad": True},
            "b": {"data": [0.5, -0.5], "requires_grad": True},
            "y": [1, 0],
        },
        "backward": [{"output": "loss"}, {"output": "loss"}],
    },
    # refusals: a shape mismatch, an unknown name, a gradient of the wrong shape
    {"expr": "z = x @ y", "inputs": {"x": [[1, 2]], "y": [[1, 2]]}},
    {"expr": "z = nope(x)", "inputs": {"x": [1]}},
    {**SEED, "backward": {"output": "Q", "gradient": [1, 1, 1]}},
]

PATHS = {
    "inline": {},
    "threadpool execute": {"INLINE_MAX_COST": 0},
    "threadpool whole": {"INLINE_MAX_BODY_BYTES": 0},
    "threadpool (long program)": {"INLINE_MAX_EQNS": 0},
}


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    app = create_app(Settings(data_dir=tmp_path_factory.mktemp("paths") / "data"))
    with TestClient(app) as client:
        yield client


VOLATILE = {"request_id"}  # differs from one request to the next


def _answer(api, body, **kwargs):
    response = api.post("/v1/evaluate", json=body, **kwargs)
    doc = {k: v for k, v in response.json().items() if k not in VOLATILE}
    return response.status_code, response.headers["content-type"], doc


@pytest.mark.parametrize("body", BODIES, ids=range(len(BODIES)))
def test_every_path_answers_alike(api, body, monkeypatch):
    answers = {}
    for name, constants in PATHS.items():
        with monkeypatch.context() as patch:
            for constant, value in constants.items():
                patch.setattr(route, constant, value)
            answers[name] = _answer(api, body)
    reference = answers.pop("inline")
    for name, answer in answers.items():
        assert answer == reference, name


def test_a_body_without_content_length_runs_in_the_threadpool(api):
    chunks = (part.encode() for part in ['{"expr": "y = 2 * x",', ' "inputs": {"x": [1, 2]}}'])
    response = api.post(
        "/v1/evaluate", content=chunks, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["outputs"]["y"]["data"] == [2, 4]


@pytest.mark.parametrize(
    ("content", "content_type", "status", "type_"),
    [
        (b"{not json", "application/json", 400, "/problems/invalid-json"),
        (b"null", "application/json", 422, "/problems/validation-error"),
        (b"[]", "application/json", 422, "/problems/validation-error"),
        (b"", "application/json", 422, "/problems/validation-error"),
        (b'{"inputs": {}}', "application/json", 422, "/problems/validation-error"),
        (b'{"expr": "y = x", "inputs": {}, "bogus": 1}', "application/json", 422, None),
        (b'{"expr": "y = 1"}', "text/plain", 415, "/problems/unsupported-media-type"),
    ],
)
def test_refused_bodies_get_fastapis_problems(api, content, content_type, status, type_):
    response = api.post("/v1/evaluate", content=content, headers={"content-type": content_type})
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    if type_ is not None:
        assert response.json()["type"] == type_, response.json()


def test_unknown_member_points_at_it(api):
    response = api.post("/v1/evaluate", json={"expr": "y = x", "inputs": {"x": 1}, "bogus": 1})
    assert response.status_code == 422
    assert [e["pointer"] for e in response.json()["errors"]] == ["/bogus"]


def test_the_route_is_declared_as_before(api):
    operation = api.get("/openapi.json").json()["paths"]["/v1/evaluate"]["post"]
    body = operation["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/EvaluateCreate"}
    assert next(iter(body["examples"])) == "seed"


def test_a_valid_body_skips_fastapis_dependency_resolution(api, monkeypatch):
    import fastapi.routing

    def unexpected(**kwargs):
        raise AssertionError("FastAPI's dependency resolution ran for a valid body")

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", unexpected)
    status, _, answer = _answer(api, SEED)
    assert status == 200 and answer["grads"]["a"]["data"] == [36, 81]
