"""torch.autograd's surface: backward, grad, functional transforms and gradcheck."""

from .backprop import backward, grad

__all__ = ["backward", "grad"]
