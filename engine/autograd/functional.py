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

from ..dispatch import apply
from ..errors import GradError
from ..grad_mode import enable_grad, is_grad_enabled, set_grad_enabled
from ..registry import FUNCTIONS, OPS
from ..tensor import Tensor
from .backprop import grad as _grad

__all__ = ["hessian", "hvp", "jacobian", "jvp", "vhp", "vjp"]


def _as_tuple(x, arg_name, fn_name):
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


def _unpack(res, is_tuple):
    return res if is_tuple else res[0]


def _unpack2(res, is_outer_tuple, is_inner_tuple):
    if not is_inner_tuple:
        res = tuple(el[0] for el in res)
    return res if is_outer_tuple else res[0]


def _view_as_self(t: Tensor) -> Tensor:
    return apply(OPS["view"], (t,), {"shape": tuple(t.shape)})


def _preprocess(inputs, create_graph, need_graph):
    """Fresh graph roots: a view when differentiating through the caller's graph, else a
    detached copy that requires grad (need_graph) or not."""
    out = []
    for t in inputs:
        if create_graph and t.requires_grad:
            out.append(_view_as_self(t))
        else:
            d = t.detach()
            if need_graph:
                d.requires_grad_(True)
            out.append(d)
    return tuple(out)


def _postprocess(xs, create_graph):
    if create_graph:
        return xs
    return tuple(_postprocess(x, create_graph) if isinstance(x, tuple) else x.detach() for x in xs)


def _validate_v(v, other, is_other_tuple):
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


