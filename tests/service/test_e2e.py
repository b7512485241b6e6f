"""Against real uvicorn processes on 127.0.0.1: the service as `python -m service serve`
starts it, and the same app plus the test-only /echo route for the tensor wire path."""

import json

import httpx
import numpy as np
import pytest

from service.wire import decode_tensor, encode_tensor, jsonio

from .conftest import ECHO_MAX_BODY_BYTES, REPO

PROBLEM_JSON = "application/problem+json"


@pytest.fixture(scope="module")
def live(live_server):
    with httpx.Client(base_url=live_server, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def echo(echo_server):
    with httpx.Client(base_url=echo_server, timeout=60) as client:
        yield client


def test_probes(live):
    assert live.get("/livez").json() == {"status": "ok"}
    ready = {"status": "ready", "checks": {"data_dir": "ok", "store": "ok"}}
    assert live.get("/readyz").json() == ready


def test_served_spec_is_the_committed_one(live):
    committed = json.loads((REPO / "openapi" / "openapi.json").read_text(encoding="utf-8"))
    assert live.get("/openapi.json").json() == committed


def test_docs_pages_and_their_assets_come_from_this_server(live):
    for page, asset in [("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")]:
        html = live.get(page).text
        assert f'"/docs/assets/{asset}"' in html
        assert "http://" not in html and "https://" not in html
        response = live.get(f"/docs/assets/{asset}")
        assert response.status_code == 200
        assert len(response.content) > 500_000


def test_errors_are_problem_documents(live):
    missing = live.get("/nowhere")
    assert (missing.status_code, missing.headers["content-type"]) == (404, PROBLEM_JSON)
    wrong = live.post("/livez", json={})
    assert (wrong.status_code, wrong.headers["allow"]) == (405, "GET")
    assert wrong.json()["title"] == "Method Not Allowed"


def test_a_million_element_b64_round_trip_is_exact(echo):
    sample = np.random.default_rng(7).standard_normal(1_000_000).astype(np.float32)
    sample[[0, 1, 2]] = [np.nan, np.inf, -0.0]
    request = {"inputs": {"x": {**encode_tensor(sample, binary=True), "requires_grad": True}}}
    response = echo.post(
        "/echo",
        content=jsonio.dumps({**request, "binary": True}),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 200, response.text[:500]
    out = response.json()["outputs"]["x"]
    assert (out["shape"], out["dtype"], out["requires_grad"]) == ([1_000_000], "float32", True)
    array, _ = decode_tensor(out)
    assert array.tobytes() == sample.tobytes()


def test_json_lists_with_non_finite_values_round_trip(echo):
    data = [[1.5, "NaN"], ["Infinity", "-Infinity"]]
    response = echo.post("/echo", json={"inputs": {"m": {"data": data, "dtype": "float64"}}})
    assert response.status_code == 200
    assert response.content.count(b"null") == 0
    assert response.json()["outputs"]["m"] == {
        "data": data,
        "shape": [2, 2],
        "dtype": "float64",
        "requires_grad": False,
    }


def test_malformed_json_is_400_and_the_server_carries_on(echo):
    response = echo.post(
        "/echo", content=b'{"inputs": {"a": [NaN]}}', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["type"] == "/problems/invalid-json"
    assert echo.post("/echo", json={"inputs": {"a": 1}}).json()["outputs"]["a"]["data"] == 1


def test_declared_body_over_the_limit_is_413(echo):
    payload = b'{"inputs": {}, "label": "' + b"x" * ECHO_MAX_BODY_BYTES + b'"}'
    response = echo.post("/echo", content=payload, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["value"] == len(payload)
    assert echo.get("/livez").status_code == 200


def test_chunked_body_over_the_limit_is_413(echo):
    chunk = b"x" * 65536
    count = ECHO_MAX_BODY_BYTES // len(chunk) + 2

    def body():
        yield b'{"inputs": {}, "label": "'
        for _ in range(count):
            yield chunk
        yield b'"}'

    response = echo.post("/echo", content=body(), headers={"content-type": "application/json"})
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    doc = response.json()
    assert (doc["type"], doc["maximum"]) == ("/problems/body-too-large", ECHO_MAX_BODY_BYTES)
    assert doc["value"] > ECHO_MAX_BODY_BYTES
    assert echo.get("/livez").status_code == 200
