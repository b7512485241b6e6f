"""API keys (issue #12 item 5), in process: the hashed keys file and the CLI that writes it,
which calls need a key and in which header, and the request rate's token bucket and fields.
The same over real servers, with the store's caps: tests/sessions/test_quotas.py."""

import json
import os
import stat

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.cli import main
from service.clients import keys as api_keys
from service.clients.keyring import KeyRing
from service.clients.ratelimit import Buckets, Rate
from service.settings import Settings
from tests.sessions.helpers import mlp_parameters, session_body
from tests.store.conftest import FakeClock

PROBLEM_JSON = "application/problem+json"
SEED = {"expr": "Q = 3*a**3 - b**2", "inputs": {"a": [2.0, 3.0], "b": [6.0, 4.0]}}
BODY = session_body({"W1": mlp_parameters()["W1"][:2, :2]}, {"type": "sgd", "lr": 0.1},
                    expr="loss = (x @ W1).sum()")  # fmt: skip


def problem(response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["type"] == f"/problems/{slug}" and body["status"] == status
    return body


def test_the_cli_prints_a_key_once_and_stores_only_its_hash(tmp_path, capsys):
    path = tmp_path / "keys.json"
    assert main(["keys", "--file", str(path), "add", "alice", "--sessions", "2",
                 "--bytes", "1000", "--rate", "1.5", "--burst", "3"]) == 0  # fmt: skip
    key = capsys.readouterr().out.strip()
    assert key.startswith("agk_") and len(key) > 40
    text = path.read_text()
    assert key not in text
    assert json.loads(text) == {"version": 1, "keys": [{
        "name": "alice", "sha256": api_keys.hash_key(key),
        "max_sessions": 2, "max_bytes": 1000, "rate": 1.5, "burst": 3}]}  # fmt: skip
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert main(["keys", "--file", str(path), "add", "bob"]) == 0
    other = capsys.readouterr().out.strip()
    assert other != key and [k.name for k in api_keys.load(path)] == ["alice", "bob"]
    assert api_keys.load(path)[1].max_sessions is None  # left out: the setting's value
    assert main(["keys", "--file", str(path), "add", "bob"]) == 1  # names are unique
    assert "exists" in capsys.readouterr().err
    assert main(["keys", "--file", str(path), "remove", "alice"]) == 0
    assert [k.name for k in api_keys.load(path)] == ["bob"]


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("{", "not JSON"),
        ('{"keys": []}', "version"),
        ('{"version": 1, "keys": [{"name": "a b", "sha256": "' + "0" * 64 + '"}]}', "name"),
        ('{"version": 1, "keys": [{"name": "a", "sha256": "plain-key"}]}', "sha256"),
        (
            '{"version": 1, "keys": [{"name": "a", "sha256": "' + "0" * 64 + '", "rate": -1}]}',
            "rate",
        ),  # fmt: skip
        (
            '{"version": 1, "keys": [{"name": "a", "sha256": "' + "0" * 64 + '", "max": 1}]}',
            "unknown",
        ),  # fmt: skip
    ],
)
def test_a_malformed_keys_file_is_refused_with_the_reason(text, complaint):
    with pytest.raises(api_keys.KeyFileError, match=complaint):
        api_keys.parse(text)


