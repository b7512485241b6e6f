"""The seed tutorial's ResNet-18 over HTTP, against torch: a session built from the resnet18
template (`{"model": {"name": "resnet18"}}`) is given the weights of a torchvision-
architecture torch model built here (tests/engine/test_resnet.py's reference; torchvision is
not installed beside this torch build) through a safetensors upload (PUT .../state_dict, as
`model.load_state_dict(load_file(...))`). Then the tutorial's step — forward on
rand(1, 3, 64, 64), `loss = (prediction - labels).sum()` with labels = rand(1, 1000),
backward, SGD(lr=1e-2, momentum=0.9).step() — must give torch's forward output, gradients,
running statistics, parameters and momentum.

How the 3 steps are compared (as tests/engine/test_resnet.py, which found why): with batch 1
the batch norms of layer4 normalise over 2x2 pixels and a step moves conv1 by ~100x its
initial scale, so float32 training is chaotic — torch's own float32 parameters after 3 steps
differ from its float64 ones by ~20%. So:

- float32, resynchronised per step: before each step torch's model and optimizer, and a
  float64 twin of them, take the session's state (parameters, buffers, momentum, read with
  GET .../state), all take the same step, and everything is compared after it. Each float32
  tensor is judged by its distance from the twin's, next to torch's own float32 distance
  (tests/float_ref.py): two float32 results cannot agree better than each agrees with the
  exact value, and how they differ is the summation order each BLAS kernel picks;
- float64, free-running: 3 steps without resynchronising (one `train` call with 3 batches),
  and the parameters and running statistics after them equal torch's (to 1e-8).

The finetuning part (every parameter frozen, `fc` replaced by a 512 -> 10 layer, the
optimizer holding all of them) ends with the frozen parameters bit-identical and `fc` equal
to torch's. Batch 1 at 64x64 throughout (and one float64 batch-8 step at 32x32), for 2 cores."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import torch
from safetensors.numpy import load
from safetensors.torch import save

from tests.engine.test_resnet import ResNet
from tests.float_ref import assert_float32_close
from tests.service.conftest import free_port, run_server
from tests.sessions.conftest import SHARED, serve_command
from tests.sessions.helpers import Session, array, problem, tensor

SGD = {"type": "sgd", "lr": 1e-2, "momentum": 0.9}
LOSS = "loss = (output - labels).sum()"
RTOL = 1e-4


@pytest.fixture(scope="module")
def http(tmp_path_factory) -> Iterator[httpx.Client]:
    """A server of its own: a float64 ResNet-18 with gradients and momentum stores 280 MB,
    more than the default AUTOGRAD_MAX_SESSION_BYTES (256 MiB)."""
    port = free_port()
    data_dir = tmp_path_factory.mktemp("resnet") / "data"
    env = {**SHARED, "AUTOGRAD_MAX_SESSION_BYTES": str(512 * 2**20)}
    with (
        run_server(serve_command(port), port, data_dir, **env) as base,
        httpx.Client(base_url=base, timeout=120) as client,
    ):
        yield client


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- helpers ---------------------------------------------------------------------------------


def _torch_model(seed: int, num_classes: int = 1000, dtype=torch.float32) -> ResNet:
    torch.manual_seed(seed)
    return ResNet(num_classes=num_classes).to(dtype)


def _upload(session: Session, state: dict[str, torch.Tensor], strict: bool = True):
    data = save({k: v.detach().contiguous() for k, v in state.items()})
    return session.http.put(
        f"{session.path}/state_dict?strict={str(strict).lower()}",
        content=data,
        headers=session.headers(**{"content-type": "application/octet-stream"}),
    )


def _model_session(http, theirs: ResNet, dtype: str = "float32", **model) -> Session:
    """A resnet18 session holding `theirs`'s weights, copied through a safetensors file."""
    spec = {"name": "resnet18", "num_classes": theirs.fc.out_features, "seed": 1,
            "dtype": dtype, **model}  # fmt: skip
    session = Session.create(http, {"model": spec, "optimizer": SGD})
    loaded = _upload(session, theirs.state_dict())
    assert loaded.status_code == 200, loaded.text
    assert loaded.json()["missing_keys"] == loaded.json()["unexpected_keys"] == []
    assert len(loaded.json()["loaded"]) == 122
    return session


