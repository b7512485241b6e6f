"""A multilayer perceptron template: Linear layers between the given sizes, an activation
after every one but the last (keys 0.weight, 0.bias, 2.weight, ... as nn.Sequential's)."""

from __future__ import annotations

from .. import nn
from ..errors import ArgumentError

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
    "softplus": nn.Softplus,
}


def mlp(sizes, activation="relu", bias: bool = True, dropout: float = 0.0) -> nn.Sequential:
    """mlp([784, 128, 10]) = Sequential(Linear(784, 128), ReLU(), Linear(128, 10)).

    activation: a name from ACTIVATIONS or a Module class (called with no arguments).
    dropout > 0 adds a Dropout after each activation."""
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or any(s <= 0 for s in sizes):
        raise ArgumentError(
            f"mlp: sizes must list at least 2 positive layer widths (input ... output), got {sizes}"
        )
    if isinstance(activation, str):
        if activation not in ACTIVATIONS:
            raise ArgumentError(
                f"mlp: unknown activation {activation!r}; use one of {sorted(ACTIVATIONS)}"
            )
        activation = ACTIVATIONS[activation]
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:], strict=False)):
        layers.append(nn.Linear(n_in, n_out, bias=bias))
        if i < len(sizes) - 2:
            layers.append(activation())
            if dropout:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)