def test_serve_refuses_to_start_open_when_its_keys_file_is_unusable(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AUTOGRAD_API_KEYS_FILE", str(tmp_path / "missing.json"))
    monkeypatch.setenv("AUTOGRAD_DATA_DIR", str(tmp_path / "data"))
    assert main(["serve"]) == 1
    assert "AUTOGRAD_API_KEYS_FILE is unusable" in capsys.readouterr().err


def test_the_keyring_follows_the_file_and_keeps_the_last_good_keys(tmp_path):
    path, clock = tmp_path / "keys.json", FakeClock()
    alice = api_keys.add(path, "alice")
    ring = KeyRing(path, clock=clock)
    assert ring.lookup(alice).name == "alice" and ring.lookup("agk_nope") is None
    bob = api_keys.add(path, "bob")
    assert ring.lookup(bob) is None  # checked at most once a second
    clock.advance(1.5)
    assert ring.lookup(bob).owner == "key:bob"
    path.write_text("{ broken")
    clock.advance(1.5)
    assert ring.lookup(bob) is not None  # a typo in the file locks nobody out


@pytest.fixture
def keyed(tmp_path):
    path = tmp_path / "keys.json"
    key = api_keys.add(path, "alice")
    settings = Settings(data_dir=tmp_path / "data", api_keys_file=path)
    with TestClient(create_app(settings)) as client:
        yield client, key


def test_with_a_keys_file_every_v1_call_needs_a_known_key(keyed):
    client, key = keyed
    for path in ("/livez", "/readyz", "/metrics", "/docs", "/openapi.json", "/problems"):
        assert client.get(path).status_code == 200, path  # probes and documents stay open
    missing = client.get("/v1/ops")
    problem(missing, 401, "api-key-required")
    assert missing.headers["www-authenticate"] == 'Bearer realm="api"'
    wrong = client.post("/v1/evaluate", json=SEED, headers={"X-API-Key": key + "x"})
    problem(wrong, 401, "api-key-invalid")
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
    assert client.get("/v1/ops", headers={"X-API-Key": key}).status_code == 200
    bearer = client.post("/v1/evaluate", json=SEED, headers={"Authorization": f"Bearer {key}"})
    assert bearer.status_code == 200 and bearer.json()["outputs"]["Q"]["data"] == [-12.0, 65.0]


def test_session_calls_carry_their_token_in_authorization_and_the_key_in_x_api_key(keyed):
    client, key = keyed
    created = client.post("/v1/sessions", json=BODY, headers={"Authorization": f"Bearer {key}"})
    assert created.status_code == 201, created.text
    sid, token = created.json()["id"], created.json()["token"]
    path = f"/v1/sessions/{sid}"
    both = {"Authorization": f"Bearer {token}", "X-API-Key": key}
    assert client.get(path, headers=both).status_code == 200
    # The session's token is not taken for an API key, nor the key for a session token.
    problem(client.get(path, headers={"Authorization": f"Bearer {token}"}), 401,
            "api-key-required")  # fmt: skip
    problem(client.get(path, headers={"Authorization": f"Bearer {key}"}), 401, "api-key-required")
    problem(client.get(path, headers={"X-API-Key": key}), 401, "unauthorized")
    assert client.delete(path, headers=both).status_code == 204


def test_without_a_keys_file_the_service_is_open(client):
    assert client.post("/v1/evaluate", json=SEED).status_code == 200
    assert "ratelimit" not in client.get("/v1/ops").headers  # and unlimited by default


def test_the_bucket_refills_at_the_rate_and_holds_at_most_the_burst():
    clock = FakeClock()
    buckets, rate = Buckets(clock), Rate.of(2.0, 3)
    assert rate.policy == '"client";q=3;w=2'
    verdicts = [buckets.take("a", rate) for _ in range(4)]
    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert [v.remaining for v in verdicts] == [2, 1, 0, 0]
    assert verdicts[-1].retry_after == 1 and verdicts[-1].field() == '"client";r=0;t=2'
    assert buckets.take("b", rate).allowed  # each client its own bucket
    clock.advance(0.5)  # one token back
    assert buckets.take("a", rate).allowed and not buckets.take("a", rate).allowed
    clock.advance(60)  # never more than the burst
    assert [buckets.take("a", rate).allowed for _ in range(4)] == [True, True, True, False]
    assert Rate.of(0, 5) is None and Rate.of(2.5, 0).burst == 3


def test_the_bucket_table_stays_bounded_under_a_flood_of_addresses():
    clock = FakeClock()
    buckets, rate = Buckets(clock, max_clients=100), Rate.of(1.0, 1)
    for i in range(1000):
        buckets.take(f"addr:{i}", rate)
    assert len(buckets._buckets) <= 100


def test_rate_limited_answers_are_429_with_retry_after_and_the_draft_fields(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", rate_limit=1, rate_burst=2)
    with TestClient(create_app(settings)) as client:
        first = client.get("/v1/ops")
        assert first.status_code == 200
        assert first.headers["ratelimit-policy"] == '"client";q=2;w=2'
        assert first.headers["ratelimit"] == '"client";r=1;t=1'
        assert client.get("/v1/ops").status_code == 200
        refused = client.get("/v1/ops")
        body = problem(refused, 429, "rate-limited")
        assert refused.headers["retry-after"] == "1" and "request_id" in body
        assert refused.headers["ratelimit"] == '"client";r=0;t=2'
        assert client.get("/livez").status_code == 200  # probes are never limited
