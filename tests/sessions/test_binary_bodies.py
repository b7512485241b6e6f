"""forward, backward and train take their request as a safetensors file (service/binary.py):
the same call as its JSON, answered and stored alike, against a real server."""

import json
import struct

import numpy as np
import pytest

from service.wire import safetensors as binary
from tests.sessions.helpers import (
    Session,
    array,
    assert_same,
    batch_inputs,
    batches,
    mlp_parameters,
    problem,
    session_body,
)
from tests.sessions.test_journal import MOMENTUM, everything, stored, worker

OCTET = {"content-type": "application/octet-stream"}


def post_file(session: Session, suffix: str, data: bytes, **headers: str):
    return session.http.post(session.path + suffix, content=data,
                             headers=session.headers(**OCTET, **headers))  # fmt: skip


def train_file(x: np.ndarray, y: np.ndarray, **request) -> bytes:
    return binary.encode(request, {"/inputs/x": x, "/inputs/y": y})


def test_a_safetensors_train_step_is_the_json_step(http):
    params, data = mlp_parameters(), batches(3)
    by_json = Session.create(http, session_body(params, MOMENTUM))
    by_file = Session.create(http, session_body(params, MOMENTUM))
    for x, y in data:
        answered = by_json.train(x, y, include=["grad_norms"])
        response = post_file(by_file, "/train", train_file(x, y, include=["grad_norms"]))
        assert response.status_code == 200, response.text
        assert response.json() == answered  # losses, norms and version, to the bit
    assert_same(everything(by_file), everything(by_json))


def test_backward_and_forward_take_files_too(http):
    params, [(x, y)] = mlp_parameters(), batches(1)
    session = Session.create(http, session_body(params, MOMENTUM))
    twin = Session.create(http, session_body(params, MOMENTUM))
    backward = post_file(session, "/backward", binary.encode(
        {"include": ["grads"]}, {"/inputs/x": x, "/inputs/y": y}))  # fmt: skip
    assert backward.status_code == 200, backward.text
    expected = twin.ok("POST", "/backward", {"inputs": batch_inputs(x, y), "include": ["grads"]})
    assert backward.json() == expected
    forward = post_file(session, "/forward", binary.encode(
        {"outputs": ["logits"]}, {"/inputs/x": x}))  # fmt: skip
    assert forward.status_code == 200, forward.text
    logits = array(forward.json()["outputs"]["logits"])
    reference = twin.ok("POST", "/forward", {"inputs": {"x": batch_inputs(x, y)["x"]},
                                             "outputs": ["logits"]})  # fmt: skip
    assert_same({"logits": logits}, {"logits": array(reference["outputs"]["logits"])})


def test_several_batches_go_by_index(http):
    params, data = mlp_parameters(), batches(3)
    by_json = Session.create(http, session_body(params, MOMENTUM))
    by_file = Session.create(http, session_body(params, MOMENTUM))
    answered = by_json.ok("POST", "/train", {"batches": [
        {"inputs": batch_inputs(x, y)} for x, y in data]})  # fmt: skip
    tensors = {f"/batches/{i}/inputs/{n}": a for i, (x, y) in enumerate(data)
               for n, a in (("x", x), ("y", y))}  # fmt: skip
    response = post_file(by_file, "/train", binary.encode({"batches": []}, tensors))
    assert response.status_code == 200, response.text
    assert response.json() == answered and len(answered["losses"]) == 3
    assert_same(everything(by_file), everything(by_json))


def test_an_idempotent_file_step_steps_once(http):
    session = Session.create(http, session_body(mlp_parameters(), MOMENTUM))
    [(x, y)] = batches(1)
    data = train_file(x, y)
    first = post_file(session, "/train", data, **{"Idempotency-Key": "file-1"})
    again = post_file(session, "/train", data, **{"Idempotency-Key": "file-1"})
    assert first.status_code == again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true" and again.json() == first.json()
    assert session.info()["step_count"] == 1
    other = post_file(session, "/train", train_file(x * 2, y), **{"Idempotency-Key": "file-1"})
    problem(other, 422, "idempotency-key-reused")


def _raw_file(header: dict, payload: bytes = b"") -> bytes:
    return _raw_text(json.dumps(header), payload)


def _raw_text(header: str, payload: bytes = b"") -> bytes:
    text = header.encode()
    return struct.pack("<Q", len(text)) + text + payload