def _state(session: Session) -> dict[str, dict[str, np.ndarray]]:
    """GET .../state (safetensors): params, grads, buffers, optimizer state by name."""
    response = session.http.get(f"{session.path}/state", headers=session.headers())
    assert response.status_code == 200, response.text
    groups: dict[str, dict[str, np.ndarray]] = {"param": {}, "grad": {}, "buffer": {}}
    groups["momentum"] = {}
    for key, value in load(response.content).items():
        kind, _, name = key.partition("/")
        if kind == "state":
            name, _, slot = name.partition("/")
            assert slot == "momentum_buffer", key
            kind = "momentum"
        groups[kind][name] = value
    return groups


def _data(seed: int, shape=(1, 3, 64, 64), classes: int = 1000, dtype=np.float32):
    """The tutorial's torch.rand data and labels."""
    rng = np.random.default_rng(seed)
    return rng.random(shape).astype(dtype), rng.random((shape[0], classes)).astype(dtype)


def _inputs(x: np.ndarray, labels: np.ndarray) -> dict:
    return {"input": tensor(x), "labels": tensor(labels)}


def _np(t) -> np.ndarray:
    return t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def _close(ours: np.ndarray, theirs, what: str, rtol=RTOL, twin=None) -> None:
    """A float32 result judged against `twin`, torch's float64 twin's (tests/float_ref.py);
    float64 ones to rtol, with an absolute floor of rtol x the tensor's largest magnitude."""
    b = _np(theirs)
    assert ours.shape == b.shape and ours.dtype == b.dtype, what
    if ours.dtype == np.float32:
        assert twin is not None, f"{what}: a float32 result needs torch's float64 twin"
        assert_float32_close(ours, b, _np(twin), what)
        return
    scale = float(np.abs(b).max()) if b.size else 0.0
    np.testing.assert_allclose(ours, b, rtol=rtol, atol=rtol * scale, err_msg=what)


class Torch:
    """The torch reference: a model and SGD(lr=1e-2, momentum=0.9), and (float32 models) a
    float64 twin taking the same steps, which measures torch's own float32 error."""

    def __init__(self, model: ResNet) -> None:
        self.model = model
        self.opt = torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)
        self.twin = None
        if next(model.parameters()).dtype == torch.float32:
            self.twin = copy.deepcopy(model).double()
            self.twin_opt = torch.optim.SGD(self.twin.parameters(), lr=1e-2, momentum=0.9)

    def models(self):
        yield self.model, self.opt
        if self.twin is not None:
            yield self.twin, self.twin_opt

    def replace_fc(self, fc: torch.nn.Linear) -> None:
        """model.fc = nn.Linear(512, 10), all parameters frozen before (the seed's order)."""
        for model, _ in self.models():
            for p in model.parameters():
                p.requires_grad = False
        self.model.fc = fc
        self.opt = torch.optim.SGD(self.model.parameters(), lr=1e-2, momentum=0.9)
        if self.twin is not None:
            self.twin.fc = copy.deepcopy(fc).double()
            self.twin_opt = torch.optim.SGD(self.twin.parameters(), lr=1e-2, momentum=0.9)

    def sync(self, state) -> None:
        """Take the session's parameters, buffers and momentum."""
        tensors = {k: torch.from_numpy(v) for k, v in {**state["param"],
                   **state["buffer"]}.items()}  # fmt: skip
        for model, opt in self.models():
            dtype = next(model.parameters()).dtype
            model.load_state_dict(tensors)
            for name, p in model.named_parameters():
                if name in state["momentum"]:
                    buf = torch.from_numpy(state["momentum"][name].copy()).to(dtype)
                    opt.state[p]["momentum_buffer"] = buf

    def step(self, x, labels) -> float:
        """The tutorial's step; the loss (float32 model's) before it."""
        outs = []
        for model, opt in self.models():
            dtype = next(model.parameters()).dtype
            opt.zero_grad()
            out = model(torch.from_numpy(x).to(dtype))
            loss = (out - torch.from_numpy(labels).to(dtype)).sum()
            loss.backward()
            opt.step()
            outs.append((out, loss.item()))
        self.output = outs[0][0]
        self.twin_output = outs[1][0] if len(outs) > 1 else None
        self.twin_loss = outs[1][1] if len(outs) > 1 else None
        return outs[0][1]

    def compare(self, state, grads=False, rtol=RTOL) -> None:
        """The session's state (GET .../state) against the model's, tensor by tensor."""
        twin = dict(self.twin.named_parameters()) if self.twin is not None else {}
        twin_buffers = dict(self.twin.named_buffers()) if self.twin is not None else {}
        for name, p in self.model.named_parameters():
            q = twin.get(name)
            _close(state["param"][name], p, name, rtol, q)
            if grads:
                assert (name in state["grad"]) == (p.grad is not None), name
                if p.grad is not None:
                    _close(state["grad"][name], p.grad, f"grad of {name}", rtol,
                           None if q is None else q.grad)  # fmt: skip
            if p in self.opt.state:
                buf = self.opt.state[p]["momentum_buffer"]
                twin_buf = None if q is None else self.twin_opt.state[q]["momentum_buffer"]
                _close(state["momentum"][name], buf, f"momentum of {name}", rtol, twin_buf)
        for name, b in self.model.named_buffers():
            if b.dtype == torch.int64:
                assert int(state["buffer"][name]) == int(b), name
            else:
                _close(state["buffer"][name], b, name, rtol, twin_buffers.get(name))


