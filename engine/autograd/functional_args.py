"""The argument handling of torch.autograd.functional (functional.py), as torch's: tuples in
and out, fresh graph roots, `v` checked against the outputs, and `strict` (an output
independent of an input raises torch's message, else contributes zeros)."""

from __future__ import annotations

import numpy as np

from ..dispatch import apply
from ..errors import GradError
from ..registry import OPS
from ..tensor import Tensor
from .backprop import grad as _grad


def as_tuple(x, arg_name, fn_name):
    """(was it a tuple, the tuple), checking every element is a Tensor as torch does."""
    is_tuple = isinstance(x, (tuple, list))
    xs = tuple(x) if is_tuple else (x,)
    for i, el in enumerate(xs):
        if not isinstance(el, Tensor):
            where = f"the value at index {i}" if is_tuple else f"the given {arg_name}"
            raise TypeError(
                f"The {arg_name} given to {fn_name} must be either a Tensor or a tuple of "
                f"Tensors but {where} has type {type(el).__name__}."
            )
    return is_tuple, xs


def unpack(res, is_tuple):
    return res if is_tuple else res[0]


def unpack2(res, is_outer_tuple, is_inner_tuple):
    if not is_inner_tuple:
        res = tuple(el[0] for el in res)
    return res if is_outer_tuple else res[0]


def view_as_self(t: Tensor) -> Tensor:
    return apply(OPS["view"], (t,), {"shape": tuple(t.shape)})


def preprocess(inputs, create_graph, need_graph):
    """Fresh graph roots: a view when differentiating through the caller's graph, else a
    detached copy that requires grad (need_graph) or not."""
    out = []
    for t in inputs:
        if create_graph and t.requires_grad:
            out.append(view_as_self(t))
        else:
            d = t.detach()
            if need_graph:
                d.requires_grad_(True)
            out.append(d)
    return tuple(out)


def postprocess(xs, create_graph):
    if create_graph:
        return xs
    return tuple(postprocess(x, create_graph) if isinstance(x, tuple) else x.detach() for x in xs)


def validate_v(v, other, is_other_tuple):
    if len(other) != len(v):
        if is_other_tuple:
            raise GradError(
                f"v is a tuple of invalid length: should be {len(other)} but got {len(v)}."
            )
        raise GradError("The given v should contain a single Tensor.")
    for i, (ev, eo) in enumerate(zip(v, other, strict=True)):
        if tuple(ev.shape) != tuple(eo.shape):
            prefix = f"Entry {i} in " if is_other_tuple else ""
            raise GradError(
                f"{prefix}v has invalid size: should be {tuple(eo.shape)} but got "
                f"{tuple(ev.shape)}."
            )


STRICT = {
    "outputs": (
        "Output {i} of the user-provided function does not require gradients. The outputs "
        "must be computed in a differentiable manner from the input when running in strict "
        "mode."
    ),
    "grad_inputs": (
        "The gradient with respect to input {i} is independent of the inputs of the "
        "user-provided function. This is not allowed in strict mode."
    ),
    "jacobian": (
        "While computing the hessian, found that the jacobian of the user-provided function "
        "with respect to input {i} is independent of the input. This is not allowed in "
        "strict mode. You should ensure that your function is twice differentiable and that "
        "the jacobian depends on the inputs (this would be violated by a linear function for "
        "example)."
    ),
    "hessian": (
        "The hessian of the user-provided function with respect to input {i} is independent "
        "of the input. This is not allowed in strict mode. You should ensure that your "
        "function is thrice differentiable and that the hessian depends on the inputs."
    ),
}


def check_requires_grad(xs, kind, strict):
    if not strict:
        return
    for i, x in enumerate(xs):
        if x is None:
            raise GradError(
                f"The output of the user-provided function is independent of input {i}. This "
                "is not allowed in strict mode."
            )
        if not x.requires_grad:
            raise GradError(STRICT[kind].format(i=i))


def autograd_grad(outputs, inputs, grad_outputs=None, create_graph=False, retain_graph=None):
    """grad over the outputs that require grad only; all None when none does."""
    if grad_outputs is None:
        grad_outputs = (None,) * len(outputs)
    outs, gos = [], []
    for o, go in zip(outputs, grad_outputs, strict=True):
        if o is not None and o.requires_grad:
            outs.append(o)
            gos.append(go)
    if not outs:
        return (None,) * len(inputs)
    return _grad(
        outs,
        list(inputs),
        gos,
        retain_graph=retain_graph,
        create_graph=create_graph,
        allow_unused=True,
    )


FILL_MESSAGES = {
    "back": (
        "The output of the user-provided function is independent of input {i}. This is not "
        "allowed in strict mode."
    ),
    "back_trick": (
        "The gradient with respect to the input is independent of entry {i} in the "
        "grad_outputs when using the double backward trick to compute forward mode "
        "gradients. This is not allowed in strict mode."
    ),
    "double_back": (
        "The jacobian of the user-provided function is independent of input {i}. This is not "
        "allowed in strict mode."
    ),
    "double_back_trick": (
        "The hessian of the user-provided function is independent of entry {i} in the "
        "grad_jacobian. This is not allowed in strict mode as it prevents from using the "
        "double backward trick to replace forward mode AD."
    ),
}


def fill_in_zeros(grads, refs, strict, create_graph, stage):
    res = []
    for i, g in enumerate(grads):
        if g is None:
            if strict:
                raise GradError(FILL_MESSAGES[stage].format(i=i))
            g = Tensor(np.zeros_like(refs[i]._a))
        elif strict and create_graph and not g.requires_grad:
            what = "hessian" if "double" in stage else "jacobian"
            raise GradError(
                f"The {what} of the user-provided function is independent of input {i}. This "
                "is not allowed in strict mode when create_graph=True."
            )
        res.append(g)
    return tuple(res)
