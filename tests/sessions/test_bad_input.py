"""Bad requests are clear 4xx problem documents and leave the session exactly as it was:
unknown parameter names, shape-changing updates, a loss that is not a scalar, optimizer
hyperparameters torch refuses, programs that do not use the parameters."""

import pytest

from tests.sessions.helpers import (
    MLP,
    Session,
    batch_inputs,
    batches,
    mlp_parameters,
    post_json,
    problem,
    session_body,
    tensor,
)

CONFIG = {"type": "adam", "lr": 0.01}
((X, Y),) = batches(1, seed=51)
INPUTS = batch_inputs(X, Y)


@pytest.fixture
def session(http):
    s = Session.create(http, session_body(mlp_parameters(), CONFIG))
    s.train(X, Y)
    s.ok("POST", "/backward", {"inputs": INPUTS})  # an accumulated gradient to protect
    return s


def _refused(session: Session, method: str, suffix: str, body, status: int, slug: str) -> dict:
    before = (session.info()["version"], session.state())
    doc = problem(session.request(method, suffix, body), status, slug)
    assert (session.info()["version"], session.state()) == before
    return doc


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_unknown_parameter_names(session, method):
    body = {"requires_grad": False} if method == "PATCH" else None
    doc = _refused(session, method, "/parameters/W9", body, 404, "parameter-not-found")
    assert "'W9'" in doc["detail"] and "W1" in doc["detail"]


def test_a_batch_input_named_like_a_parameter(session):
    doc = _refused(session, "POST", "/train", {"inputs": {**INPUTS, "W1": [[1.0]]}}, 422,
                   "invalid-session")  # fmt: skip
    assert doc["errors"][0]["pointer"] == "/inputs/W1"


def test_a_shape_changing_update(session):
    doc = _refused(session, "PATCH", "/parameters/W1", {"value": tensor(X)}, 422, "shape-change")
    assert doc["errors"][0]["pointer"] == "/value"
    assert doc["shape"] == list(mlp_parameters()["W1"].shape)


def test_a_batch_of_the_wrong_width(session):
    doc = _refused(session, "POST", "/train", {"inputs": batch_inputs(X[:, :4], Y)}, 422,
                   "shape-mismatch")  # fmt: skip
    assert doc["program"] == "session"


def test_a_missing_batch_input(session):
    doc = _refused(session, "POST", "/train", {"inputs": {"x": INPUTS["x"]}}, 422, "unknown-name")
    assert "'y'" in doc["detail"]


def test_a_loss_that_is_not_a_scalar(session):
    doc = _refused(session, "POST", "/train", {"inputs": INPUTS, "loss": "logits"}, 422,
                   "loss-not-scalar")  # fmt: skip
    assert doc["shape"] == [len(X), 3]
    _refused(session, "POST", "/backward", {"inputs": INPUTS, "loss": "h"}, 422, "loss-not-scalar")


def test_a_loss_that_is_not_an_output(session):
    _refused(session, "POST", "/train", {"inputs": INPUTS, "loss": "nope"}, 422, "unknown-name")


def test_a_request_program_that_does_not_use_the_parameters(session):
    body = {"inputs": {"x": INPUTS["x"]}, "expr": "loss = (x * x).mean()", "program": "replace"}
    _refused(session, "POST", "/train", body, 422, "parameters-unused")
    _refused(session, "POST", "/backward", body, 422, "parameters-unused")


def test_training_with_every_parameter_frozen(session):
    for name in mlp_parameters():
        session.ok("PATCH", f"/parameters/{name}", {"requires_grad": False})
    _refused(session, "POST", "/train", {"inputs": INPUTS}, 422, "parameters-unused")


def test_a_session_whose_program_uses_no_parameter(http):
    body = session_body(mlp_parameters(), CONFIG, expr="loss = (x * x).mean()")
    doc = problem(post_json(http, "/v1/sessions", body), 422, "parameters-unused")
    assert doc["errors"][0]["pointer"] == "/expr"


@pytest.mark.parametrize(
    ("optimizer", "pointer", "message"),
    [
        ({"type": "sgd", "lr": -0.1}, "/optimizer/lr", "Invalid learning rate: -0.1"),
        ({"type": "sgd", "lr": 0.1, "nesterov": True}, "/optimizer/nesterov", "Nesterov"),
        ({"type": "sgd", "lr": 0.1, "momentum": 0.9, "dampening": 0.1, "nesterov": True},
         "/optimizer/nesterov", "Nesterov"),
        ({"type": "sgd", "momentum": -1}, "/optimizer/momentum", "Invalid momentum value"),
        ({"type": "sgd", "weight_decay": -1e-4}, "/optimizer/weight_decay", "weight_decay"),
        ({"type": "adam", "lr": -1e-3}, "/optimizer/lr", "Invalid learning rate"),
        ({"type": "adam", "betas": [0.9, 1.0]}, "/optimizer/betas/1", "beta parameter at index 1"),
        ({"type": "adamw", "eps": -1.0}, "/optimizer/eps", "Invalid epsilon value"),
    ],
)  # fmt: skip
def test_hyperparameters_torch_refuses(http, optimizer, pointer, message):
    doc = problem(post_json(http, "/v1/sessions", session_body(mlp_parameters(), optimizer)),
                  422, "invalid-optimizer")  # fmt: skip
    assert doc["errors"][0]["pointer"] == pointer
    assert message in doc["detail"]


@pytest.mark.parametrize(
    ("change", "status", "slug", "pointer"),
    [
        ({"optimizer": {"type": "rmsprop"}}, 422, "validation-error", "/optimizer"),
        ({"optimizer": {"type": "sgd", "lr": 0.1, "foreach": True}}, 422, "validation-error",
         "/optimizer/foreach"),
        ({"loss": "nope"}, 422, "unknown-name", "/loss"),
        ({"parameters": {"W1": {"init": "kaiming_uniform", "shape": [3]}}}, 422,
         "invalid-session", "/parameters/W1"),
        ({"parameters": {"W1": {"init": "glorot", "shape": [3]}}}, 422, "validation-error",
         "/parameters/W1/init"),
        ({"parameters": {"W1": {"data": [1, 2], "dtype": "int64"}}}, 422, "invalid-session",
         "/parameters/W1"),
        ({"parameters": {"1x": [1.0]}}, 422, "validation-error", "/parameters/1x"),
        ({"buffers": {"W1": [1.0]}}, 422, "invalid-session", "/buffers/W1"),
        ({"grads": {"W7": [1.0]}}, 422, "invalid-session", "/grads/W7"),
        ({"grads": {"W1": [1.0]}}, 422, "shape-change", "/grads/W1"),
        ({"expr": "loss = ("}, 422, "program-syntax", "/expr"),
    ],
)  # fmt: skip
def test_invalid_sessions_are_refused_with_a_pointer(http, change, status, slug, pointer):
    body = session_body(mlp_parameters(), CONFIG, expr=MLP)
    for key, value in change.items():
        body[key] = {**body[key], **value} if key == "parameters" else value
    doc = problem(post_json(http, "/v1/sessions", body), status, slug)
    assert doc["errors"][0]["pointer"] == pointer, doc
