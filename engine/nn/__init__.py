"""torch.nn's surface: functional ops (and, with the ResNet issue, modules)."""

from . import functional

__all__ = ["functional"]
