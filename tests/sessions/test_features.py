"""The session resource's operations one by one: forward, backward, step (and its dry run),
zero_grad, per-request programs, init specs, fork, the state file, deletion."""

import json
import math
import struct

import numpy as np
import pytest
import torch
from safetensors.numpy import load, save

from tests.sessions.helpers import (
    Session,
    TorchRun,
    array,
    assert_close,
    batch_inputs,
    batches,
    mlp_parameters,
    post_json,
    problem,
    session_body,
    tensor,
    torch_mlp_loss,
)

CONFIG = {"type": "adam", "lr": 0.01, "amsgrad": True}
DATA = batches(3, seed=71)
(X, Y) = DATA[0]
INPUTS = batch_inputs(X, Y)


@pytest.fixture
def session(http):
    return Session.create(http, session_body(mlp_parameters(), CONFIG))


def _torch_params(params):
    return {n: torch.tensor(a, requires_grad=True) for n, a in params.items()}


def test_the_created_session_describes_itself(session):
    info = session.created
    assert info["version"] == 0 and info["step_count"] == 0 and info["loss"] == "loss"
    assert info["parameters"]["W1"] == {"shape": [8, 6], "dtype": "float32",
                                        "requires_grad": True, "grad": False,
                                        "optimizer_state": []}  # fmt: skip
    assert info["optimizer"] == {"type": "adam", "lr": 0.01, "betas": [0.9, 0.999],
                                 "eps": 1e-8, "weight_decay": 0.0, "amsgrad": True,
                                 "maximize": False}  # fmt: skip
    assert info["program"] == {"expr": session_body({}, {})["expr"]}
    assert "token" not in session.info()


def test_forward_answers_the_outputs_without_recording_anything(session):
    answer = session.ok("POST", "/forward", {"inputs": INPUTS, "binary": True})
    assert set(answer["outputs"]) == {"h", "logits", "loss"} and answer["version"] == 0
    p = _torch_params(mlp_parameters())
    np.testing.assert_allclose(array(answer["outputs"]["loss"]),
                               torch_mlp_loss(p, X, Y).detach().numpy(), rtol=1e-6)  # fmt: skip
    assert not any(v["grad"] for v in session.info()["parameters"].values())
    # Named outputs need only their inputs: inference without labels.
    logits = session.ok("POST", "/forward", {"inputs": {"x": INPUTS["x"]}, "outputs": ["logits"]})
    assert list(logits["outputs"]) == ["logits"]
    doc = problem(session.request("POST", "/forward", {"inputs": INPUTS, "outputs": ["zz"]}), 422)
    assert doc["errors"][0]["pointer"] == "/outputs/0"


def test_backward_accumulates_and_answers_loss_norms_and_grads(session):
    first = session.ok("POST", "/backward", {"inputs": INPUTS, "include": ["grads"],
                                             "outputs": ["logits"], "binary": True})  # fmt: skip
    second = session.ok("POST", "/backward", {"inputs": INPUTS, "include": ["grads"],
                                              "binary": True})  # fmt: skip
    p = _torch_params(mlp_parameters())
    loss = torch_mlp_loss(p, X, Y)
    loss.backward()
    assert first["loss"] == pytest.approx(loss.item(), rel=1e-6)
    assert list(first["outputs"]) == ["logits"] and second["outputs"] == {}
    for name, t in p.items():
        np.testing.assert_allclose(array(first["grads"][name]), t.grad.numpy(), rtol=1e-5,
                                   atol=1e-7)  # fmt: skip
        np.testing.assert_allclose(array(second["grads"][name]), 2 * t.grad.numpy(),
                                   rtol=1e-5, atol=1e-7)  # fmt: skip
        assert second["grad_norms"][name] == pytest.approx(2 * t.grad.norm().item(), rel=1e-5)
    assert second["version"] == 2 and session.info()["step_count"] == 0


