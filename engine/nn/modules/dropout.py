"""Dropout: zeroes elements with probability p while training (the mask from the generator
engine.manual_seed seeds), the identity in eval mode."""

from __future__ import annotations

from ...errors import ArgumentError
from ._util import fn
from .module import Module


class Dropout(Module):
    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if p < 0 or p > 1:
            raise ArgumentError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace

    def forward(self, input):
        return fn("dropout")(input, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"
