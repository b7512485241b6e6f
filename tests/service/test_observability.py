"""Request ids, JSON access logs, /metrics and the probes.

The metrics are checked against real servers (`python -m service serve`), with one worker and
with two (prometheus multiprocess mode, set up by the CLI): a known sequence of requests is
counted exactly, whichever worker answers the scrape."""

import json
import logging
import re
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
import redis
from fastapi import APIRouter
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from service.examples import programs as examples
from service.http import logs, request_id
from tests.service.conftest import free_port, run_server
from tests.sessions.helpers import Session, batches, mlp_parameters, session_body

PROBLEM_JSON = "application/problem+json"
SEED = examples.EVALUATE["seed"]["value"]
HEX32 = re.compile(r"[0-9a-f]{32}")


# -- request ids ----------------------------------------------------------------------------


def test_a_safe_request_id_is_echoed_in_the_header_and_the_problem(client):
    rid = "0f8fad5b-d9cb-469f-a165-70867728950e"
    response = client.post("/v1/evaluate", json={}, headers={"X-Request-ID": rid})
    assert response.status_code == 422
    assert response.headers["x-request-id"] == rid
    assert response.json()["request_id"] == rid


def test_a_missing_request_id_is_made_and_echoed(client):
    first, second = client.get("/livez"), client.get("/no/such/path")
    assert HEX32.fullmatch(first.headers["x-request-id"])
    assert second.json()["request_id"] == second.headers["x-request-id"]
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


@pytest.mark.parametrize(
    "given",
    ["x" * 129, "has space", "semi;colon", 'quote"', "new\\nline", "ünïcode", ""],
    ids=["too-long", "space", "semicolon", "quote", "backslash", "non-ascii", "empty"],
)
def test_an_unsafe_request_id_is_replaced(client, given):
    response = client.get("/no/such/path", headers={"X-Request-ID": given.encode()})
    echoed = response.headers["x-request-id"]
    assert HEX32.fullmatch(echoed) and echoed != given
    assert response.json()["request_id"] == echoed


def test_the_longest_safe_id_is_kept():
    longest = "aZ09._:=+/@-" * 10 + "abcdefgh"
    assert len(longest) == request_id.MAX_LENGTH
    assert request_id.from_header(longest.encode()) == longest


def test_every_kind_of_problem_carries_the_request_id(client, settings):
    headers = {"X-Request-ID": "rid-7"}
    too_large = b'{"inputs": {}, "label": "' + b"x" * settings.max_body_bytes + b'"}'
    answers = [
        client.post("/v1/evaluate", content=b"{bad", headers={**headers,
                    "content-type": "application/json"}),  # 400
        client.post("/echo", content=too_large, headers={**headers,
                    "content-type": "application/json"}),  # 413, from the body-limit middleware
        client.post("/v1/evaluate", content=b"{}", headers={**headers,
                    "content-type": "text/plain"}),  # 415
        client.delete("/livez", headers=headers),  # 405
        client.get("/v1/sessions/abc", headers=headers),  # 401
        client.post("/v1/evaluate", json={"expr": "y = nope(x)", "inputs": {"x": 1}},
                    headers=headers),  # 422 from the program layer
    ]  # fmt: skip
    assert [r.status_code for r in answers] == [400, 413, 415, 405, 401, 422]
    for response in answers:
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.headers["x-request-id"] == "rid-7"
        assert response.json()["request_id"] == "rid-7", response.json()


