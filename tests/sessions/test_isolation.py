"""Only a session's own token opens it: for every session endpoint, a request without a token
(401, before any lookup) or with another session's token (the same 404 as a session that does
not exist) is refused, and changes nothing."""

import pytest

from tests.sessions.helpers import (
    Session,
    batch_inputs,
    batches,
    mlp_parameters,
    problem,
    session_body,
    tensor,
)

CONFIG = {"type": "sgd", "lr": 0.1, "momentum": 0.9}
((X, Y),) = batches(1, seed=41)
INPUTS = batch_inputs(X, Y)
ENDPOINTS = [
    ("GET", "", None),
    ("DELETE", "", None),
    ("POST", "/fork", None),
    ("GET", "/state", None),
    ("POST", "/forward", {"inputs": {"x": INPUTS["x"]}}),
    ("POST", "/backward", {"inputs": INPUTS}),
    ("POST", "/step", {}),
    ("POST", "/zero_grad", {}),
    ("POST", "/train", {"inputs": INPUTS}),
    ("GET", "/parameters/W1", None),
    ("PUT", "/parameters/W1", tensor(mlp_parameters(2)["W1"])),
    ("PATCH", "/parameters/W1", {"requires_grad": False}),
    ("DELETE", "/parameters/W1", None),
]


@pytest.fixture(scope="module")
def victim(http):
    session = Session.create(http, session_body(mlp_parameters(), CONFIG))
    session.train(X, Y)  # gradients and optimizer state to protect too
    return session


@pytest.fixture(scope="module")
def intruder(http):
    return Session.create(http, session_body(mlp_parameters(1), CONFIG))


def _as(session: Session, token: str | None, authorization: str | None = None) -> Session:
    other = Session(session.http, session.id, token or "")
    if token is None:
        other.headers = lambda **extra: ({"Authorization": authorization} if authorization
                                         else {}) | extra  # fmt: skip
    return other


@pytest.mark.parametrize(("method", "suffix", "body"), ENDPOINTS,
                         ids=[f"{m} {s or '/'}" for m, s, _ in ENDPOINTS])  # fmt: skip
def test_every_endpoint_refuses_missing_and_foreign_tokens(victim, intruder, method, suffix, body):
    before = (victim.info()["version"], victim.state())
    for authorization in (None, "Basic dXNlcjpwYXNz", "Bearer", "Token abc"):
        r = _as(victim, None, authorization).request(method, suffix, body)
        doc = problem(r, 401, "unauthorized")
        assert r.headers["www-authenticate"] == 'Bearer realm="sessions"'
        assert victim.id not in doc["detail"]
    foreign = problem(_as(victim, intruder.token).request(method, suffix, body), 404,
                      "session-not-found")  # fmt: skip
    garbage = problem(_as(victim, "x" * 43).request(method, suffix, body), 404)
    missing = Session(victim.http, "0" * 32, victim.token)
    absent = problem(missing.request(method, suffix, body), 404)
    # The same answer whether the session exists or not, but for the id it names.
    for doc in (garbage, absent):
        for key in ("type", "title", "status"):
            assert doc[key] == foreign[key]
        assert doc["detail"].replace("0" * 32, victim.id) == foreign["detail"]
    assert (victim.info()["version"], victim.state()) == before
    assert intruder.info()["version"] == 0