# -- the tutorial's training step ------------------------------------------------------------


def test_three_sgd_steps_float32_each_equal_torchs(http):
    theirs = Torch(_torch_model(0))
    session = _model_session(http, theirs.model)
    x, labels = _data(0)
    for step in range(1, 4):
        if step > 1:  # resynchronise torch on the session's state (see the module docstring)
            theirs.sync(_state(session))
        answer = session.ok("POST", "/train", {
            "inputs": _inputs(x, labels), "expr": LOSS, "loss": "loss",
            "outputs": ["output"], "binary": True})  # fmt: skip
        assert (answer["step_count"], answer["version"]) == (step, step + 1)
        loss = theirs.step(x, labels)
        _close(array(answer["outputs"]["output"]), theirs.output, f"forward output, step {step}",
               twin=theirs.twin_output)  # fmt: skip
        assert_float32_close(
            np.float32(answer["loss"]), np.float32(loss), theirs.twin_loss, f"loss, step {step}"
        )
        # the gradients of this step, the running statistics, the parameters and momentum
        theirs.compare(_state(session), grads=True)
    state = _state(session)
    assert int(state["buffer"]["layer4.1.bn2.num_batches_tracked"]) == 3

    # eval mode: the running statistics, and nothing stored
    version = session.info()["version"]
    answer = session.ok("POST", "/forward", {"inputs": {"input": tensor(x)}, "binary": True})
    theirs.sync(state)
    outs = []
    for model, _ in theirs.models():
        model.eval()
        with torch.no_grad():
            outs.append(model(torch.from_numpy(x).to(next(model.parameters()).dtype)))
    _close(array(answer["outputs"]["output"]), outs[0], "eval forward", twin=outs[1])
    assert answer["version"] == session.info()["version"] == version


def test_three_sgd_steps_float64_free_running_equal_torchs(http):
    theirs = Torch(_torch_model(3, dtype=torch.float64))
    session = _model_session(http, theirs.model, dtype="float64")
    x, labels = _data(3, dtype=np.float64)
    batch = {"inputs": _inputs(x, labels)}
    answer = session.ok("POST", "/train", {"batches": [batch] * 3, "expr": LOSS, "loss": "loss"})
    assert answer["step_count"] == 3
    losses = [theirs.step(x, labels) for _ in range(3)]
    np.testing.assert_allclose(answer["losses"], losses, rtol=1e-8)
    state = _state(session)
    theirs.compare(state, grads=True, rtol=1e-8)
    assert int(state["buffer"]["bn1.num_batches_tracked"]) == 3


def test_a_batch_of_eight_train_step_equals_torchs(http):
    """In float64, as tests/engine/test_resnet.py's: in float32 one ReLU input of layer4 lies
    within float32 rounding of zero, a derivative float32 cannot decide."""
    theirs = Torch(_torch_model(1, dtype=torch.float64))
    session = _model_session(http, theirs.model, dtype="float64")
    x, labels = _data(1, shape=(8, 3, 32, 32), dtype=np.float64)
    session.ok("POST", "/train", {"inputs": _inputs(x, labels), "expr": LOSS, "loss": "loss"})
    theirs.step(x, labels)
    theirs.compare(_state(session), grads=True, rtol=1e-8)


