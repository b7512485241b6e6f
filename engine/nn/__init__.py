"""torch.nn's surface: functional ops, utils (gradient clipping) and, with the ResNet issue,
modules."""

from . import functional, utils

__all__ = ["functional", "utils"]
