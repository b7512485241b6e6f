"""A train call's batches are held to `max_flops` together, before any of them runs: each
batch alone is within the limit, but 1,000 of them in a 28 KB body once ran 139 s (#12)."""

from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.sessions.helpers import batch_inputs, batches, mlp_parameters, session_body

SGD = {"type": "sgd", "lr": 0.1}


def _client(tmp_path, max_flops: int) -> TestClient:
    return TestClient(create_app(Settings(data_dir=tmp_path / "data", max_flops=max_flops)))


def _train(client: TestClient, n: int):
    created = client.post("/v1/sessions", json=_json(session_body(mlp_parameters(), SGD)))
    assert created.status_code == 201, created.text
    auth = {"Authorization": f"Bearer {created.json()['token']}"}
    body = {"batches": [{"inputs": batch_inputs(x, y)} for x, y in batches(n)]}
    return client.post(f"/v1/sessions/{created.json()['id']}/train", json=body, headers=auth)


def _json(value):
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json(v) for v in value]
    return value.tolist() if isinstance(value, np.ndarray) else value


def test_batches_over_the_limit_together_are_refused_before_any_runs(tmp_path):
    with _client(tmp_path, max_flops=200_000) as client:
        one = _train(client, 1)
        assert one.status_code == 200, one.text
        many = _train(client, 200)
        assert many.status_code == 422, many.text
        problem = many.json()
        assert problem["type"].endswith("/limit-exceeded") and problem["limit"] == "max_flops"
        assert problem["errors"][0]["pointer"] == "/batches"
        assert problem["value"] > problem["maximum"] == 200_000
        assert "200 batches" in problem["detail"]


def test_batches_within_the_limit_together_all_run(tmp_path):
    with _client(tmp_path, max_flops=10_000_000_000) as client:
        answer = _train(client, 20)
        assert answer.status_code == 200, answer.text
        assert answer.json()["step_count"] == 20
