"""torch.autograd.functional: vjp, jvp, jacobian, hessian (and hvp, vhp) over `grad`.

Same semantics as torch's (reverse mode, `vectorize=False`): `inputs` is a Tensor or a
tuple of Tensors and each result mirrors that structure; the inputs are detached copies, so
the caller's tensors are never part of the graph unless `create_graph=True`; without
`create_graph` the results are detached; with `strict=False` an output independent of an
input contributes zeros, with `strict=True` it raises torch's message.

jvp has no forward mode here: it uses the double-vjp trick, as torch's does: with
`u = zeros_like(out)` requiring grad, `g(u) = J^T u` is linear in u, and the vjp of g with
v is `J v`. It needs every VJP to be differentiable, which `create_graph` provides."""

from __future__ import annotations

import numpy as np

from ..errors import GradError
from ..grad_mode import enable_grad, is_grad_enabled, set_grad_enabled
from ..registry import FUNCTIONS
from ..tensor import Tensor
from .functional_args import (
    as_tuple,
    autograd_grad,
    check_requires_grad,
    fill_in_zeros,
    postprocess,
    preprocess,
    unpack,
    unpack2,
    validate_v,
)

__all__ = ["hessian", "hvp", "jacobian", "jvp", "vhp", "vjp"]


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), v^T J): the vector-Jacobian product, shaped as the inputs."""
    with enable_grad():
        is_inputs_tuple, inputs = as_tuple(inputs, "inputs", "vjp")
        inputs = preprocess(inputs, create_graph, need_graph=True)
        outputs = func(*inputs)
        is_outputs_tuple, outputs = as_tuple(
            outputs, "outputs of the user-provided function", "vjp"
        )
        check_requires_grad(outputs, "outputs", strict)
        if v is not None:
            _, v = as_tuple(v, "v", "vjp")
            v = preprocess(v, create_graph, need_graph=False)
            validate_v(v, outputs, is_outputs_tuple)
        elif len(outputs) != 1 or outputs[0].numel() != 1:
            raise GradError(
                "The vector v can only be None if the user-provided function returns a single "
                "Tensor with a single element."
            )
    with set_grad_enabled(True if create_graph else is_grad_enabled()):
        res = autograd_grad(outputs, inputs, v, create_graph=create_graph)
        res = fill_in_zeros(res, inputs, strict, create_graph, "back")
    return (
        unpack(postprocess(outputs, create_graph), is_outputs_tuple),
        unpack(postprocess(res, create_graph), is_inputs_tuple),
    )


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), J v): the Jacobian-vector product, shaped as the outputs, computed
    with the double-vjp trick."""
    with enable_grad():
        is_inputs_tuple, inputs = as_tuple(inputs, "inputs", "jvp")
        inputs = preprocess(inputs, create_graph, need_graph=True)
        if v is not None:
            _, v = as_tuple(v, "v", "jvp")
            v = preprocess(v, create_graph, need_graph=False)
            validate_v(v, inputs, is_inputs_tuple)
        elif len(inputs) != 1 or inputs[0].numel() != 1:
            raise GradError(
                "The vector v can only be None if the input to the user-provided function is a "
                "single Tensor with a single element."
            )
        outputs = func(*inputs)
        is_outputs_tuple, outputs = as_tuple(
            outputs, "outputs of the user-provided function", "jvp"
        )
        check_requires_grad(outputs, "outputs", strict)
        grad_outputs = tuple(
            Tensor(np.zeros_like(o._a), requires_grad=o._a.dtype.kind == "f") for o in outputs
        )
        grad_inputs = autograd_grad(outputs, inputs, grad_outputs, create_graph=True)
        check_requires_grad(grad_inputs, "grad_inputs", strict)
    with set_grad_enabled(True if create_graph else is_grad_enabled()):
        res = autograd_grad(grad_inputs, grad_outputs, v, create_graph=create_graph)
        res = fill_in_zeros(res, outputs, strict, create_graph, "back_trick")
    return (
        unpack(postprocess(outputs, create_graph), is_outputs_tuple),
        unpack(postprocess(res, create_graph), is_outputs_tuple),
    )