_STRICT = {
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


def _check_requires_grad(xs, kind, strict):
    if not strict:
        return
    for i, x in enumerate(xs):
        if x is None:
            raise GradError(
                f"The output of the user-provided function is independent of input {i}. This "
                "is not allowed in strict mode."
            )
        if not x.requires_grad:
            raise GradError(_STRICT[kind].format(i=i))


def _autograd_grad(outputs, inputs, grad_outputs=None, create_graph=False, retain_graph=None):
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


_FILL_MESSAGES = {
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


def _fill_in_zeros(grads, refs, strict, create_graph, stage):
    res = []
    for i, g in enumerate(grads):
        if g is None:
            if strict:
                raise GradError(_FILL_MESSAGES[stage].format(i=i))
            g = Tensor(np.zeros_like(refs[i]._a))
        elif strict and create_graph and not g.requires_grad:
            what = "hessian" if "double" in stage else "jacobian"
            raise GradError(
                f"The {what} of the user-provided function is independent of input {i}. This "
                "is not allowed in strict mode when create_graph=True."
            )
        res.append(g)
    return tuple(res)


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), v^T J): the vector-Jacobian product, shaped as the inputs."""
    with enable_grad():
        is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "vjp")
        inputs = _preprocess(inputs, create_graph, need_graph=True)
        outputs = func(*inputs)
        is_outputs_tuple, outputs = _as_tuple(
            outputs, "outputs of the user-provided function", "vjp"
        )
        _check_requires_grad(outputs, "outputs", strict)
        if v is not None:
            _, v = _as_tuple(v, "v", "vjp")
            v = _preprocess(v, create_graph, need_graph=False)
            _validate_v(v, outputs, is_outputs_tuple)
        elif len(outputs) != 1 or outputs[0].numel() != 1:
            raise GradError(
                "The vector v can only be None if the user-provided function returns a single "
                "Tensor with a single element."
            )
    with set_grad_enabled(True if create_graph else is_grad_enabled()):
        res = _autograd_grad(outputs, inputs, v, create_graph=create_graph)
        res = _fill_in_zeros(res, inputs, strict, create_graph, "back")
    return (
        _unpack(_postprocess(outputs, create_graph), is_outputs_tuple),
        _unpack(_postprocess(res, create_graph), is_inputs_tuple),
    )


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), J v): the Jacobian-vector product, shaped as the outputs, computed
    with the double-vjp trick."""
    with enable_grad():
        is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "jvp")
        inputs = _preprocess(inputs, create_graph, need_graph=True)
        if v is not None:
            _, v = _as_tuple(v, "v", "jvp")
            v = _preprocess(v, create_graph, need_graph=False)
            _validate_v(v, inputs, is_inputs_tuple)
        elif len(inputs) != 1 or inputs[0].numel() != 1:
            raise GradError(
                "The vector v can only be None if the input to the user-provided function is a "
                "single Tensor with a single element."
            )
        outputs = func(*inputs)
        is_outputs_tuple, outputs = _as_tuple(
            outputs, "outputs of the user-provided function", "jvp"
        )
        _check_requires_grad(outputs, "outputs", strict)
        grad_outputs = tuple(
            Tensor(np.zeros_like(o._a), requires_grad=o._a.dtype.kind == "f") for o in outputs
        )
        grad_inputs = _autograd_grad(outputs, inputs, grad_outputs, create_graph=True)
        _check_requires_grad(grad_inputs, "grad_inputs", strict)
    with set_grad_enabled(True if create_graph else is_grad_enabled()):
        res = _autograd_grad(grad_inputs, grad_outputs, v, create_graph=create_graph)
        res = _fill_in_zeros(res, outputs, strict, create_graph, "back_trick")
    return (
        _unpack(_postprocess(outputs, create_graph), is_outputs_tuple),
        _unpack(_postprocess(res, create_graph), is_outputs_tuple),
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
        is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "jacobian")
        inputs = _preprocess(inputs, create_graph, need_graph=True)
        outputs = func(*inputs)
        is_outputs_tuple, outputs = _as_tuple(
            outputs, "outputs of the user-provided function", "jacobian"
        )
        _check_requires_grad(outputs, "outputs", strict)
        jac = []
        for i, out in enumerate(outputs):
            rows = [[] for _ in inputs]
            n = out.numel()
            for k in range(n):
                basis = np.zeros(n, dtype=out._a.dtype)
                basis[k] = 1
                vj = _autograd_grad(
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
        jac = _postprocess(tuple(jac), create_graph)
        return _unpack2(jac, is_outputs_tuple, is_inputs_tuple)


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
    is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "hessian")
    if outer_jacobian_strategy not in ("forward-mode", "reverse-mode"):
        raise GradError('Expected strategy to be either "forward-mode" or "reverse-mode".')

    def single_output(*inp):
        out = func(*inp)
        is_out_tuple, t_out = _as_tuple(out, "outputs of the user-provided function", "hessian")
        _check_requires_grad(t_out, "outputs", strict)
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
        _check_requires_grad(jac, "jacobian", strict)
        return jac

    res = jacobian(
        jac_func,
        inputs,
        create_graph=create_graph,
        strict=strict,
        vectorize=vectorize,
        strategy=outer_jacobian_strategy,
    )
    return _unpack2(res, is_inputs_tuple, is_inputs_tuple)


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
        res = _autograd_grad(jac, inputs, v, create_graph=create_graph)
        res = _fill_in_zeros(res, inputs, strict, create_graph, "double_back")
    return (
        _unpack(_postprocess(outputs, create_graph), is_outputs_tuple),
        _unpack(_postprocess(res, create_graph), is_inputs_tuple),
    )


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), H v) for a function returning one element, by the double-vjp trick."""
    with enable_grad():
        is_inputs_tuple, inputs, v, is_outputs_tuple, outputs, jac = _hessian_setup(
            func, inputs, v, create_graph, strict, "hvp"
        )
        grad_jac = tuple(Tensor(np.zeros_like(x._a), requires_grad=True) for x in inputs)
        double_back = _autograd_grad(jac, inputs, grad_jac, create_graph=True)
        _check_requires_grad(jac, "hessian", strict)
    with set_grad_enabled(True if create_graph else is_grad_enabled()):
        res = _autograd_grad(double_back, grad_jac, v, create_graph=create_graph)
        res = _fill_in_zeros(res, inputs, strict, create_graph, "double_back_trick")
    return (
        _unpack(_postprocess(outputs, create_graph), is_outputs_tuple),
        _unpack(_postprocess(res, create_graph), is_inputs_tuple),
    )


def _hessian_setup(func, inputs, v, create_graph, strict, name):
    """What vhp and hvp share: checked inputs and v, the scalar output and its gradient
    (with a graph, to differentiate again)."""
    is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", name)
    inputs = _preprocess(inputs, create_graph, need_graph=True)
    v = _hp_v(v, inputs, is_inputs_tuple, create_graph, name)
    outputs = func(*inputs)
    is_outputs_tuple, outputs = _as_tuple(outputs, "outputs of the user-provided function", name)
    _check_requires_grad(outputs, "outputs", strict)
    _scalar_func_checks(outputs, is_outputs_tuple, name)
    jac = _autograd_grad(outputs, inputs, create_graph=True)
    _check_requires_grad(jac, "jacobian", strict)
    return is_inputs_tuple, inputs, v, is_outputs_tuple, outputs, jac


def _hp_v(v, inputs, is_inputs_tuple, create_graph, name):
    if v is not None:
        _, v = _as_tuple(v, "v", name)
        v = _preprocess(v, create_graph, need_graph=False)
        _validate_v(v, inputs, is_inputs_tuple)
        return v
    if len(inputs) != 1 or inputs[0].numel() != 1:
        raise GradError(
            "The vector v can only be None if the input to the user-provided function is a "
            "single Tensor with a single element."
        )
    return None