def test_a_training_forward_keeps_the_running_statistics(http):
    theirs = Torch(_torch_model(4))
    session = _model_session(http, theirs.model)
    x, _ = _data(4)
    version = session.info()["version"]
    answer = session.ok("POST", "/forward", {"inputs": {"input": tensor(x)}, "mode": "train",
                                             "binary": True})  # fmt: skip
    assert answer["version"] == version + 1  # as model.train(); with no_grad(): model(x)
    outs = []
    for model, _ in theirs.models():
        with torch.no_grad():
            outs.append(model(torch.from_numpy(x).to(next(model.parameters()).dtype)))
    _close(array(answer["outputs"]["output"]), outs[0], "training forward", twin=outs[1])
    state = _state(session)
    assert state["grad"] == {} and state["momentum"] == {}
    theirs.compare(state)  # running statistics moved, parameters did not


# -- finetuning ------------------------------------------------------------------------------


def test_finetuning_freezes_the_body_and_trains_fc_as_torch(http):
    theirs = Torch(_torch_model(2))
    session = _model_session(http, theirs.model)
    names = list(session.info()["parameters"])
    assert len(names) == 62
    for name in names:  # for param in model.parameters(): param.requires_grad = False
        answer = session.ok("PATCH", f"/parameters/{name}", {"requires_grad": False})
        assert answer["requires_grad"] is False
    torch.manual_seed(5)
    theirs.replace_fc(torch.nn.Linear(512, 10))  # model.fc = nn.Linear(512, 10)
    for name, value in theirs.model.fc.state_dict().items():  # the same new layer, by PUT
        answer = session.ok("PUT", f"/parameters/fc.{name}", tensor(value.numpy()))
        assert answer["shape"] == list(value.shape) and answer["requires_grad"] is True
    frozen = {k: v for k, v in _state(session)["param"].items() if not k.startswith("fc.")}

    x, labels = _data(2, classes=10)
    batch = {"inputs": _inputs(x, labels)}
    session.ok("POST", "/train", {"batches": [batch] * 3, "expr": LOSS, "loss": "loss"})
    for _ in range(3):  # the optimizer holds every parameter, as the seed's
        theirs.step(x, labels)

    state = _state(session)
    for name, value in frozen.items():
        assert state["param"][name].tobytes() == value.tobytes(), name
    assert sorted(state["grad"]) == sorted(state["momentum"]) == ["fc.bias", "fc.weight"]
    theirs.compare(state, grads=True)  # fc, and the body's running statistics moved too
    info = session.info()["parameters"]
    assert info["conv1.weight"]["requires_grad"] is False and info["fc.weight"]["shape"] == [
        10,
        512,
    ]


# -- the state file and the restore ----------------------------------------------------------


def test_a_model_sessions_state_file_restores_it(http):
    session = Session.create(http, {"model": {"name": "resnet18", "seed": 7}, "optimizer": SGD})
    x, labels = _data(5)
    body = {"inputs": _inputs(x, labels), "expr": LOSS, "loss": "loss", "include": ["grad_norms"]}
    session.ok("POST", "/train", body)
    data = http.get(f"{session.path}/state", headers=session.headers()).content
    assert len(data) > 3 * 46_000_000  # parameters, gradients, momentum: over 16 MiB
    restored = http.post("/v1/sessions", content=data,
                         headers={"content-type": "application/octet-stream"})  # fmt: skip
    assert restored.status_code == 201, restored.text
    twin = Session(http, restored.json()["id"], restored.json()["token"])
    assert twin.info()["program"]["model"] == session.info()["program"]["model"]
    a, b = session.ok("POST", "/train", body), twin.ok("POST", "/train", body)
    assert a["loss"] == b["loss"] and a["grad_norms"] == b["grad_norms"]
    ours, theirs = _state(session), _state(twin)  # the same step from the same state
    for group, tensors in ours.items():
        assert tensors.keys() == theirs[group].keys(), group
        for name, value in tensors.items():
            assert value.tobytes() == theirs[group][name].tobytes(), f"{group}/{name}"


# -- bad input -------------------------------------------------------------------------------


