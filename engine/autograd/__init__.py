"""torch.autograd's surface: backward, grad, functional transforms and gradcheck."""

from . import functional
from .backprop import backward, grad
from .gradcheck import GradcheckError, gradcheck

__all__ = ["GradcheckError", "backward", "functional", "grad", "gradcheck"]
