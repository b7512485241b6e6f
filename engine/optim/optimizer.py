"""The Optimizer base class, as torch.optim.Optimizer: param groups with per-group options,
per-parameter state, zero_grad, state_dict / load_state_dict in torch's layout.

Subclasses implement `_update(group, params)` for the parameters of one group that have a
gradient; the base class runs it under no_grad. Updates write the parameter's numpy array in
place, in the parameter's dtype; gradients are only read (they may be shared views), and
zero_grad(set_to_none=False) gives each gradient a fresh zero array."""

from __future__ import annotations

import copy
from collections import defaultdict

import numpy as np

from ..errors import ArgumentError
from ..grad_mode import enable_grad, no_grad
from ..tensor import Tensor


class _Required:
    def __repr__(self) -> str:
        return "<required parameter>"


required = _Required()


class Optimizer:
    def __init__(self, params, defaults: dict):
        self.defaults = defaults
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list[dict] = []
        if isinstance(params, Tensor):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or "
                f"dicts, but got {type(params).__name__}; pass [tensor] or model parameters"
            )
        groups = list(params)
        if not groups:
            raise ArgumentError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # -- groups ---------------------------------------------------------------------------
    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters with its own options (the rest from the defaults)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but the "
                "ordering of tensors in sets will change between runs. Please use a list "
                "instead."
            )
        params = list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"optimizer can only optimize Tensors, but one of the params is "
                    f"{type(p).__name__}"
                )
            if not p.is_leaf:
                raise ArgumentError("can't optimize a non-leaf Tensor")
        group["params"] = params
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ArgumentError(
                    f"parameter group didn't specify a value of required optimization "
                    f"parameter {name}"
                )
            group.setdefault(name, default)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ArgumentError("some parameters appear in more than one parameter group")
        self._check_group(group)
        self.param_groups.append(group)

    def _check_group(self, group: dict) -> None:
        """Validate a group's options (subclasses raise torch's errors)."""

    # -- stepping -------------------------------------------------------------------------
    def step(self, closure=None):
        """One update of every parameter that has a gradient; returns closure()'s loss."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                params = [p for p in group["params"] if p.grad is not None]
                if params:
                    self._update(group, params)
        return loss

    def _update(self, group: dict, params: list) -> None:
        raise NotImplementedError

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients: None (the default), or fresh zero arrays."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    g = p.grad
                    if g.grad_fn is not None:
                        g = p.grad = Tensor(g._a)
                    g._a = np.zeros_like(g._a)

    # -- (de)serialisation ----------------------------------------------------------------
    def state_dict(self) -> dict:
        """{"state": {index: {...}}, "param_groups": [{..., "params": [indices]}]}, as torch.
        Like torch it holds references to the live state: deep-copy it for a snapshot."""
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {index[id(p)]: v for p, v in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore options and state saved by state_dict() onto this optimizer's parameters
        (matched by position). The state is copied, so two optimizers never share buffers."""
        saved = copy.deepcopy(state_dict["param_groups"])
        if len(saved) != len(self.param_groups):
            raise ArgumentError("loaded state dict has a different number of parameter groups")
        for ours, theirs in zip(self.param_groups, saved, strict=True):
            if len(ours["params"]) != len(theirs["params"]):
                raise ArgumentError(
                    "loaded state dict contains a parameter group that doesn't match the size "
                    "of optimizer's group"
                )
        by_index = {
            i: p
            for ours, theirs in zip(self.param_groups, saved, strict=True)
            for i, p in zip(theirs["params"], ours["params"], strict=True)
        }
        state: defaultdict = defaultdict(dict)
        for k, v in state_dict["state"].items():
            p = by_index.get(k)
            if p is None:
                state[k] = copy.deepcopy(v)
                continue
            state[p] = {name: _cast(value, p, name) for name, value in v.items()}
        for ours, theirs in zip(self.param_groups, saved, strict=True):
            theirs["params"] = ours["params"]
        self.param_groups = saved
        self.state = state

    def __repr__(self) -> str:
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines.extend(f"    {k}: {group[k]}" for k in sorted(group) if k != "params")
        lines.append(")")
        return "\n".join(lines)


def _cast(value, param, name):
    """A copy of one saved state value; float buffers take the parameter's dtype (not step)."""
    if isinstance(value, Tensor):
        a = value._a
        if name != "step" and a.dtype.kind == "f":
            a = a.astype(param._a.dtype)
        return Tensor(np.array(a, copy=True))
    return copy.deepcopy(value)


def writable(param: Tensor) -> np.ndarray:
    """The parameter's array, to update in place (torch's `param.add_`); a read-only array
    (a broadcast view, say) is first replaced by a copy."""
    a = param._a
    if not a.flags.writeable:
        a = param._a = a.copy()
    return a