def _stack(tensors):
    """stack(tensors, 0), differentiable; built from expand and mul when the registry has no
    `stack` yet."""
    if "stack" in FUNCTIONS:
        return FUNCTIONS["stack"].fn(tensors, 0)
    n = len(tensors)
    total = None
    for j, t in enumerate(tensors):
        onehot = np.zeros((n,) + (1,) * t.ndim, dtype=t._a.dtype)
        onehot[j] = 1
        term = t.unsqueeze(0) * Tensor(onehot)
        total = term if total is None else total + term
    return total


def jacobian(
    func, inputs, create_graph=False, strict=False, vectorize=False, strategy="reverse-mode"
):
    """d func / d inputs; entry [i][j] has shape outputs[i].shape + inputs[j].shape.

    One backward per output element (with the one-hot vector as grad_output), as torch's
    `vectorize=False`. `vectorize=True` gives the same values, computed the same way."""
    if strategy not in ("forward-mode", "reverse-mode"):
        raise GradError(
            'Expected strategy to be either "forward-mode" or "reverse-mode". Hint: If your '
            'function has more outputs than inputs, "forward-mode" tends to be more '
            'performant. Otherwise, prefer to use "reverse-mode".'
        )
    if strategy == "forward-mode":
        raise NotImplementedError(
            'engine.autograd.functional.jacobian: strategy="forward-mode" is not supported; '
            'use the default strategy="reverse-mode" (same values).'
        )
    if vectorize and strict:
        raise GradError(
            "torch.autograd.functional.jacobian: `strict=True` and `vectorized=True` are not "
            "supported together. Please either set `strict=False` or `vectorize=False`."
        )
    with enable_grad():
        is_inputs_tuple, inputs = as_tuple(inputs, "inputs", "jacobian")
        inputs = preprocess(inputs, create_graph, need_graph=True)
        outputs = func(*inputs)
        is_outputs_tuple, outputs = as_tuple(
            outputs, "outputs of the user-provided function", "jacobian"
        )
        check_requires_grad(outputs, "outputs", strict)
        jac = []
        for i, out in enumerate(outputs):
            rows = [[] for _ in inputs]
            n = out.numel()
            for k in range(n):
                basis = np.zeros(n, dtype=out._a.dtype)
                basis[k] = 1
                vj = autograd_grad(
                    (out,),
                    inputs,
                    (Tensor(basis.reshape(out.shape)),),
                    create_graph=create_graph,
                    retain_graph=True,
                )
                for j, (g, x) in enumerate(zip(vj, inputs, strict=True)):
                    if g is None:
                        if strict:
                            raise GradError(
                                f"Output {i} of the user-provided function is independent of "
                                f"input {j}. This is not allowed in strict mode."
                            )
                        g = Tensor(np.zeros_like(x._a))
                    elif strict and create_graph and not g.requires_grad:
                        raise GradError(
                            "The jacobian of the user-provided function is independent of "
                            f"input {i}. This is not allowed in strict mode when "
                            "create_graph=True."
                        )
                    rows[j].append(g)
            jac.append(
                tuple(
                    _jac_block(r, out, x, create_graph) for r, x in zip(rows, inputs, strict=True)
                )
            )
        jac = postprocess(tuple(jac), create_graph)
        return unpack2(jac, is_outputs_tuple, is_inputs_tuple)


def _jac_block(rows, out, x, create_graph):
    shape = tuple(out.shape) + tuple(x.shape)
    if not rows:  # an output with no elements
        return Tensor(np.zeros(shape, dtype=x._a.dtype))
    if create_graph and any(r.requires_grad for r in rows):
        return _stack(rows).reshape(shape)
    return Tensor(np.stack([r._a for r in rows]).reshape(shape))