def test_a_dry_run_answers_the_step_and_changes_nothing(session):
    session.ok("POST", "/backward", {"inputs": INPUTS})
    before = session.state()
    dry = session.ok("POST", "/step", {"dry_run": True, "binary": True})
    assert dry["dry_run"] and dry["version"] == 1 and dry["step_count"] == 0
    assert session.state() == before
    old = session.parameters()
    real = session.ok("POST", "/step")
    assert (real["version"], real["step_count"], real["updated"]) == (2, 1, sorted(old))
    new = session.parameters()
    for name in old:
        np.testing.assert_array_equal(array(dry["delta"][name]), new[name] - old[name])
        assert real["update_norms"][name] == pytest.approx(dry["update_norms"][name])


def test_zero_grad_drops_or_zeroes_the_gradients(session):
    session.ok("POST", "/backward", {"inputs": INPUTS})
    session.ok("POST", "/zero_grad", {"set_to_none": False})
    grad = session.ok("GET", "/parameters/W1?include=grad")["grad"]
    assert np.all(array(grad) == 0)
    assert session.ok("POST", "/zero_grad")["version"] == 3
    assert session.ok("GET", "/parameters/W1?include=grad")["grad"] is None
    assert not session.info()["parameters"]["W1"]["grad"]


def test_a_request_program_extends_or_replaces_the_sessions(session):
    probs = session.ok("POST", "/forward", {"inputs": INPUTS, "expr": "p = softmax(logits, dim=1)",
                                            "outputs": ["p", "logits"]})  # fmt: skip
    np.testing.assert_allclose(np.asarray(probs["outputs"]["p"]["data"]).sum(1), 1, rtol=1e-6)
    # This step minimises its own loss: the session's plus an L2 penalty on W1.
    reg = "reg = loss + 0.01 * (W1 ** 2).sum()"
    answer = session.ok("POST", "/train", {"inputs": INPUTS, "expr": reg, "loss": "reg"})

    def torch_step(wide):
        cast = (lambda a: a.astype(np.float64)) if wide else (lambda a: a)
        p = _torch_params({n: cast(a) for n, a in mlp_parameters().items()})
        opt = torch.optim.Adam(p.values(), lr=0.01, amsgrad=True)
        total = torch_mlp_loss(p, cast(X), Y) + 0.01 * (p["W1"] ** 2).sum()
        total.backward()
        opt.step()
        return total.item(), {n: t.detach().numpy() for n, t in p.items()}

    (loss32, theirs), (_, wide) = torch_step(False), torch_step(True)
    assert answer["loss"] == pytest.approx(loss32, rel=1e-6)
    assert_close(session.parameters(), TorchRun(theirs, wide))
    # Replace: a different model for this call only, here a linear one on W1's first 3 rows.
    replaced = {"inputs": INPUTS, "program": "replace",
                "expr": "z = linear(x, W1)[:, :3]\nloss = cross_entropy(z, y)"}  # fmt: skip
    session.ok("POST", "/zero_grad")
    assert session.ok("POST", "/backward", replaced)["grad_norms"].keys() == {"W1"}


def test_a_nodes_program_session(http):
    body = {
        "parameters": {"w": tensor(np.ones((3, 1), np.float32))},
        "optimizer": {"type": "sgd", "lr": 0.1},
        "nodes": [{"id": "z", "op": "matmul", "inputs": ["x", "w"]},
                  {"id": "loss", "op": "mse_loss", "inputs": ["z", "t"]}],
        "outputs": ["z", "loss"],
        "loss": "loss",
    }  # fmt: skip
    session = Session.create(http, body)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = np.array([[1.0], [2.0]], np.float32)
    session.ok("POST", "/train", {"inputs": {"x": tensor(x), "t": tensor(t)}})
    stepped = []
    for dtype in (torch.float32, torch.float64):
        w = torch.ones(3, 1, requires_grad=True, dtype=dtype)
        xt, tt = torch.from_numpy(x).to(dtype), torch.from_numpy(t).to(dtype)
        torch.nn.functional.mse_loss(xt @ w, tt).backward()
        stepped.append({"w": (w - 0.1 * w.grad).detach().numpy()})
    assert_close(session.parameters(), TorchRun(*stepped))


