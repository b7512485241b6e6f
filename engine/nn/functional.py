"""torch.nn.functional's names, bound to the registry's functions."""

from ..registry import FUNCTIONS

# The activations and losses torch keeps in torch.nn.functional (some also live in torch.*).
NAMES = (
    "relu",
    "leaky_relu",
    "gelu",
    "softplus",
    "sigmoid",
    "tanh",
    "softmax",
    "log_softmax",
    "linear",
    "dropout",
    "cross_entropy",
    "nll_loss",
    "mse_loss",
    "l1_loss",
    "binary_cross_entropy_with_logits",
    "conv2d",
    "max_pool2d",
    "avg_pool2d",
    "adaptive_avg_pool2d",
    "batch_norm",
)


def __getattr__(name):
    if name in NAMES and name in FUNCTIONS:
        return FUNCTIONS[name].fn
    raise AttributeError(f"module 'engine.nn.functional' has no attribute {name!r}")


def __dir__():
    return sorted(n for n in NAMES if n in FUNCTIONS)