def hessian(
    func,
    inputs,
    create_graph=False,
    strict=False,
    vectorize=False,
    outer_jacobian_strategy="reverse-mode",
):
    """The Hessian of a function returning one element; entry [i][j] has shape
    inputs[i].shape + inputs[j].shape (a single Tensor when inputs is one Tensor)."""
    is_inputs_tuple, inputs = as_tuple(inputs, "inputs", "hessian")
    if outer_jacobian_strategy not in ("forward-mode", "reverse-mode"):
        raise GradError('Expected strategy to be either "forward-mode" or "reverse-mode".')

    def single_output(*inp):
        out = func(*inp)
        is_out_tuple, t_out = as_tuple(out, "outputs of the user-provided function", "hessian")
        check_requires_grad(t_out, "outputs", strict)
        if is_out_tuple or not isinstance(out, Tensor):
            raise GradError("The function given to hessian should return a single Tensor")
        if out.numel() != 1:
            raise GradError(
                "The Tensor returned by the function given to hessian should contain a single "
                "element"
            )
        return out.reshape(())

    def jac_func(*inp):
        jac = jacobian(single_output, inp, create_graph=True)
        check_requires_grad(jac, "jacobian", strict)
        return jac

    res = jacobian(
        jac_func,
        inputs,
        create_graph=create_graph,
        strict=strict,
        vectorize=vectorize,
        strategy=outer_jacobian_strategy,
    )
    return unpack2(res, is_inputs_tuple, is_inputs_tuple)


def _scalar_func_checks(outputs, is_outputs_tuple, name):
    if is_outputs_tuple or not isinstance(outputs[0], Tensor):
        raise GradError(f"The function given to {name} should return a single Tensor")
    if outputs[0].numel() != 1:
        raise GradError(
            f"The Tensor returned by the function given to {name} should contain a single element"
        )


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), v^T H) for a function returning one element."""
    with enable_grad():
        is_inputs_tuple, inputs, v, is_outputs_tuple, outputs, jac = _hessian_setup(
            func, inputs, v, create_graph, strict, "vhp"
        )
    with set_grad_enabled(True if create_graph else is_grad_enabled()):
        res = autograd_grad(jac, inputs, v, create_graph=create_graph)
        res = fill_in_zeros(res, inputs, strict, create_graph, "double_back")
    return (
        unpack(postprocess(outputs, create_graph), is_outputs_tuple),
        unpack(postprocess(res, create_graph), is_inputs_tuple),
    )


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), H v) for a function returning one element, by the double-vjp trick."""
    with enable_grad():
        is_inputs_tuple, inputs, v, is_outputs_tuple, outputs, jac = _hessian_setup(
            func, inputs, v, create_graph, strict, "hvp"
        )
        grad_jac = tuple(Tensor(np.zeros_like(x._a), requires_grad=True) for x in inputs)
        double_back = autograd_grad(jac, inputs, grad_jac, create_graph=True)
        check_requires_grad(jac, "hessian", strict)
    with set_grad_enabled(True if create_graph else is_grad_enabled()):
        res = autograd_grad(double_back, grad_jac, v, create_graph=create_graph)
        res = fill_in_zeros(res, inputs, strict, create_graph, "double_back_trick")
    return (
        unpack(postprocess(outputs, create_graph), is_outputs_tuple),
        unpack(postprocess(res, create_graph), is_inputs_tuple),
    )


def _hessian_setup(func, inputs, v, create_graph, strict, name):
    """What vhp and hvp share: checked inputs and v, the scalar output and its gradient
    (with a graph, to differentiate again)."""
    is_inputs_tuple, inputs = as_tuple(inputs, "inputs", name)
    inputs = preprocess(inputs, create_graph, need_graph=True)
    v = _hp_v(v, inputs, is_inputs_tuple, create_graph, name)
    outputs = func(*inputs)
    is_outputs_tuple, outputs = as_tuple(outputs, "outputs of the user-provided function", name)
    check_requires_grad(outputs, "outputs", strict)
    _scalar_func_checks(outputs, is_outputs_tuple, name)
    jac = autograd_grad(outputs, inputs, create_graph=True)
    check_requires_grad(jac, "jacobian", strict)
    return is_inputs_tuple, inputs, v, is_outputs_tuple, outputs, jac


def _hp_v(v, inputs, is_inputs_tuple, create_graph, name):
    if v is not None:
        _, v = as_tuple(v, "v", name)
        v = preprocess(v, create_graph, need_graph=False)
        validate_v(v, inputs, is_inputs_tuple)
        return v
    if len(inputs) != 1 or inputs[0].numel() != 1:
        raise GradError(
            "The vector v can only be None if the input to the user-provided function is a "
            "single Tensor with a single element."
        )
    return None
