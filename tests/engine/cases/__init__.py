"""Op test cases, one module per family. Every case runs the same lambda against `engine`
and `torch` (our API mirrors torch's), so a case is written once for both.

    Case("sum_dim", lambda m, x: m.sum(x, dim=1, keepdim=True), [T(3, 4)])

`m` is the library module; `F(m)` gives its `nn.functional`. Tensor inputs are described by
`T(*shape, domain=...)` and made from a seeded generator; other arguments are literals."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class T:
    """A random tensor input. domain: 'real', 'positive', 'unit' (-1, 1), 'nonzero',
    'int:<low>:<high>' (int64, no gradient), 'bool', 'distinct' (no ties, for max/sort)."""

    shape: tuple
    domain: str = "real"
    grad: bool = True

    def __init__(self, *shape, domain="real", grad=True):
        object.__setattr__(self, "shape", tuple(shape))
        object.__setattr__(self, "domain", domain)
        object.__setattr__(self, "grad", grad and not domain.startswith(("int", "bool")))

    def make(self, rng: np.random.Generator) -> np.ndarray:
        n = int(np.prod(self.shape))
        if self.domain.startswith("int"):
            _, lo, hi = self.domain.split(":")
            return rng.integers(int(lo), int(hi), size=self.shape).astype(np.int64)
        if self.domain == "bool":
            return rng.random(self.shape) > 0.5
        if self.domain == "positive":
            return rng.uniform(0.5, 2.0, self.shape)
        if self.domain == "unit":
            return rng.uniform(-0.9, 0.9, self.shape)
        if self.domain == "nonzero":
            x = rng.uniform(0.5, 2.0, self.shape)
            return x * rng.choice([-1.0, 1.0], self.shape)
        if self.domain == "distinct":
            return (rng.permutation(n).reshape(self.shape) - n / 2) * 0.37 + 0.01
        if self.domain == "probs":
            x = rng.uniform(0.1, 1.0, self.shape)
            return x / x.sum(-1, keepdims=True)
        return rng.standard_normal(self.shape)


@dataclass
class Case:
    id: str
    fn: Callable  # fn(m, *inputs) -> tensor or tuple of tensors
    inputs: list
    covers: tuple = ()  # registry ops exercised that leave no grad_fn (comparisons...)
    grad: bool = True  # False for ops with no gradient at all
    check_graph: bool = True  # compare grad_fn names and structure with torch
    gradcheck: bool = True  # False where finite differences cannot work (casts to float32)
    atol: float = 0.0
    float32: bool = True  # also compare in float32
    notes: str = ""
    tags: tuple = field(default_factory=tuple)


def grad_of_square(f):
    """The first derivatives of sum(f**2), with create_graph=True: their values check the VJPs,
    their gradients (second derivatives) check that the VJPs are differentiable."""

    def case(m, *xs):
        out = f(m, *xs)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        leaves = [x for x in xs if x.requires_grad]
        return m.autograd.grad(sum((o * o).sum() for o in outs), leaves, create_graph=True)

    return case


HIGHER = dict(check_graph=False, notes="first derivatives with create_graph; torch fuses nodes")


def F(m):  # noqa: N802 - reads like torch's `F`
    return m.nn.functional


def all_cases() -> list[Case]:
    out = []
    for info in pkgutil.iter_modules(__path__):
        mod = importlib.import_module(f"{__name__}.{info.name}")
        out.extend(getattr(mod, "CASES", []))
    ids = [c.id for c in out]
    dup = {i for i in ids if ids.count(i) > 1}
    assert not dup, f"duplicate case ids: {dup}"
    return out
