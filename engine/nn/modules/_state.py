"""Module.load_state_dict, as torch's: each module takes its own keys (parameters, then
persistent buffers), copies the values in place, and reports missing and unexpected keys and
size mismatches; the errors are raised together, in torch's order and wording."""

from __future__ import annotations

from collections import OrderedDict, namedtuple
from collections.abc import Mapping

import numpy as np

from ...errors import EngineError
from ...grad_mode import no_grad
from ...tensor import Parameter, Tensor


class StateDictError(EngineError, RuntimeError):
    """load_state_dict found missing, unexpected or mis-shaped entries (torch's message).

    `missing_keys`, `unexpected_keys` and `mismatched` ((key, checkpoint shape, model shape)
    triples) say which, for callers that answer with something other than the text."""

    def __init__(self, message, missing_keys=(), unexpected_keys=(), mismatched=()):
        super().__init__(message)
        self.missing_keys = list(missing_keys)
        self.unexpected_keys = list(unexpected_keys)
        self.mismatched = list(mismatched)


class _IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    __slots__ = ()

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


class _Report:
    def __init__(self) -> None:
        self.missing: list[str] = []
        self.unexpected: list[str] = []
        self.errors: list[str] = []
        self.mismatched: list[tuple] = []


def load(module, state_dict, strict: bool, assign: bool):
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
    report = _Report()

    def visit(mod, local: dict, prefix: str) -> None:
        mod._load_from_state_dict(local, prefix, True, report, assign)
        for name, child in mod._modules.items():
            if child is not None:
                child_prefix = prefix + name + "."
                sub = {k: v for k, v in local.items() if k.startswith(child_prefix)}
                visit(child, sub, child_prefix)

    with no_grad():
        visit(module, OrderedDict(state_dict), "")
    errors = list(report.errors)
    if strict:
        if report.unexpected:
            keys = ", ".join(f'"{k}"' for k in report.unexpected)
            errors.insert(0, f"Unexpected key(s) in state_dict: {keys}. ")
        if report.missing:
            keys = ", ".join(f'"{k}"' for k in report.missing)
            errors.insert(0, f"Missing key(s) in state_dict: {keys}. ")
    if errors:
        raise StateDictError(
            f"Error(s) in loading state_dict for {type(module).__name__}:\n\t"
            + "\n\t".join(errors),
            report.missing if strict else (),
            report.unexpected if strict else (),
            report.mismatched,
        )
    return _IncompatibleKeys(report.missing, report.unexpected)


def _array(value):
    if isinstance(value, Tensor):
        return value._a
    if isinstance(value, (np.ndarray, np.generic)):
        return np.asarray(value)
    return None


def load_local(module, state_dict, prefix: str, strict: bool, report: _Report, assign: bool):
    """One module's share of load_state_dict (torch's Module._load_from_state_dict)."""
    d = module.__dict__
    persistent = {
        k: v for k, v in d["_buffers"].items() if k not in d["_non_persistent_buffers_set"]
    }
    local = {k: v for k, v in (*d["_parameters"].items(), *persistent.items()) if v is not None}
    for name, param in local.items():
        key = prefix + name
        if key not in state_dict:
            if strict:
                report.missing.append(key)
            continue
        value = state_dict[key]
        src = _array(value)
        if src is None:
            report.errors.append(
                f'While copying the parameter named "{key}", expected an engine Tensor or a '
                f"numpy array from checkpoint but received {type(value)}"
            )
            continue
        if param.ndim == 0 and src.shape == (1,):  # torch's 0.3 → 0.4 compatibility
            src = src[0]
        if tuple(src.shape) != tuple(param.shape):
            report.errors.append(
                f"size mismatch for {key}: copying a param with shape {tuple(src.shape)} from "
                f"checkpoint, the shape in current model is {tuple(param.shape)}."
            )
            report.mismatched.append((key, tuple(src.shape), tuple(param.shape)))
            continue
        try:
            if assign:
                _assign(module, name, param, src)
            else:
                _copy(param, src)
        except (TypeError, ValueError) as ex:
            report.errors.append(
                f'While copying the parameter named "{key}", whose dimensions in the model are '
                f"{tuple(param.shape)} and whose dimensions in the checkpoint are "
                f"{tuple(src.shape)}, an exception occurred : {ex.args}."
            )
    if strict:
        for key in state_dict:
            if not key.startswith(prefix):
                continue
            head = key[len(prefix) :].split(".", 1)
            if len(head) > 1:
                if head[0] not in d["_modules"]:
                    report.unexpected.append(key)
            elif head[0] not in local:
                report.unexpected.append(key)


def _copy(param: Tensor, src: np.ndarray) -> None:
    """param.copy_(src): in place, cast to the parameter's dtype."""
    dst = param._a
    if dst.flags.writeable:
        np.copyto(dst, src, casting="unsafe")
    else:
        param._a = np.array(src, dtype=dst.dtype)


def _assign(module, name: str, param: Tensor, src: np.ndarray) -> None:
    """assign=True: the module takes the checkpoint's array (and dtype); a Parameter keeps
    its requires_grad."""
    arr = src if src.flags.writeable else src.copy()
    if isinstance(param, Parameter):
        setattr(module, name, Parameter(Tensor(arr), requires_grad=param.requires_grad))
    else:
        module.__dict__["_buffers"][name] = Tensor(arr)
