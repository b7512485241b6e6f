"""The seed tutorial's finetuning, over HTTP: freeze every parameter of a "pretrained" model,
replace its classifier head with a new 512 → 10 linear layer, and train with an optimizer
that holds all parameters (torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9))."""

import math

import numpy as np
import torch

from tests.float_ref import assert_float32_close
from tests.sessions.helpers import (
    Session,
    TorchRun,
    array,
    assert_close,
    assert_same,
    session_body,
)

EXPR = (
    "h = relu(linear(x, W1, b1))\n"
    "logits = linear(h, fc_weight, fc_bias)\n"
    "loss = cross_entropy(logits, y)"
)
N_IN, FEATURES, OLD_CLASSES, CLASSES, STEPS = 16, 512, 100, 10, 5
SGD = {"type": "sgd", "lr": 1e-2, "momentum": 0.9}


def _pretrained():
    rng = np.random.default_rng(11)
    return {
        "W1": (rng.standard_normal((FEATURES, N_IN)) * 0.25).astype(np.float32),
        "b1": (rng.standard_normal(FEATURES) * 0.1).astype(np.float32),
        "fc_weight": (rng.standard_normal((OLD_CLASSES, FEATURES)) * 0.05).astype(np.float32),
        "fc_bias": np.zeros(OLD_CLASSES, np.float32),
    }


def _data():
    rng = np.random.default_rng(12)
    return [
        (rng.standard_normal((8, N_IN)).astype(np.float32), rng.integers(0, CLASSES, 8))
        for _ in range(STEPS)
    ]


def test_freeze_replace_the_head_and_train(http):
    pretrained, data = _pretrained(), _data()
    session = Session.create(http, session_body(pretrained, SGD, expr=EXPR))

    for name in pretrained:  # for param in model.parameters(): param.requires_grad = False
        assert (
            session.ok("PATCH", f"/parameters/{name}", {"requires_grad": False})["requires_grad"]
            is False
        )
    bound = 1 / math.sqrt(FEATURES)  # model.fc = nn.Linear(512, 10)
    weight = session.request(
        "PUT",
        "/parameters/fc_weight",
        {"init": "kaiming_uniform", "shape": [CLASSES, FEATURES], "a": math.sqrt(5), "seed": 0},
    )
    bias = session.request("PUT", "/parameters/fc_bias", {
        "init": "uniform", "shape": [CLASSES], "a": -bound, "b": bound, "seed": 1})  # fmt: skip
    assert weight.status_code == bias.status_code == 200  # replaced, not added
    assert weight.json()["shape"] == [CLASSES, FEATURES] and weight.json()["requires_grad"]
    before = session.parameters()
    assert np.abs(before["fc_weight"]).max() <= bound and np.abs(before["fc_bias"]).max() <= bound

    for x, y in data:
        session.train(x, y)

    after = session.parameters()
    frozen = ("W1", "b1")
    assert_same({n: after[n] for n in frozen}, {n: pretrained[n] for n in frozen})
    for name in ("fc_weight", "fc_bias"):
        assert not np.array_equal(after[name], before[name]), f"{name} did not move"
    info = session.info()["parameters"]
    assert info["W1"] == {"shape": [FEATURES, N_IN], "dtype": "float32", "requires_grad": False,
                          "grad": False, "optimizer_state": []}  # fmt: skip
    assert info["fc_weight"]["optimizer_state"] == ["momentum_buffer"]

    # torch, from the same starting values: the body frozen, the optimizer holding everything.
    # Also in float64 from the same values: the reference the float32 results are judged by.
    def torch_run(dtype):
        model = {n: torch.tensor(before[n], dtype=dtype) for n in before}
        for name in ("fc_weight", "fc_bias"):
            model[name].requires_grad_(True)
        opt = torch.optim.SGD(model.values(), lr=1e-2, momentum=0.9)
        F = torch.nn.functional
        for x, y in data:
            opt.zero_grad()
            h = torch.relu(F.linear(torch.from_numpy(x).to(dtype), model["W1"], model["b1"]))
            logits = F.linear(h, model["fc_weight"], model["fc_bias"])
            F.cross_entropy(logits, torch.from_numpy(y)).backward()
            opt.step()
        return model, opt

    (model, opt), (wide, wide_opt) = torch_run(torch.float32), torch_run(torch.float64)
    theirs = {n: t.detach().numpy() for n, t in model.items()}
    assert_same({n: theirs[n] for n in frozen}, {n: pretrained[n] for n in frozen})
    assert_close(after, TorchRun(theirs, {n: t.detach().numpy() for n, t in wide.items()}))

    momentum = session.ok("GET", "/parameters/fc_bias?include=grad,optimizer_state&binary=true")
    assert_float32_close(
        array(momentum["optimizer_state"]["momentum_buffer"]),
        opt.state[model["fc_bias"]]["momentum_buffer"],
        wide_opt.state[wide["fc_bias"]]["momentum_buffer"],
        "fc_bias momentum",
    )
