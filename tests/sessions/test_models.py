"""Model templates over HTTP: `GET /v1/models` and each template's program, sessions built
from a template (an MLP of chosen sizes here; ResNet-18 in test_resnet.py) trained as torch
trains the same nn.Sequential, the program as a real program of the graph language (what
`/v1/evaluate` computes from its nodes equals the session's forward), seeds, and
state_dict export."""

import numpy as np
import torch
from safetensors.numpy import load

from tests.sessions.helpers import Session, array, batches, problem, tensor

SGD = {"type": "sgd", "lr": 0.1, "momentum": 0.9}
SIZES = [6, 8, 3]


def _mlp_session(http, **extra) -> Session:
    body = {
        "model": {"name": "mlp", "sizes": SIZES, "seed": 0},
        "optimizer": SGD,
        "expr": "loss = cross_entropy(output, y)",
        "loss": "loss",
        **extra,
    }
    return Session.create(http, body)


def _state_dict(session: Session) -> dict[str, np.ndarray]:
    response = session.http.get(f"{session.path}/state_dict", headers=session.headers())
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    return load(response.content)


def test_the_templates_are_listed(http):
    listed = http.get("/v1/models").json()["models"]
    by_name = {m["name"]: m for m in listed}
    assert {"resnet18", "mlp"} <= by_name.keys()
    assert by_name["resnet18"]["num_parameters"] == 11_689_512
    assert by_name["resnet18"]["defaults"]["num_classes"] == 1000
    assert by_name["mlp"]["defaults"]["sizes"] == [784, 256, 256, 10]
    assert by_name["resnet18"]["example"] == {"name": "resnet18", "num_classes": 1000, "seed": 0}


def test_a_templates_program_is_a_nodes_program(http):
    answer = http.get("/v1/models/resnet18", params={"num_classes": 10, "mode": "eval"})
    assert answer.status_code == 200, answer.text
    described = answer.json()
    assert described["inputs"] == ["input"] and described["outputs"] == ["output"]
    nodes = {n["id"]: n for n in described["nodes"]}
    assert nodes["conv1"]["inputs"] == ["input", "conv1.weight", None]
    assert nodes["bn1"]["attrs"]["training"] is False and described["counters"] == []
    assert nodes["output"]["op"] == "linear" and described["layers"]["output"] == "fc"
    assert described["parameters"]["fc.weight"] == {"shape": [10, 512], "dtype": "float32"}
    assert described["buffers"]["bn1.num_batches_tracked"] == {"shape": [], "dtype": "int64"}
    train = http.get("/v1/models/resnet18").json()
    assert len(train["counters"]) == 20
    assert {n["attrs"]["training"] for n in train["nodes"] if n["op"] == "batch_norm"} == {True}
    mlp = http.get("/v1/models/mlp", params={"sizes": "4,5,2", "activation": "tanh"}).json()
    assert [n["op"] for n in mlp["nodes"]] == ["linear", "tanh", "linear"]
    bad = http.get("/v1/models/mlp", params={"sizes": "4,x"})
    assert problem(bad, 422, "validation-error")["errors"][0]["pointer"] == "/sizes/1"


def test_evaluate_runs_the_program_as_the_session_does(http):
    session = _mlp_session(http)
    info = session.ok("GET", "?include=program")
    assert info["program"]["model"] == {"name": "mlp", "sizes": SIZES, "activation": "relu",
                                        "bias": True, "dropout": 0.0, "seed": 0,
                                        "dtype": "float32"}  # fmt: skip
    program = info["program"]["model_program"]
    assert program["outputs"] == ["output"] and len(program["nodes"]) == 3
    x = np.random.default_rng(0).standard_normal((5, 6)).astype(np.float32)
    forward = session.ok("POST", "/forward", {"inputs": {"input": tensor(x)}, "binary": True,
                                              "outputs": ["output"]})  # fmt: skip
    state = _state_dict(session)
    evaluated = http.post("/v1/evaluate", json={
        "nodes": program["nodes"], "outputs": ["output"], "binary": True,
        "inputs": {"input": tensor(x), **{k: tensor(v) for k, v in state.items()}}})  # fmt: skip
    assert evaluated.status_code == 200, evaluated.text
    assert (
        array(evaluated.json()["outputs"]["output"]).tobytes()
        == array(forward["outputs"]["output"]).tobytes()
    )