def test_init_specs_follow_torch_nn_init(http):
    shape = [64, 100]
    specs = {
        "zeros": {"init": "zeros", "shape": [3]},
        "ones": {"init": "ones", "shape": [3], "dtype": "float64"},
        "normal": {"init": "normal", "shape": shape, "mean": 1.0, "std": 0.5, "seed": 1},
        "uniform": {"init": "uniform", "shape": shape, "a": -2.0, "b": 3.0, "seed": 2},
        "linear": {"init": "kaiming_uniform", "shape": shape, "a": math.sqrt(5), "seed": 3},
        "he": {"init": "kaiming_uniform", "shape": shape, "nonlinearity": "relu",
               "mode": "fan_out", "seed": 4},
        "glorot": {"init": "xavier_uniform", "shape": shape, "gain": 2.0, "seed": 5},
        "frozen": {"init": "normal", "shape": [2], "seed": 6, "requires_grad": False},
        "he_normal": {"init": "kaiming_normal", "shape": shape, "nonlinearity": "relu",
                      "seed": 7},
        "glorot_normal": {"init": "xavier_normal", "shape": shape, "seed": 8},
    }  # fmt: skip
    body = {"parameters": specs, "expr": "loss = (linear * normal).sum()", "loss": "loss"}
    session = Session.create(http, body)
    values = session.parameters()
    assert values["zeros"].tolist() == [0, 0, 0] and values["zeros"].dtype == np.float32
    assert values["ones"].tolist() == [1, 1, 1] and values["ones"].dtype == np.float64
    assert values["normal"].mean() == pytest.approx(1.0, abs=0.02)
    assert values["normal"].std() == pytest.approx(0.5, rel=0.03)
    assert values["uniform"].min() >= -2 and values["uniform"].max() < 3
    for name, bound in [("linear", 1 / math.sqrt(100)), ("he", math.sqrt(6 / 64)),
                        ("glorot", 2 * math.sqrt(6 / 164))]:  # fmt: skip
        assert np.abs(values[name]).max() <= bound
        assert np.abs(values[name]).max() > 0.95 * bound  # the range is used to its end
        assert values[name].std() == pytest.approx(bound / math.sqrt(3), rel=0.05)
    assert values["he_normal"].std() == pytest.approx(math.sqrt(2 / 100), rel=0.03)
    assert values["glorot_normal"].std() == pytest.approx(math.sqrt(2 / 164), rel=0.03)
    assert session.info()["parameters"]["frozen"]["requires_grad"] is False
    again = Session.create(http, body).parameters()  # the seeds make them reproducible
    assert all(np.array_equal(values[n], again[n]) for n in values)


def test_fork_copies_everything_and_then_lives_apart(session):
    for x, y in DATA[:2]:
        session.train(x, y)
    response = session.request("POST", "/fork")
    assert response.status_code == 201 and response.headers["cache-control"] == "no-store"
    fork = Session(session.http, response.json()["id"], response.json()["token"])
    assert fork.id != session.id and fork.token != session.token
    assert response.headers["location"] == f"/v1/sessions/{fork.id}"
    assert fork.state() == session.state() and fork.info()["step_count"] == 2
    original = session.state()
    fork.train(*DATA[2])
    assert session.state() == original
    stranger = Session(session.http, fork.id, session.token)  # the fork has its own token
    problem(stranger.request("GET"), 404, "session-not-found")


