"""State dicts as safetensors (the format torch's safetensors.torch.save_file writes):
`save_safetensors(model)` → bytes, `load_safetensors(model, data)` from bytes or a path.
Through safetensors.numpy only: no torch."""

from __future__ import annotations

import os

import numpy as np
from safetensors.numpy import load, load_file, save, save_file

from ..nn import Module


def state_arrays(model: Module) -> dict[str, np.ndarray]:
    """The state_dict as contiguous numpy arrays (copies), keyed as torch's."""
    return {k: np.ascontiguousarray(v._a).copy() for k, v in model.state_dict().items()}


def save_safetensors(model: Module, path=None, metadata: dict | None = None):
    """The model's state_dict in safetensors format: written to path, or returned as bytes."""
    arrays = state_arrays(model)
    if path is None:
        return save(arrays, metadata=metadata)
    save_file(arrays, os.fspath(path), metadata=metadata)
    return None


def read_safetensors(data) -> dict[str, np.ndarray]:
    """bytes or a path → {key: numpy array}."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return load(bytes(data))
    return load_file(os.fspath(data))


def load_safetensors(model: Module, data, strict: bool = True):
    """model.load_state_dict(tensors of a safetensors file or bytes, strict)."""
    return model.load_state_dict(read_safetensors(data), strict=strict)
