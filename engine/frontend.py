"""Front ends generated from an op's forward signature: positional operands, then the
attributes positionally or by keyword, with the forward's defaults."""

from __future__ import annotations

import inspect

from .dispatch import apply, apply_unary


def make_function(op):
    names = tuple(op.attrs)
    required = tuple(k for k, v in op.attrs.items() if v is inspect.Parameter.empty)
    defaults = {k: v for k, v in op.attrs.items() if v is not inspect.Parameter.empty}
    n_in = len(op.inputs)
    label = op.name

    def bind(rest, kwargs):
        if len(rest) > len(names):
            raise TypeError(
                f"{label}() takes {n_in + len(names)} positional arguments but "
                f"{n_in + len(rest)} were given"
            )
        attrs = dict(defaults)
        attrs.update(zip(names, rest, strict=False))
        if kwargs:
            for k in kwargs:
                if k not in op.attrs:
                    raise TypeError(f"{label}() got an unexpected keyword argument '{k}'")
            attrs.update(kwargs)
        for k in required:
            if k not in attrs:
                raise TypeError(f"{label}() missing required argument '{k}'")
        return attrs

    if op.variadic:

        def function(tensors, *rest, **kwargs):
            return apply(op, tuple(tensors), bind(rest, kwargs))

    elif not names and n_in == 1:

        def function(*args):
            if len(args) != 1:
                raise TypeError(f"{label}() takes 1 argument but {len(args)} were given")
            return apply_unary(op, args[0], {})

    elif not names:

        def function(*args):
            if len(args) != n_in:
                raise TypeError(f"{label}() takes {n_in} arguments but {len(args)} were given")
            return apply(op, args, {})

    else:

        def function(*args, **kwargs):
            if len(args) < n_in:
                for name in op.inputs[len(args) :]:
                    if name not in kwargs:
                        raise TypeError(f"{label}() missing required argument '{name}'")
                args = args + tuple(kwargs.pop(n) for n in op.inputs[len(args) :])
            return apply(op, args[:n_in], bind(args[n_in:], kwargs))

    function.__name__ = op.name
    function.__doc__ = op.doc
    return function
