"""torch.autograd's surface: backward, grad, functional transforms and gradcheck.

Reading order for the plain semantics (the reference path):

1. `engine.dispatch.apply`: run an op's numpy forward and, when an operand requires grad,
   record a Node (`engine.graph`) holding what the op's VJPs will read.
2. `backprop.run`: the backward loop. Nodes run newest first off a heap; each one's input
   gradients come from
3. `vjp.node_vjps`: call each input's VJP as its registry record declares it (`Op.vjps`,
   arguments by parameter name), then `vjp.fit` it to the input's shape (`sum_to`) and dtype.

With create_graph the same VJPs run on Tensors, recording, so gradients are differentiable.
engine/fast installs generated code over steps 1-3 for speed (ENGINE_FAST=0 leaves it out);
tests/engine/test_fast_paths.py holds it to this path's results."""

from . import functional
from .backprop import backward, grad
from .gradcheck import GradcheckError, gradcheck

__all__ = ["GradcheckError", "backward", "functional", "grad", "gradcheck"]