def test_an_mlp_session_trains_as_torchs_sequential(http):
    session = _mlp_session(http)
    start = _state_dict(session)
    assert sorted(start) == ["0.bias", "0.weight", "2.bias", "2.weight"]
    bound = 1 / np.sqrt(SIZES[0])  # nn.Linear's init
    assert 0.9 * bound < np.abs(start["0.weight"]).max() <= bound
    data = batches(5, n_in=SIZES[0], out=SIZES[-1])
    for x, y in data:
        session.ok("POST", "/train", {"inputs": {"input": tensor(x), "y": tensor(y)}})

    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    model.load_state_dict({k: torch.from_numpy(v) for k, v in start.items()})
    opt = torch.optim.SGD(model.parameters(), **{k: v for k, v in SGD.items() if k != "type"})
    for x, y in data:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(
            model(torch.from_numpy(x)), torch.from_numpy(y)
        ).backward()
        opt.step()
    ours = _state_dict(session)
    for name, value in model.state_dict().items():
        np.testing.assert_allclose(ours[name], value.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)


def test_seeds_make_the_same_weights(http):
    a, b = _mlp_session(http), _mlp_session(http)
    other = _mlp_session(http, model={"name": "mlp", "sizes": SIZES, "seed": 1})
    wide = _mlp_session(http, model={"name": "mlp", "sizes": SIZES, "dtype": "float64"})
    sa, sb, so = _state_dict(a), _state_dict(b), _state_dict(other)
    assert all(sa[k].tobytes() == sb[k].tobytes() for k in sa)
    assert not np.array_equal(sa["0.weight"], so["0.weight"])
    assert _state_dict(wide)["0.weight"].dtype == np.float64


def test_a_head_program_may_not_take_the_models_names(http):
    body = {"model": {"name": "mlp", "sizes": SIZES}, "expr": "output = input * 2"}
    problem(http.post("/v1/sessions", json=body), 422, "invalid-session")
    body = {"model": {"name": "mlp", "sizes": SIZES}, "loss": "loss"}
    assert (
        problem(http.post("/v1/sessions", json=body), 422, "unknown-name")["errors"][0]["pointer"]
        == "/loss"
    )
    # without a session loss, a request brings its own
    session = Session.create(http, {"model": {"name": "mlp", "sizes": SIZES, "seed": 0}})
    x, y = batches(1, n_in=SIZES[0], out=SIZES[-1])[0]
    trained = session.ok("POST", "/train", {"inputs": {"input": tensor(x), "y": tensor(y)},
                                            "expr": "loss = cross_entropy(output, y)",
                                            "loss": "loss"})  # fmt: skip
    assert trained["step_count"] == 1
    wrong = session.request("POST", "/forward", {"inputs": {"input": tensor(np.zeros((2, 5),
                                                                        np.float32))}})  # fmt: skip
    body = problem(wrong, 422, "shape-mismatch")
    assert body["layer"] == "0" and body["model"] == "mlp" and body["shapes"] == [[2, 5], [8, 6]]
    unnamed = session.request("POST", "/forward", {"inputs": {"x": tensor(x)}})
    body = problem(unnamed, 422, "unknown-name")
    assert body["errors"][0]["pointer"] == "/inputs/input" and "the batch has x" in body["detail"]


def test_the_json_state_of_a_model_session_restores_it(http):
    session = _mlp_session(http)
    x, y = batches(1, n_in=SIZES[0], out=SIZES[-1])[0]
    session.ok("POST", "/train", {"inputs": {"input": tensor(x), "y": tensor(y)}})
    document = session.state()  # JSON, base64 tensors: a SessionCreate
    assert document["model"]["name"] == "mlp" and "0.weight" in document["parameters"]
    restored = http.post("/v1/sessions", json=document)
    assert restored.status_code == 201, restored.text
    twin = Session(http, restored.json()["id"], restored.json()["token"])
    assert twin.state() == document
    batch = {"inputs": {"input": tensor(x), "y": tensor(y)}}
    assert session.ok("POST", "/train", batch)["loss"] == twin.ok("POST", "/train", batch)["loss"]
