"""The session's optimizer: its stored config (JSON) and state (numpy arrays by parameter and
slot) turned into an `engine.optim` optimizer for one request, and back.

The engine optimizer is rebuilt on every request: the parameters in sorted name order, the
config as its hyperparameters, the stored state loaded with `load_state_dict` in torch's
layout. Validation is the engine's (torch's rules and messages), never repeated here.
"""

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from engine import Tensor
from engine.errors import ArgumentError
from engine.optim import SGD, Adam, AdamW, Optimizer
from service.problems import PROBLEM_TYPES, ProblemError

OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "adam": Adam, "adamw": AdamW}

SLOTS = {
    "sgd": frozenset({"momentum_buffer"}),
    "adam": frozenset({"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}),
    "adamw": frozenset({"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}),
}

# Which field a torch message is about, for the problem's JSON pointer.
_FIELDS = [
    (re.compile(r"learning rate"), "lr"),
    (re.compile(r"momentum value"), "momentum"),
    (re.compile(r"[Nn]esterov"), "nesterov"),
    (re.compile(r"weight_decay"), "weight_decay"),
    (re.compile(r"epsilon"), "eps"),
    (re.compile(r"beta parameter at index (\d)"), "betas/{0}"),
]


def _kwargs(config: Mapping) -> dict:
    kwargs = {k: v for k, v in config.items() if k != "type"}
    if "betas" in kwargs:
        kwargs["betas"] = tuple(float(b) for b in kwargs["betas"])
    return kwargs


def _refused(exc: Exception, pointer: str) -> ProblemError:
    message = str(exc)
    field = ""
    for pattern, name in _FIELDS:
        found = pattern.search(message)
        if found:
            field = "/" + name.format(*found.groups())
            break
    return PROBLEM_TYPES["invalid-optimizer"].at(
        pointer + field, message, summary=f"torch.optim refuses these hyperparameters: {message}"
    )


def make(config: Mapping, params: list[Tensor], pointer: str = "/optimizer") -> Optimizer:
    """The engine optimizer over `params`; a 422 problem where torch would raise."""
    try:
        return OPTIMIZERS[config["type"]](params, **_kwargs(config))
    except (ArgumentError, ValueError, TypeError) as exc:
        raise _refused(exc, pointer) from None


def validate(config: Mapping) -> None:
    make(config, [Tensor(np.zeros(1, np.float32), requires_grad=True)])


def load(
    opt: Optimizer, params: list[Tensor], names: list[str], state: Mapping[str, Mapping[str, Any]]
) -> None:
    """Give `opt` (built over `params`, named `names`) the stored state. The arrays are
    adopted, not copied as `load_state_dict` would (6 ms a step for ResNet-18's momentum):
    a call owns the session's arrays while it computes (live.py), and the optimizer updates
    them in place as it would its own."""
    for name, p in zip(names, params, strict=True):
        slots = state.get(name)
        if slots:
            opt.state[p] = {slot: Tensor(_adopt(a, p, slot)) for slot, a in slots.items()}


def _adopt(array: np.ndarray, param: Tensor, slot: str) -> np.ndarray:
    dtype = param.array.dtype
    if slot != "step" and array.dtype.kind == "f" and array.dtype != dtype:
        return array.astype(dtype)  # as load_state_dict: buffers take the param's
    return array if array.flags.writeable else array.copy()


def dump(
    opt: Optimizer, names: list[str], params: list[Tensor]
) -> dict[str, dict[str, np.ndarray]]:
    """The optimizer's state by parameter name and slot, as numpy arrays."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for name, p in zip(names, params, strict=True):
        slots = opt.state.get(p)
        if slots:
            out[name] = {
                slot: np.asarray(value.array if isinstance(value, Tensor) else value)
                for slot, value in slots.items()
                if value is not None
            }
    return out
