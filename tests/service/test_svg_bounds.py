"""SVG drawing is bounded, with the real Graphviz: a DAG too big to lay out is refused before
`dot` runs, and `dot` itself is stopped at a time and a memory cap. A 2,500-node program
asked for as SVG once ran `dot` 10 s at 2 GB, and 500 nodes with cross edges 28.8 s (#12).

What costs Graphviz is not the node count: an edge from a value computed far earlier
crosses many ranks, and dot lays out one node per rank it crosses."""

from __future__ import annotations

import shutil
import time
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from fastapi.testclient import TestClient

from engine.models.resnet import resnet18
from engine.program import describe, layout_size
from service.app import create_app
from service.settings import MiB, Settings

pytestmark = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")

SVG = {"accept": "image/svg+xml"}


def chain(n: int, reads) -> dict:
    """y_i = y_{i-1} + y_{reads(i)}: n nodes, each also reading one earlier value."""
    lines = ["y0 = x * 2.0"] + [f"y{i} = y{i - 1} + y{reads(i)}" for i in range(1, n)]
    return {
        "expr": "\n".join(lines),
        "inputs": {"x": {"data": [1.0, 2.0], "requires_grad": True}},
        "outputs": [f"y{n - 1}"],
    }


def two_far_reads(n: int) -> dict:
    """n nodes each reading two earlier values far apart: the 28.8 s drawing."""
    lines = ["y0 = x * 2.0", "y1 = x * 3.0"]
    lines += [f"y{i} = y{i - 1} * y{i // 2} + y{i // 3}" for i in range(2, n)]
    return {
        "expr": "\n".join(lines),
        "inputs": {"x": {"data": [1.0, 2.0], "requires_grad": True}},
        "outputs": [f"y{n - 1}"],
    }


@pytest.fixture
def make_client(tmp_path):
    clients = []

    def make(**settings) -> TestClient:
        client = TestClient(create_app(Settings(data_dir=tmp_path / "data", **settings)))
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def refused(response, limit: str) -> dict:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert (body["type"], body["limit"]) == ("/problems/limit-exceeded", limit)
    assert "application/json" in body["detail"]  # says how to get the graph anyway
    return body


@pytest.mark.parametrize(
    "body", [chain(2500, lambda i: i // 2), two_far_reads(500)], ids=["2500-nodes", "500-cross"]
)
def test_a_dag_too_big_to_lay_out_is_refused_before_dot_runs(make_client, body):
    client = make_client()
    started = time.perf_counter()
    answer = client.post("/v1/evaluate", json=body, headers=SVG)
    elapsed = time.perf_counter() - started
    problem = refused(answer, "max_svg_nodes")
    assert problem["maximum"] == 5000 and problem["value"] > 5000
    assert f"lay out {problem['value']} nodes" in problem["detail"]
    assert elapsed < 2.0  # the program runs; Graphviz does not
    as_json = client.post("/v1/evaluate", json={**body, "include": ["dag"]})
    assert as_json.status_code == 200  # the same graph as JSON and DOT text


def test_the_layout_size_counts_the_ranks_long_edges_cross():
    import engine

    model = resnet18(num_classes=10)
    x = engine.tensor(np.random.default_rng(0).random((2, 3, 32, 32), dtype=np.float32))
    resnet = describe({"loss": model(x).sum()}, dict(model.named_parameters()))
    # Its 133 nodes plus the skip connections' ranks; parameters sit by their layer.
    assert len(resnet["nodes"]) == 133 and layout_size(resnet) == 228


def test_a_long_chain_under_the_cap_is_drawn(make_client):
    client = make_client()
    answer = client.post("/v1/evaluate", json=chain(1000, lambda i: i - 1), headers=SVG)
    assert answer.status_code == 200, answer.text
    root = ET.fromstring(answer.content)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert len(list(root.iter("{http://www.w3.org/2000/svg}g"))) > 1000


def test_dot_past_its_time_is_stopped_and_refused(make_client):
    client = make_client(max_svg_nodes=10**6, svg_timeout_seconds=0.3)
    started = time.perf_counter()
    answer = client.post("/v1/evaluate", json=chain(1000, lambda i: i // 2), headers=SVG)
    assert time.perf_counter() - started < 5.0
    problem = refused(answer, "svg_timeout_seconds")
    assert problem["maximum"] == 0.3
    assert "graphviz took more than 0.3 s" in problem["detail"]


def test_dot_past_its_memory_is_stopped_and_refused(make_client):
    # 2,500 nodes each reading the value computed halfway: 1.6 GB for dot uncapped.
    client = make_client(max_svg_nodes=10**7, svg_memory_bytes=128 * MiB, svg_timeout_seconds=60)
    answer = client.post("/v1/evaluate", json=chain(2500, lambda i: i // 2), headers=SVG)
    problem = refused(answer, "svg_memory_bytes")
    assert problem["maximum"] == 128 * MiB
    assert f"more than {128 * MiB} bytes of memory" in problem["detail"]