def test_the_state_file_restores_the_session(http, session):
    for x, y in DATA:
        session.train(x, y)
    session.ok("POST", "/backward", {"inputs": INPUTS})
    session.ok("PATCH", "/parameters/b1", {"requires_grad": False})
    response = session.request("GET", "/state")
    assert response.headers["content-type"] == "application/octet-stream"
    tensors = load(response.content)
    assert set(tensors) >= {"param/W1", "grad/W1", "state/W1/exp_avg", "state/W1/step",
                            "state/W1/max_exp_avg_sq"}  # fmt: skip
    assert tensors["state/W1/step"].shape == () and tensors["state/W1/step"] == 3
    restored = http.post("/v1/sessions", content=response.content,
                         headers={"content-type": "application/octet-stream"})  # fmt: skip
    assert restored.status_code == 201, restored.text
    copy = Session(http, restored.json()["id"], restored.json()["token"])
    assert copy.state() == session.state()
    assert copy.info()["parameters"]["b1"]["requires_grad"] is False
    # The JSON form restores too, and both go on training identically.
    as_json = session.ok("GET", "/state?binary=true", None, Accept="application/json")
    again = Session.create(http, as_json)
    for s in (session, copy, again):
        s.train(*DATA[0])
    assert copy.state() == session.state() == again.state()


def _file(header: dict, payload: bytes = b"") -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + payload


def test_a_damaged_state_file_is_refused(http):
    cases = {b"": "invalid-safetensors", b"\xff" * 20: "invalid-safetensors",
             b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ": "invalid-session",
             _file({"__metadata__": ["x"]}): "invalid-session",
             _file({"p": {"dtype": [], "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4):
                 "invalid-session",
             save({"param/w": np.zeros(1, np.float32)},
                  metadata={"format": "autograd-session", "program": "[" * 5000 + "]" * 5000,
                            "optimizer": "{}", "requires_grad": "{}", "step_count": "²"}):
                 "invalid-session"}  # fmt: skip
    for content, slug in cases.items():
        r = http.post("/v1/sessions", content=content,
                      headers={"content-type": "application/octet-stream"})  # fmt: skip
        problem(r, 400 if slug == "invalid-safetensors" else 422, slug)
    problem(http.post("/v1/sessions", content=b"x", headers={"content-type": "text/plain"}), 415)


def test_parameters_are_added_replaced_and_deleted(session):
    new = session.request("PUT", "/parameters/extra", tensor(np.ones(4, np.float32)))
    assert new.status_code == 201 and new.json()["requires_grad"] is True
    assert new.headers["location"] == f"{session.path}/parameters/extra"
    replaced = session.request("PUT", "/parameters/extra", {"data": [1.0, 2.0],
                                                           "requires_grad": False})  # fmt: skip
    assert replaced.status_code == 200 and replaced.json()["shape"] == [2]
    problem(session.request("PUT", "/parameters/not-a-name", [1.0]), 422, "invalid-session")
    assert session.request("DELETE", "/parameters/extra").status_code == 204
    problem(session.request("GET", "/parameters/extra"), 404, "parameter-not-found")
    problem(session.request("GET", "/parameters/W1?include=momentum"), 422, "validation-error")
    assert session.info()["version"] == 3


def test_a_deleted_session_is_gone(http, session):
    assert session.request("DELETE").status_code == 204
    problem(session.request("GET"), 404, "session-not-found")
    problem(session.request("DELETE"), 404, "session-not-found")
    problem(post_json(http, f"{session.path}/train", {"inputs": INPUTS},
                      Authorization=f"Bearer {session.token}"), 404)  # fmt: skip


def test_train_answers_gradient_norms_only_when_asked(http):
    params = mlp_parameters()
    (x, y), (x2, y2) = batches(2)
    session = Session.create(http, session_body(params, {"type": "sgd", "lr": 0.1}))
    plain = session.train(x, y)
    assert "grad_norms" not in plain and "grads" not in plain
    asked = session.train(x2, y2, include=["grad_norms"])
    assert asked["grad_norms"].keys() == params.keys()
    for name, g in array_grads(session).items():  # the last batch's, kept in .grad
        assert asked["grad_norms"][name] == pytest.approx(float(np.linalg.norm(g)), rel=1e-5)


def array_grads(session):
    return {
        name: array(session.ok("GET", f"/parameters/{name}?include=grad&binary=true")["grad"])
        for name in session.info()["parameters"]
    }
