"""Model templates, as torchvision.models: resnet18 / resnet34 with torchvision's parameter
names, and an MLP of chosen sizes; safetensors load/save of state dicts; `to_program`, a
model's forward as a nodes program of engine.program.

MODELS maps each template's name to its builder, for callers (the service) that build
models by name."""

from .io import load_safetensors, read_safetensors, save_safetensors, state_arrays
from .mlp import ACTIVATIONS, mlp
from .program import ModelProgram, to_program
from .resnet import BasicBlock, ResNet, resnet18, resnet34

MODELS = {"resnet18": resnet18, "resnet34": resnet34, "mlp": mlp}

__all__ = [
    "ACTIVATIONS",
    "BasicBlock",
    "MODELS",
    "ModelProgram",
    "ResNet",
    "load_safetensors",
    "mlp",
    "read_safetensors",
    "resnet18",
    "resnet34",
    "save_safetensors",
    "state_arrays",
    "to_program",
]
