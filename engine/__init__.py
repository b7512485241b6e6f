"""A reverse-mode autograd engine on numpy that reads like PyTorch: `import engine` where a
tutorial says `import torch`.

Layers, highest first; each imports only from the layers below it (`a | b`: two that do not
import each other). Checked by import-linter (`.importlinter` at the repository root, run by
`lint-imports` and by tests/engine/test_layers.py, which also finds no import cycle):

    program                                        the expression and node program forms
    models                                         model specs and safetensors state
    nn | optim                                     modules, initialisers, optimizers
    fast                                           generated forwards and backward steps
    methods                                        Tensor's operators, methods, backward
    ops                                            the op families, registered at import
    autograd                                       the backward loop calling the VJPs;
                                                   backward, grad, functional, gradcheck
    registry                                       OPS, FUNCTIONS, defop, deffn
    frontend                                       engine.<op> functions made from a record
    dispatch | factories                           apply: run a forward, record a node |
                                                   engine.tensor, zeros, randn...
    tensor                                         Tensor, Parameter
    graph                                          Node, AccumulateGrad: the recorded graph
    dtypes | shapes | grad_mode | allocator        plain helpers, no Tensor;
    | deadline                                     a time limit checked between steps
    errors                                         the exception classes

The reference path is dispatch.apply and autograd/backprop.py's loop over the VJPs as the
registry declares them (autograd/vjp.py). engine.fast installs generated code over it when
the engine starts; ENGINE_FAST=0 in the environment leaves the reference path alone."""

from . import allocator as _allocator
from . import fast as _fast
from . import methods as _methods
from . import ops as _ops  # noqa: F401 - registers every op
from .dtypes import bool_, float32, float64, int64
from .errors import (
    ArgumentError,
    DTypeError,
    EngineError,
    GradError,
    ShapeError,
    SignatureError,
    UnknownOpError,
)
from .factories import (
    arange,
    as_tensor,
    empty,
    empty_like,
    eye,
    from_numpy,
    full,
    full_like,
    generator,
    linspace,
    manual_seed,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    tensor,
    zeros,
    zeros_like,
)
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .registry import FUNCTIONS, OPS
from .tensor import Parameter, Tensor

_methods.install()
if _fast.enabled_by_env():
    _fast.install()
_allocator.configure_from_env()
globals().update({name: f.fn for name, f in FUNCTIONS.items() if "." not in name})

from . import autograd, models, nn, optim  # noqa: E402

float = float32  # noqa: A001 - torch.float
double = float64
long = int64
bool = bool_  # noqa: A001

__all__ = [
    "ArgumentError",
    "DTypeError",
    "EngineError",
    "FUNCTIONS",
    "GradError",
    "OPS",
    "Parameter",
    "ShapeError",
    "SignatureError",
    "Tensor",
    "UnknownOpError",
    "arange",
    "as_tensor",
    "autograd",
    "models",
    "nn",
    "optim",
    "bool_",
    "empty",
    "empty_like",
    "enable_grad",
    "eye",
    "float32",
    "float64",
    "from_numpy",
    "full",
    "full_like",
    "generator",
    "int64",
    "is_grad_enabled",
    "linspace",
    "manual_seed",
    "no_grad",
    "ones",
    "ones_like",
    "rand",
    "rand_like",
    "randint",
    "randn",
    "randn_like",
    "set_grad_enabled",
    "tensor",
    "zeros",
    "zeros_like",
    *FUNCTIONS,
]
