"""The seed tutorial ("A Gentle Introduction to torch.autograd"), every step over HTTP.

    python examples/seed_tutorial.py [BASE_URL]      # default $AUTOGRAD_URL or
                                                     # http://127.0.0.1:8000

Needs a running server (`python -m service serve`) and httpx; nothing else (no numpy, no
torch): the random data is Python's, sent as base64 float32 bytes. Each notebook cell is
printed as a comment, then what it gives — and where the notebook prints something, the
same text:

1. ResNet-18 (random weights: the pretrained ones cannot be downloaded here) built by the
   server from the resnet18 template; data = rand(1, 3, 64, 64), labels = rand(1, 1000);
   the forward pass, loss = (prediction - labels).sum(), loss.backward(), and
   SGD(lr=1e-2, momentum=0.9).step() — a session keeps the weights and the momentum.
2. Q = 3a³ − b² with backward(gradient=[1., 1.]): the gradients are the vector-Jacobian
   product J^T·v (checked against the Jacobian), and `9*a**2 == a.grad`.
3. Exclusion from the DAG: x + y does not require gradients, x + z does.
4. Finetuning: freeze every parameter, replace fc by nn.Linear(512, 10), SGD over all
   parameters — a training step moves only fc.
"""

from __future__ import annotations

import base64
import math
import os
import random
import sys
from array import array

import httpx

SGD = {"type": "sgd", "lr": 1e-2, "momentum": 0.9}
LOSS = "loss = (output - labels).sum()"
rng = random.Random(0)


class Failed(Exception):
    """The server refused a call: its problem document."""


def rand(*shape: int) -> dict:
    """torch.rand(*shape) as a base64 float32 tensor."""
    values = array("f", (rng.random() for _ in range(math.prod(shape))))
    if sys.byteorder != "little":
        values.byteswap()
    return {"b64": base64.b64encode(values.tobytes()).decode(), "shape": list(shape),
            "dtype": "float32"}  # fmt: skip


def show(t: dict) -> str:
    """A 1-d answered tensor as torch prints it: tensor([True, True]), tensor([36., 81.])."""
    items = []
    for v in t["data"]:
        if isinstance(v, bool):
            items.append(str(v))
        elif float(v).is_integer():
            items.append(f"{v:.0f}.")
        else:
            items.append(f"{v:.4f}")
    return f"tensor([{', '.join(items)}])"


