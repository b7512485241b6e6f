"""torch.optim's optimizers: SGD, Adam, AdamW on the Optimizer base class."""

from .adam import Adam, AdamW
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["SGD", "Adam", "AdamW", "Optimizer"]
