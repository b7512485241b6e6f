"""What the session tests share: a small client for one session, the MLP they train, and the
same training done by torch as the reference."""

import base64
import threading
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import torch

from service.wire import jsonio
from tests.float_ref import assert_float32_close

PROBLEM_JSON = "application/problem+json"

MLP = "h = relu(linear(x, W1, b1))\nlogits = linear(h, W2, b2)\nloss = cross_entropy(logits, y)"
N_IN, N_HIDDEN, N_OUT, BATCH = 6, 8, 3, 5


def tensor(array: np.ndarray, **extra: Any) -> dict[str, Any]:
    """The exact (base64) wire form of an array."""
    array = np.asarray(array)
    dtype = {"f": array.dtype.name, "i": "int64", "b": "bool"}[array.dtype.kind]
    raw = array.astype(np.dtype(dtype).newbyteorder("<")).tobytes()
    return {"b64": base64.b64encode(raw).decode(), "shape": list(array.shape), "dtype": dtype,
            **extra}  # fmt: skip


def array(wire: dict[str, Any]) -> np.ndarray:
    """An answered tensor as numpy, exactly."""
    dtype = np.dtype(wire["dtype"])
    if "b64" in wire:
        raw = base64.b64decode(wire["b64"])
        return np.frombuffer(raw, dtype.newbyteorder("<")).reshape(wire["shape"]).astype(dtype)
    return np.array(wire["data"], dtype=dtype).reshape(wire["shape"])


def mlp_parameters(seed: int = 0, n_in: int = N_IN, hidden: int = N_HIDDEN, out: int = N_OUT):
    rng = np.random.default_rng(seed)
    return {
        "W1": (rng.standard_normal((hidden, n_in)) * 0.4).astype(np.float32),
        "b1": (rng.standard_normal(hidden) * 0.1).astype(np.float32),
        "W2": (rng.standard_normal((out, hidden)) * 0.4).astype(np.float32),
        "b2": (rng.standard_normal(out) * 0.1).astype(np.float32),
    }


def batches(n: int, seed: int = 1, n_in: int = N_IN, out: int = N_OUT, size: int = BATCH):
    rng = np.random.default_rng(seed)
    return [
        (rng.standard_normal((size, n_in)).astype(np.float32), rng.integers(0, out, size))
        for _ in range(n)
    ]


