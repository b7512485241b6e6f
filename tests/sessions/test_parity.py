"""An MLP trained over HTTP equals torch.optim's training of the same MLP (rtol 1e-5): SGD in
every combination of its options torch accepts, Adam, AdamW and AMSGrad, and gradient
accumulation (several backward calls, then one step)."""

import itertools

import pytest

from tests.sessions.helpers import (
    Session,
    assert_close,
    batch_inputs,
    batches,
    mlp_parameters,
    session_body,
    torch_train,
)

STEPS = 20


def _sgd_configs():
    for momentum, dampening, nesterov, weight_decay, maximize in itertools.product(
        (0.0, 0.9), (0.0, 0.5), (False, True), (0.0, 0.01), (False, True)
    ):
        if nesterov and (momentum <= 0 or dampening != 0):
            continue  # torch refuses these (tested in test_bad_input)
        yield {"type": "sgd", "lr": 0.05, "momentum": momentum, "dampening": dampening,
               "nesterov": nesterov, "weight_decay": weight_decay,
               "maximize": maximize}  # fmt: skip


ADAM_CONFIGS = [
    {"type": "adam", "lr": 0.01},
    {"type": "adam", "lr": 0.01, "betas": [0.8, 0.99], "eps": 1e-6, "weight_decay": 0.1},
    {"type": "adam", "lr": 0.01, "amsgrad": True},
    {"type": "adam", "lr": 0.01, "amsgrad": True, "maximize": True, "weight_decay": 0.05},
    {"type": "adamw", "lr": 0.01},
    {"type": "adamw", "lr": 0.01, "weight_decay": 0.1, "amsgrad": True},
]
CONFIGS = [*_sgd_configs(), *ADAM_CONFIGS]


def _name(config):
    return "-".join(f"{k}={v}" for k, v in config.items() if k not in ("lr",))


def test_every_sgd_combination_torch_accepts_is_covered():
    assert sum(c["type"] == "sgd" for c in CONFIGS) == 20


@pytest.mark.parametrize("config", CONFIGS, ids=_name)
def test_twenty_train_steps_equal_torch_optim(http, config):
    params, data = mlp_parameters(), batches(STEPS)
    session = Session.create(http, session_body(params, config))
    for i, (x, y) in enumerate(data):
        answer = session.train(x, y)
        assert (answer["version"], answer["step_count"]) == (i + 1, i + 1)
    assert_close(session.parameters(), torch_train(params, config, data))


@pytest.mark.parametrize(
    "config",
    [{"type": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True}, {"type": "adam", "lr": 0.01}],
    ids=["sgd-nesterov", "adam"],
)
def test_gradient_accumulation_three_backwards_then_step_equals_torch(http, config):
    params, data = mlp_parameters(3), batches(4 * 3, seed=5)
    session = Session.create(http, session_body(params, config))
    for i in range(0, len(data), 3):
        session.ok("POST", "/zero_grad")
        for x, y in data[i : i + 3]:
            session.ok("POST", "/backward", {"inputs": batch_inputs(x, y)})
        session.ok("POST", "/step")
    assert session.info()["step_count"] == 4
    assert_close(session.parameters(), torch_train(params, config, data, accumulate=3))


def test_several_batches_in_one_train_call_equal_as_many_calls(http):
    config = {"type": "adamw", "lr": 0.01, "amsgrad": True}
    params, data = mlp_parameters(4), batches(5, seed=9)
    one_by_one = Session.create(http, session_body(params, config))
    for x, y in data:
        one_by_one.train(x, y)
    together = Session.create(http, session_body(params, config))
    answer = together.ok("POST", "/train", {"batches": [{"inputs": batch_inputs(x, y)}
                                                        for x, y in data]})  # fmt: skip
    assert (answer["version"], answer["step_count"], len(answer["losses"])) == (1, 5, 5)
    assert together.state()["parameters"] == one_by_one.state()["parameters"]
    assert_close(together.parameters(), torch_train(params, config, data))