class Client:
    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=base, timeout=120)

    def call(self, method: str, path: str, body=None, token: str | None = None) -> dict:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        response = self.http.request(method, path, json=body, headers=headers)
        if response.status_code >= 400:
            raise Failed(f"{method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else {}


class Session:
    """A model kept on the server: its parameters, gradients and optimizer state."""

    def __init__(self, client: Client, body: dict) -> None:
        self.client = client
        created = client.call("POST", "/v1/sessions", body)
        self.id, self.token = created["id"], created["token"]
        self.parameters = created["parameters"]

    def __call__(self, method: str, suffix: str = "", body=None) -> dict:
        return self.client.call(method, f"/v1/sessions/{self.id}{suffix}", body, self.token)


def training_step(client: Client) -> None:
    print("# model = resnet18(weights=None)  (random weights: no download here)")
    model = Session(client, {"model": {"name": "resnet18", "num_classes": 1000, "seed": 0},
                             "optimizer": SGD})  # fmt: skip
    count = sum(math.prod(p["shape"]) for p in model.parameters.values())
    print(f"ResNet-18 built on the server: {len(model.parameters)} parameters, {count} values")
    print("# data = torch.rand(1, 3, 64, 64); labels = torch.rand(1, 1000)")
    data, labels = rand(1, 3, 64, 64), rand(1, 1000)

    print("# prediction = model(data)  # forward pass")
    print("# loss = (prediction - labels).sum(); loss.backward()  # backward pass")
    answer = model("POST", "/backward", {
        "inputs": {"input": data, "labels": labels}, "expr": LOSS, "loss": "loss",
        "outputs": ["output"], "mode": "train"})  # fmt: skip
    prediction = answer["outputs"]["output"]
    print(f"prediction: shape {prediction['shape']}, {prediction['dtype']}")
    print(f"loss: {answer['loss']:.4f}")
    grads = answer["grad_norms"]
    print(f"gradients in .grad: {len(grads)} parameters (conv1.weight: norm "
          f"{grads['conv1.weight']:.4f})")  # fmt: skip

    print("# optim = torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)")
    print("# optim.step()  # gradient descent")
    stepped = model("POST", "/step")
    print(f"step {stepped['step_count']}: {len(stepped['updated'])} parameters updated")
    info = model("GET")
    running = info["buffers"]["bn1.running_mean"]
    print(f"bn1.running_mean {running['shape']} kept with the session "
          f"(version {info['version']})")  # fmt: skip
    model("DELETE")


def differentiation(client: Client) -> None:
    print("# a = torch.tensor([2., 3.], requires_grad=True)")
    print("# b = torch.tensor([6., 4.], requires_grad=True)")
    print("# Q = 3*a**3 - b**2")
    print("# external_grad = torch.tensor([1., 1.]); Q.backward(gradient=external_grad)")
    inputs = {"a": {"data": [2.0, 3.0], "requires_grad": True},
              "b": {"data": [6.0, 4.0], "requires_grad": True}}  # fmt: skip
    answer = client.call("POST", "/v1/evaluate", {
        "expr": "Q = 3a³ − b²", "inputs": inputs,
        "backward": {"output": "Q", "gradient": [1.0, 1.0]}})  # fmt: skip
    q, grads = answer["outputs"]["Q"], answer["grads"]
    print(f"Q = {show(q)[:-1]}, grad_fn=<{q['grad_fn']}>)")
    print(f"a.grad = {show(grads['a'])}, b.grad = {show(grads['b'])}")

    print("# print(9*a**2 == a.grad); print(-2*b == b.grad)")
    check = client.call("POST", "/v1/evaluate", {
        "expr": "da = 9*a**2 == ga\ndb = -2*b == gb",
        "inputs": {"a": [2.0, 3.0], "b": [6.0, 4.0], "ga": grads["a"]["data"],
                   "gb": grads["b"]["data"]}})  # fmt: skip
    print(show(check["outputs"]["da"]))
    print(show(check["outputs"]["db"]))

    print("# vector calculus: the gradients are J^T·v, v = external_grad")
    jac = client.call("POST", "/v1/jacobian", {"expr": "Q = 3a³ − b²", "inputs": inputs})
    v = [1.0, 1.0]
    for name in ("a", "b"):
        rows = jac["jacobian"][name]["data"]  # J[i][j] = dQ_i / dx_j
        jtv = [sum(rows[i][j] * v[i] for i in range(len(v))) for j in range(len(rows[0]))]
        same = jtv == grads[name]["data"]
        print(f"J_{name} = {rows}; J_{name}^T·v = {show({'data': jtv})} == {name}.grad: {same}")


def exclusion(client: Client) -> None:
    print("# x = torch.rand(5, 5); y = torch.rand(5, 5)")
    print("# z = torch.rand((5, 5), requires_grad=True)")
    answer = client.call("POST", "/v1/evaluate", {
        "expr": "a = x + y\nb = x + z",
        "inputs": {"x": rand(5, 5), "y": rand(5, 5), "z": {**rand(5, 5), "requires_grad": True}},
    })  # fmt: skip
    print("# a = x + y")
    print(f"Does `a` require gradients?: {answer['outputs']['a']['requires_grad']}")
    print("# b = x + z")
    print(f"Does `b` require gradients?: {answer['outputs']['b']['requires_grad']}")


def finetuning(client: Client) -> None:
    print("# model = resnet18(weights=None)")
    model = Session(client, {"model": {"name": "resnet18", "num_classes": 1000, "seed": 1},
                             "optimizer": SGD})  # fmt: skip
    print("# for param in model.parameters(): param.requires_grad = False")
    for name in model.parameters:
        model("PATCH", f"/parameters/{name}", {"requires_grad": False})
    print("# model.fc = nn.Linear(512, 10)")
    bound = 1 / math.sqrt(512)  # nn.Linear's initialisation
    model(
        "PUT",
        "/parameters/fc.weight",
        {"init": "kaiming_uniform", "shape": [10, 512], "a": math.sqrt(5), "seed": 2},
    )
    model("PUT", "/parameters/fc.bias",
          {"init": "uniform", "shape": [10], "a": -bound, "b": bound, "seed": 3})  # fmt: skip
    info = model("GET")["parameters"]
    trainable = [n for n, p in info.items() if p["requires_grad"]]
    frozen = [n for n, p in info.items() if not p["requires_grad"]]
    print(f"parameters that compute gradients: {trainable}; frozen: {len(frozen)}")

    print("# optimizer = optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)")
    print("# one training step on rand(1, 3, 64, 64) with labels rand(1, 10)")
    before = model("GET", "/parameters/conv1.weight?binary=true")["value"]["b64"]
    trained = model("POST", "/train", {
        "inputs": {"input": rand(1, 3, 64, 64), "labels": rand(1, 10)},
        "expr": LOSS, "loss": "loss", "include": ["grad_norms"]})  # fmt: skip
    print(f"loss {trained['loss']:.4f}; gradients computed for {sorted(trained['grad_norms'])}")
    after = model("GET", "/parameters/conv1.weight?binary=true")["value"]["b64"]
    print(f"conv1.weight unchanged by the step: {before == after}")
    moved = model("GET")["parameters"]
    print(
        f"optimizer state kept for: {sorted(n for n, p in moved.items() if p['optimizer_state'])}"
    )
    model("DELETE")


def main() -> int:
    base = (sys.argv[1] if len(sys.argv) > 1 else None) or os.environ.get(
        "AUTOGRAD_URL", "http://127.0.0.1:8000"
    )
    client = Client(base)
    try:
        for title, part in (("Training step", training_step),
                            ("Differentiation in autograd", differentiation),
                            ("Exclusion from the DAG", exclusion),
                            ("Finetuning", finetuning)):  # fmt: skip
            print(f"\n== {title} ==")
            part(client)
    except (Failed, httpx.HTTPError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