def batch_inputs(x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    return {"x": tensor(x), "y": tensor(y)}


def session_body(parameters, optimizer, expr: str = MLP, **extra: Any) -> dict[str, Any]:
    return {
        "parameters": {n: tensor(a) for n, a in parameters.items()},
        "optimizer": optimizer,
        "expr": expr,
        "loss": "loss",
        **extra,
    }


def torch_optimizer(config: dict[str, Any], params: list[torch.Tensor]) -> torch.optim.Optimizer:
    kwargs = {k: v for k, v in config.items() if k != "type"}
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    return cls[config["type"]](params, **kwargs)


def torch_mlp_loss(p: dict[str, torch.Tensor], x: np.ndarray, y: np.ndarray) -> torch.Tensor:
    F = torch.nn.functional
    h = torch.relu(F.linear(torch.from_numpy(x), p["W1"], p["b1"]))
    return F.cross_entropy(F.linear(h, p["W2"], p["b2"]), torch.from_numpy(np.asarray(y)))


class TorchRun(dict):
    """torch's results by name, with `float64`: the same run from the same float32 values
    computed in float64, which a float32 result is judged against (tests/float_ref.py)."""

    def __init__(self, results: dict[str, np.ndarray], float64: dict[str, np.ndarray]):
        super().__init__(results)
        self.float64 = float64


def _torch_train(parameters, config, data, accumulate, wide) -> dict[str, np.ndarray]:
    cast = (lambda a: a.astype(np.float64) if a.dtype == np.float32 else a) if wide else None
    p = {n: torch.tensor(cast(a) if wide else a, requires_grad=True) for n, a in parameters.items()}
    opt = torch_optimizer(config, list(p.values()))
    for i in range(0, len(data), accumulate):
        opt.zero_grad()
        for x, y in data[i : i + accumulate]:
            torch_mlp_loss(p, cast(x) if wide else x, y).backward()
        opt.step()
    return {n: t.detach().numpy() for n, t in p.items()}


def torch_train(parameters, config, data, accumulate: int = 1) -> TorchRun:
    """torch.optim's training loop: per step, zero_grad, `accumulate` backward calls (one
    batch each), step; and the same loop in float64."""
    return TorchRun(
        _torch_train(parameters, config, data, accumulate, wide=False),
        _torch_train(parameters, config, data, accumulate, wide=True),
    )


@dataclass
class Session:
    """One session over HTTP: its id, its token, and calls that check for success."""

    http: httpx.Client
    id: str
    token: str
    created: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, http: httpx.Client, body: dict[str, Any]) -> "Session":
        response = post_json(http, "/v1/sessions", body)
        assert response.status_code == 201, response.text
        created = response.json()
        return cls(http, created["id"], created["token"], created)

    @property
    def path(self) -> str:
        return f"/v1/sessions/{self.id}"

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **extra}

    def request(self, method: str, suffix: str = "", body: Any = None, **headers: str):
        kwargs: dict[str, Any] = {"headers": self.headers(**headers)}
        if body is not None:
            kwargs["content"] = jsonio.dumps(body)
            kwargs["headers"]["content-type"] = "application/json"
        return self.http.request(method, self.path + suffix, **kwargs)

    def ok(self, method: str, suffix: str = "", body: Any = None, **headers: str) -> Any:
        response = self.request(method, suffix, body, **headers)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def train(self, x: np.ndarray, y: np.ndarray, **extra: Any) -> dict[str, Any]:
        return self.ok("POST", "/train", {"inputs": batch_inputs(x, y), **extra})

    def info(self) -> dict[str, Any]:
        return self.ok("GET")

    def parameters(self) -> dict[str, np.ndarray]:
        return {
            name: array(self.ok("GET", f"/parameters/{name}?binary=true")["value"])
            for name in self.info()["parameters"]
        }

    def state(self) -> dict[str, Any]:
        """The whole state as JSON with base64 tensors: equal states compare equal."""
        return self.ok("GET", "/state?format=json&binary=true")


def post_json(http: httpx.Client, path: str, body: Any, **headers: str) -> httpx.Response:
    return http.post(
        path, content=jsonio.dumps(body), headers={"content-type": "application/json", **headers}
    )


def problem(response: httpx.Response, status: int, slug: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    if slug is not None:
        assert body["type"] == f"/problems/{slug}", body
    return body


def assert_close(ours: dict[str, np.ndarray], theirs: TorchRun) -> None:
    """Equal to torch's run: float32 results judged against its float64 run (so no BLAS
    kernel's summation order decides), others to rtol 1e-10."""
    assert ours.keys() == theirs.keys()
    for name in ours:
        if ours[name].dtype == np.float32:
            assert_float32_close(ours[name], theirs[name], theirs.float64[name], name)
        else:
            np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-10, err_msg=name)


def assert_same(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray]) -> None:
    """Bit-identical."""
    assert ours.keys() == theirs.keys()
    for name in ours:
        assert ours[name].dtype == theirs[name].dtype, name
        assert ours[name].tobytes() == theirs[name].tobytes(), name


@dataclass
class TrainStream:
    """A client thread posting the same `train` call to one server, one after the other, until
    the server is gone (a transport error): the step counts it was answered, in order."""

    base: str
    session: Session
    inputs: dict[str, Any]
    enough_after: int  # `enough` is set once this many steps are acknowledged
    acknowledged: list[int] = field(default_factory=list)
    enough: threading.Event = field(default_factory=threading.Event)

    def start(self) -> "TrainStream":
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        body = jsonio.dumps({"inputs": self.inputs})
        headers = {**self.session.headers(), "content-type": "application/json"}
        with httpx.Client(base_url=self.base, timeout=30) as http:
            while True:
                try:
                    r = http.post(f"{self.session.path}/train", content=body, headers=headers)
                except httpx.TransportError:
                    return  # the server is gone
                assert r.status_code == 200, r.text
                self.acknowledged.append(r.json()["step_count"])
                if len(self.acknowledged) >= self.enough_after:
                    self.enough.set()

    def join(self, timeout: float = 30) -> None:
        self.thread.join(timeout)