def test_wrong_input_shapes_are_refused_naming_the_layer_and_shapes(http):
    session = Session.create(http, {"model": {"name": "resnet18", "seed": 0}})
    wrong = session.request("POST", "/forward", {"inputs": {"input": tensor(np.zeros(
        (1, 1, 64, 64), np.float32))}})  # fmt: skip
    body = problem(wrong, 422, "shape-mismatch")
    assert body["layer"] == "conv1" and body["model"] == "resnet18"
    assert body["shapes"] == [[1, 1, 64, 64], [64, 3, 7, 7]]
    assert body["detail"].startswith("resnet18: layer conv1 (conv2d): Given groups=1, weight of ")
    assert "expected input[1, 1, 64, 64] to have 3 channels" in body["detail"]
    assert body["errors"][0]["pointer"] == "/inputs/input"

    unbatched = session.request("POST", "/forward", {"inputs": {"input": tensor(np.zeros(
        (3, 64, 64), np.float32))}})  # fmt: skip
    body = problem(unbatched, 422, "shape-mismatch")
    assert body["layer"] == "bn1" and "expected 4D input (got 3D input)" in body["detail"]

    small = session.request("POST", "/train", {"inputs": _inputs(*_data(0, (1, 3, 32, 32))),
                                               "expr": LOSS, "loss": "loss"})  # fmt: skip
    body = problem(small, 422, "shape-mismatch")
    assert body["layer"] == "layer4.0.bn1"
    assert "Expected more than 1 value per channel when training" in body["detail"]
    assert session.info()["version"] == 0  # nothing happened


def test_unknown_model_names_and_options_are_refused(http):
    unknown = http.post("/v1/sessions", json={"model": {"name": "resnet50"}})
    body = problem(unknown, 422, "unknown-model")
    assert body["templates"] == ["mlp", "resnet18", "resnet34"]
    assert body["errors"][0]["pointer"] == "/model/name"
    problem(http.get("/v1/models/resnet50"), 404, "model-not-found")
    bad = problem(http.post("/v1/sessions", json={"model": {"name": "resnet18",
                                                            "sizes": [3]}}), 422)  # fmt: skip
    assert bad["errors"][0]["pointer"] == "/model/sizes"
    huge = http.post("/v1/sessions", json={"model": {"name": "mlp", "sizes": [100000, 100000]}})
    assert problem(huge, 422, "limit-exceeded")["limit"] == "max_tensor_elements"


def test_state_files_with_missing_or_mis_shaped_tensors_are_refused(http):
    session = Session.create(http, {"model": {"name": "resnet18", "seed": 0}})
    before = _state(session)["param"]
    ten = _torch_model(0, num_classes=10).state_dict()
    del ten["layer1.0.conv1.weight"]
    ten["extra.weight"] = torch.zeros(2)
    body = problem(_upload(session, ten), 422, "state-dict-mismatch")
    assert body["missing_keys"] == ["layer1.0.conv1.weight"]
    assert body["unexpected_keys"] == ["extra.weight"]
    assert body["mismatched"] == [
        {"key": "fc.weight", "file": [10, 512], "session": [1000, 512]},
        {"key": "fc.bias", "file": [10], "session": [1000]},
    ]
    assert body["detail"].startswith("Error(s) in loading state_dict for resnet18:\n\t")
    assert 'Missing key(s) in state_dict: "layer1.0.conv1.weight"' in body["detail"]
    assert (
        "size mismatch for fc.weight: copying a param with shape (10, 512) from checkpoint, "
        "the shape in current model is (1000, 512)." in body["detail"]
    )
    # strict=false tolerates the missing and unexpected keys, never the shapes
    loose = problem(_upload(session, ten, strict=False), 422, "state-dict-mismatch")
    assert loose["missing_keys"] == [] and len(loose["mismatched"]) == 2
    after = _state(session)["param"]
    assert all(after[k].tobytes() == before[k].tobytes() for k in before)  # nothing loaded
    assert session.info()["version"] == 0

    partial = {k: v for k, v in ten.items() if not k.startswith(("fc.", "extra."))}
    loaded = _upload(session, partial, strict=False).json()
    assert loaded["missing_keys"] == ["layer1.0.conv1.weight", "fc.weight", "fc.bias"]
    assert loaded["unexpected_keys"] == [] and loaded["version"] == 1
    garbage = session.http.put(f"{session.path}/state_dict", content=b"not safetensors",
                               headers=session.headers(**{"content-type":
                                                          "application/octet-stream"}))  # fmt: skip
    problem(garbage, 400, "invalid-safetensors")
