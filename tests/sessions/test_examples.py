"""The OpenAPI examples are true: the request examples work, and the answers documented for
them are what the server answers (but for ids, tokens and times)."""

import math

from service.examples import sessions as examples
from tests.sessions.helpers import Session, post_json

VARYING = {"id", "token", "created_at", "updated_at", "last_used_at", "expires_at"}


def _same(ours, documented, where="") -> None:
    if isinstance(documented, dict):
        assert isinstance(ours, dict) and ours.keys() == documented.keys(), where
        for key in documented:
            if key not in VARYING:
                _same(ours[key], documented[key], f"{where}/{key}")
    elif isinstance(documented, list):
        assert isinstance(ours, list) and len(ours) == len(documented), where
        for i, (a, b) in enumerate(zip(ours, documented, strict=True)):
            _same(a, b, f"{where}/{i}")
    elif isinstance(documented, float):
        assert math.isclose(ours, documented, rel_tol=1e-5, abs_tol=1e-7), (where, ours)
    else:
        assert ours == documented, (where, ours, documented)


def test_the_walkthrough_answers_what_the_examples_say(http):
    created = post_json(http, "/v1/sessions", examples.CREATE["mlp-init-specs"]["value"])
    assert created.status_code == 201
    _same(created.json(), examples.CREATED["value"])
    session = Session(http, created.json()["id"], created.json()["token"])
    steps = [
        ("/forward", examples.FORWARD["predict"], examples.FORWARDED),
        ("/backward", examples.BACKWARD["accumulate"], examples.BACKWARDED),
        ("/step", examples.STEP["step"], examples.STEPPED),
        ("/train", examples.TRAIN["one-batch"], examples.TRAINED),
    ]
    for suffix, request, answer in steps:
        _same(session.ok("POST", suffix, request["value"]), answer["value"], suffix)
    parameter = session.ok("GET", "/parameters/b2?include=grad,optimizer_state")
    _same(parameter, examples.PARAMETER["value"])
    _same(session.info(), examples.SESSION["value"])


def test_every_request_example_is_accepted(http):
    for name, example in examples.CREATE.items():
        response = post_json(http, "/v1/sessions", example["value"])
        assert response.status_code == 201, (name, response.text)
    session = Session.create(http, examples.CREATE["mlp-init-specs"]["value"])
    for suffix, group in [("/forward", examples.FORWARD), ("/backward", examples.BACKWARD),
                          ("/step", examples.STEP), ("/train", examples.TRAIN)]:  # fmt: skip
        for name, example in group.items():
            response = session.request("POST", suffix, example["value"])
            assert response.status_code == 200, (suffix, name, response.text)
    for example in examples.PATCH_PARAMETER.values():
        assert session.request("PATCH", "/parameters/W1", example["value"]).status_code == 200
    assert (
        session.request(
            "PUT", "/parameters/fc_weight", examples.PUT_PARAMETER["new-head"]["value"]
        ).status_code
        == 201
    )
    assert (
        session.request(
            "PUT", "/parameters/W2", examples.PUT_PARAMETER["tensor"]["value"]
        ).status_code
        == 200
    )