@pytest.mark.parametrize(
    ("data", "pointer", "words"),
    [
        (b"", "", "8-byte header"),
        (b"\xff" * 20, "", "claims"),
        (_raw_file({"__metadata__": {"request": "{nope"}}), "", "not JSON"),
        (_raw_file({"__metadata__": {"request": "[1]"}}), "", "object"),
        (
            _raw_file({"__metadata__": {"request": '{"a":' * 3000 + "1" + "}" * 3000}}),
            "",
            "not JSON",
        ),  # nested too deep: refused, not a RecursionError  # fmt: skip
        (_raw_text('{"d": ' + "[" * 5000 + "]" * 5000 + "}"), "", "not JSON"),  # a header
        (binary.encode({}, {"inputs/x": np.zeros(2, np.float32)}), "", "JSON pointer"),
        (binary.encode({}, {"/x" + "/a" * 100_000: np.zeros(1, np.float32)}), "", "levels deep"),
        (
            binary.encode({"batches": [{}]}, {"/batches/²/x": np.zeros(1, np.float32)}),
            "",
            "not an index",
        ),  # fmt: skip
        (
            binary.encode({"batches": [{}]}, {"/batches/00/x": np.zeros(1, np.float32)}),
            "",
            "not an index",
        ),  # fmt: skip
        (
            binary.encode({"batches": []}, {"/batches/" + "9" * 5000: np.zeros(1, np.float32)}),
            "",
            "not an index",
        ),  # fmt: skip
        (
            _raw_file(
                {"/inputs/x": {"dtype": [], "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4
            ),
            "/inputs/x",
            "tensors are F32",
        ),  # fmt: skip
        (binary.encode({}, {"/inputs/x": np.zeros(2, np.float16)}), "/inputs/x", "F16"),
        (binary.encode({}, {"/inputs/x": np.zeros(2, np.int32)}), "/inputs/x", "I32"),
        (
            binary.encode({"inputs": {"x": 1}}, {"/inputs/x": np.zeros(2, np.float32)}),
            "/inputs/x",
            "already has a value",
        ),  # fmt: skip
        (
            binary.encode({"batches": []}, {"/batches/1/x": np.zeros(2, np.float32)}),
            "",
            "not an index of a list of 0",
        ),  # fmt: skip
        (
            _raw_file({"/inputs/x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"1"),
            "",
            "readable",
        ),  # fmt: skip
        (
            _raw_file(
                {"/inputs/x": {"dtype": "BOOL", "shape": [1], "data_offsets": [0, 1]}}, b"\x07"
            ),
            "/inputs/x",
            "0 or 1",
        ),  # fmt: skip
    ],
    ids=lambda value: "file" if isinstance(value, bytes) else value[:24],
)
def test_a_malformed_file_is_a_400_naming_the_fault(http, data, pointer, words):
    session = Session.create(http, session_body(mlp_parameters(), MOMENTUM))
    body = problem(post_file(session, "/train", data), 400, "invalid-safetensors")
    assert words in body["detail"] and body["errors"][0]["pointer"] == pointer
    assert session.info()["version"] == 0


def test_a_file_request_is_validated_as_its_json_would_be(http):
    session = Session.create(http, session_body(mlp_parameters(), MOMENTUM))
    [(x, y)] = batches(1)
    wrong = problem(post_file(session, "/train", train_file(x, y, include=["nope"])), 422,
                    "validation-error")  # fmt: skip
    assert wrong["errors"][0]["pointer"] == "/include/0"
    bad_shape = problem(post_file(session, "/train", train_file(x[:, :2], y)), 422)
    assert "x" in bad_shape["detail"]
    # requires_grad comes from the request; the bytes become its data
    flagged = binary.encode({"inputs": {"x": {"requires_grad": True}}},
                            {"/inputs/x": np.zeros(3, np.int64)})  # fmt: skip
    integer = problem(post_file(session, "/forward", flagged), 422, "invalid-tensor")
    assert integer["errors"][0]["pointer"] == "/inputs/x/requires_grad"
    null = problem(post_file(session, "/train", train_file(x, y, outputs=None)), 422,
                   "validation-error")  # fmt: skip
    assert null["errors"][0]["pointer"] == "/outputs" and "null" in null["detail"]
    problem(post_file(session, "/step", binary.encode({}, {})), 415, "unsupported-media-type")
    assert session.info()["version"] == 0


def test_a_worker_replays_a_file_step_to_the_same_bits(tmp_path):
    data_dir, params, data = tmp_path / "data", mlp_parameters(), batches(3)
    with worker(data_dir) as a, worker(data_dir) as b:
        session = Session.create(a, session_body(params, MOMENTUM))
        for x, y in data:
            assert post_file(session, "/train", train_file(x, y)).status_code == 200
        # (the first step is stored whole: its file outweighs the state it starts from)
        assert sorted(stored(data_dir, session.id).journal) == ["000000000002", "000000000003"]
        assert_same(everything(Session(b, session.id, session.token)), everything(session))


def test_what_fastapi_would_refuse_is_refused_as_fastapi_does(http):
    """The session route's fast path declines a too-long id or key: FastAPI's 422 names it."""
    session = Session.create(http, session_body(mlp_parameters(), MOMENTUM))
    [(x, y)] = batches(1)
    long_id = session.http.post(f"/v1/sessions/{'a' * 65}/train", content=train_file(x, y),
                                headers=session.headers(**OCTET))  # fmt: skip
    assert problem(long_id, 422, "validation-error")["errors"][0]["parameter"] == "session_id"
    for body in (train_file(x, y), None):
        extra = {"Idempotency-Key": "k" * 256}
        if body is None:
            response = session.request("POST", "/train", {"inputs": batch_inputs(x, y)}, **extra)
        else:
            response = post_file(session, "/train", body, **extra)
        refused = problem(response, 422, "validation-error")
        assert refused["errors"][0]["parameter"] == "Idempotency-Key"
    assert session.info()["version"] == 0