class JSONLines(logging.Handler):
    """Formats each record as `serve` does, when it is logged (inside the request)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(logs.JSONFormatter())
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


def test_an_unexpected_error_is_a_500_with_the_request_id_logged(settings):
    from tests.service.echo_app import create_echo_app

    router = APIRouter()

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret")

    app = create_echo_app(settings)
    app.include_router(router)
    handler, service_log = JSONLines(), logging.getLogger("service")
    service_log.addHandler(handler)
    level = service_log.level
    service_log.setLevel(logging.INFO)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            response = client.get("/boom", headers={"X-Request-ID": "boom-1"})
    finally:
        service_log.removeHandler(handler)
        service_log.setLevel(level)
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "boom-1"
    assert response.json()["request_id"] == "boom-1"
    assert "secret" not in response.text
    # The error's log line and the access line both carry the id.
    error = next(line for line in handler.lines if line["logger"] == "service.problems")
    assert error["request_id"] == "boom-1" and "RuntimeError: secret" in error["exception"]
    access = next(line for line in handler.lines if line["logger"] == logs.ACCESS_LOGGER)
    assert (access["route"], access["status"], access["request_id"]) == ("/boom", 500, "boom-1")
    assert access["method"] == "GET" and access["duration_ms"] > 0


# -- probes ---------------------------------------------------------------------------------


class DownStore:
    """A session store whose server does not answer."""

    def __init__(self, store):
        self.inner = store
        self.limits, self.clock = store.limits, store.clock

    def count(self) -> int:
        raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    def close(self) -> None:
        self.inner.close()


def test_readyz_asks_the_store_and_livez_does_not(client):
    app = client.app
    app.state.store = DownStore(app.state.store)
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert response.headers["content-type"] == PROBLEM_JSON
    assert body["type"] == "/problems/not-ready"
    assert body["checks"] == {"data_dir": "ok", "store": "unavailable: ConnectionError"}
    assert body["request_id"] == response.headers["x-request-id"]
    assert client.get("/livez").status_code == 200
    metrics = client.get("/metrics")  # a scrape still answers, without the store's figures
    assert metrics.status_code == 200
    assert "autograd_store_up 0.0" in metrics.text
    assert "autograd_live_sessions" not in metrics.text


# -- metrics and logs against real servers --------------------------------------------------


def _scrape(http: httpx.Client) -> dict[tuple[str, tuple], float]:
    response = http.get("/metrics", headers={"Connection": "close"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def _requests(samples) -> dict[tuple[str, str, str], float]:
    counted = {}
    for (name, labels), value in samples.items():
        if name == "autograd_http_requests_total":
            by = dict(labels)
            counted[by["method"], by["route"], by["status"]] = value
    return counted


def _value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _known_sequence(base: str) -> tuple[Counter, str]:
    """Sends a fixed mix of requests, each on its own connection (so that with several
    workers, several answer), from 4 threads; returns what each (method, route, status)
    must count, and the id of the one session trained."""
    ((x, y),) = batches(1, seed=5)
    with httpx.Client(base_url=base, timeout=30) as http:
        session = Session.create(http, session_body(mlp_parameters(5), {"type": "sgd", "lr": 0.1}))
    auth = {"Authorization": f"Bearer {session.token}", "Connection": "close"}
    train = {"inputs": {"x": x.tolist(), "y": {"data": y.tolist(), "dtype": "int64"}}}
    calls = (
        [("GET", "/livez", None, {}, 200, "/livez")] * 12
        + [("POST", "/v1/evaluate", SEED, {}, 200, "/v1/evaluate")] * 8
        + [("POST", "/v1/evaluate", {"expr": "y = nope(x)", "inputs": {"x": 1}}, {}, 422,
            "/v1/evaluate")] * 4
        + [("GET", "/no/such/path", None, {}, 404, "unmatched")] * 5
        + [("DELETE", "/livez", None, {}, 405, "/livez")] * 2
        + [("GET", f"/v1/sessions/{session.id}", None, {}, 401, "/v1/sessions/{session_id}")] * 3
    )  # fmt: skip
    # Trains one after the other: concurrent ones on one session would be recomputed.
    trains = [("POST", f"/v1/sessions/{session.id}/train", train, auth, 200,
               "/v1/sessions/{session_id}/train")] * 6  # fmt: skip
    expected = Counter({("POST", "/v1/sessions", "201"): 1})
    failures: list[str] = []

    def worker(part):
        with httpx.Client(base_url=base, timeout=30, headers={"Connection": "close"}) as http:
            for method, path, body, headers, status, _ in part:
                r = http.request(method, path, json=body, headers=headers)
                if r.status_code != status:
                    failures.append(f"{method} {path}: {r.status_code} {r.text[:200]}")

    threads = [threading.Thread(target=worker, args=(calls[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    worker(trains)
    assert not failures, failures
    for method, _, _, _, status, route in calls + trains:
        expected[method, route, str(status)] += 1
    return expected, session.id


def _settled(http: httpx.Client, expected: Counter) -> dict:
    """The scrape once every expected request is counted (a worker counts a request just
    after its answer is sent, so a scrape racing it may be a moment early)."""
    deadline = time.monotonic() + 10
    while True:
        samples = _scrape(http)
        done = _requests(samples)
        if sum(done.values()) >= sum(expected.values()) or time.monotonic() > deadline:
            return samples


@pytest.fixture(scope="module", params=[1, 2], ids=["1-worker", "2-workers"])
def metered_server(request, tmp_path_factory):
    workers = request.param
    port = free_port()
    data_dir = tmp_path_factory.mktemp(f"metrics{workers}") / "data"
    command = [sys.executable, "-m", "service", "serve", "--port", str(port),
               "--workers", str(workers)]  # fmt: skip
    env = {"AUTOGRAD_LOG_LEVEL": "info", "AUTOGRAD_LOG_FORMAT": "json"}
    with run_server(command, port, data_dir, **env) as base:
        yield base, workers, data_dir.parent / f"server-{port}.log"


def _access_lines(log_path: Path, expected: Counter) -> list[dict]:
    """The JSON access lines once every expected request has one (each is written just
    after its answer)."""
    deadline = time.monotonic() + 10
    while True:
        lines = [json.loads(line) for line in log_path.read_text().splitlines() if line]
        access = [line for line in lines if line["logger"] == logs.ACCESS_LOGGER]
        if len(access) >= sum(expected.values()) or time.monotonic() > deadline:
            return access


def test_metrics_count_a_known_sequence_exactly(metered_server):
    base, workers, log_path = metered_server
    scrape = ("GET", "/metrics", "200")
    with httpx.Client(base_url=base, timeout=30) as http:
        assert http.get("/livez").status_code == 200  # run_server's start-up probes, and this
        before = _requests(_scrape(http))
        startup_livez = before.pop(("GET", "/livez", "200"))
        assert before == {}, before  # nothing else was served yet
        expected, _ = _known_sequence(base)
        expected["GET", "/livez", "200"] += startup_livez

        samples = _settled(http, expected + Counter({scrape: 1}))
        counted = _requests(samples)
        assert counted.pop(scrape) >= 1
        assert counted == expected
        for (method, route, status), count in expected.items():
            labels = {"method": method, "route": route, "status": status}
            assert (
                _value(samples, "autograd_http_request_duration_seconds_count", **labels) == count
            )
        assert _value(samples, "autograd_engine_seconds_count", endpoint="evaluate_program") == 8
        assert _value(samples, "autograd_engine_seconds_count", endpoint="session_train") == 6
        assert _value(samples, "autograd_store_seconds_count", operation="create") == 1
        assert _value(samples, "autograd_store_seconds_count", operation="commit") == 6
        assert _value(samples, "autograd_live_sessions") == 1
        assert _value(samples, "autograd_store_up") == 1

        # Scrapes answered by any worker agree, and each counts the scrapes before it.
        scrapes = _requests(_scrape(http))[scrape]
        for _ in range(4):
            again = _requests(_scrape(http))
            scrapes += 1
            assert again.pop(scrape) == scrapes
            assert again == expected

    # One JSON access line per request, with the method, route, status, duration and id.
    access = _access_lines(log_path, expected + Counter({scrape: scrapes + 1}))
    seen = Counter((a["method"], a["route"] or "unmatched", str(a["status"])) for a in access)
    assert seen.pop(scrape) == scrapes + 1
    assert seen == expected
    for line in access:
        assert HEX32.fullmatch(line["request_id"]) and line["duration_ms"] >= 0
        assert line["level"] == "info" and isinstance(line["pid"], int)
    if workers == 2:
        assert len({line["pid"] for line in access}) == 2, "one worker served everything"


def test_the_cli_empties_a_given_multiprocess_dir_and_removes_one_it_made(tmp_path, monkeypatch):
    import uvicorn

    from service import cli, metrics

    seen = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: seen.append(
        Path(__import__("os").environ[metrics.MULTIPROC_ENV])))  # fmt: skip
    monkeypatch.setattr(cli, "run_workers", uvicorn.run)  # several workers' own runner
    monkeypatch.setenv("AUTOGRAD_DATA_DIR", str(tmp_path / "data"))  # serve opens the store
    monkeypatch.delenv(metrics.MULTIPROC_ENV, raising=False)
    cli.main(["serve", "--workers", "2"])
    made = seen.pop()
    assert made.name.startswith("autograd-metrics-") and not made.exists()
    assert metrics.MULTIPROC_ENV not in __import__("os").environ

    given = tmp_path / "prom"
    given.mkdir()
    (given / "counter_123.db").write_bytes(b"stale")
    (given / "keep.txt").write_text("not ours")
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(given))
    cli.main(["serve", "--workers", "2"])
    assert seen.pop() == given
    assert sorted(p.name for p in given.iterdir()) == ["keep.txt"]
