"""A lambda VJP as an expression to write into a compiled backward step.

`lambda g, other: g * other`, called with `g` and `s1`, becomes `g * s1`: one Python call
less per gradient (a tenth of a small op's backward). The lambda stays where the registry
declares it; this only reads its source. Names in its body other than its parameters are
read from its module when the step runs, as the lambda itself would (`G["d"].sgn(...)`).

Anything that is not a plain expression lambda (a def, defaults, a closure, nested scopes,
a walrus, source that no longer compiles to the lambda's own code) is called as it is."""

from __future__ import annotations

import ast
import builtins
import copy
import inspect

_MODULES: dict = {}  # source file -> parsed module, or None when unreadable

# Nodes whose names do not simply read a parameter or a module global.
_SCOPED = (
    ast.Lambda,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
    ast.NamedExpr,
    ast.Await,
    ast.Yield,
    ast.YieldFrom,
)


def expression(fn, args: list[str], module_name: str) -> str | None:
    """fn's body with its parameters replaced by the expressions `args` (names and reads
    without side effects, so a repeated one may be evaluated twice) and its other names by
    `module_name[...]`; None when fn cannot be inlined."""
    node = _lambda_node(fn)
    if node is None:
        return None
    params = [a.arg for a in node.args.args]
    if len(params) != len(args):
        return None
    if any(isinstance(sub, _SCOPED) for sub in ast.walk(node.body)):
        return None
    names = dict(zip(params, args, strict=True))
    module = fn.__globals__

    class Rewrite(ast.NodeTransformer):
        def visit_Name(self, name):
            if name.id in names:
                return ast.parse(names[name.id], mode="eval").body
            if name.id not in module and hasattr(builtins, name.id):
                return name  # a builtin: the compiled step sees the same ones
            read = ast.Subscript(
                ast.Name(module_name, ast.Load()), ast.Constant(name.id), ast.Load()
            )
            return ast.copy_location(read, name)

    return f"({ast.unparse(Rewrite().visit(copy.deepcopy(node.body)))})"


def _lambda_node(fn):
    code = getattr(fn, "__code__", None)
    if (
        code is None
        or fn.__name__ != "<lambda>"
        or fn.__closure__
        or fn.__defaults__
        or fn.__kwdefaults__
        or code.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS)
        or code.co_kwonlyargcount
        or code.co_posonlyargcount
    ):
        return None
    tree = _module(code.co_filename)
    if tree is None:
        return None
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Lambda)
            and node.lineno == code.co_firstlineno
            and _compiles_to(node, code)
        ):
            return node
    return None


def _module(filename):
    if filename not in _MODULES:
        try:
            with open(filename, encoding="utf-8") as f:
                _MODULES[filename] = ast.parse(f.read(), filename)
        except (OSError, SyntaxError, ValueError):
            _MODULES[filename] = None
    return _MODULES[filename]


def _compiles_to(node, code) -> bool:
    """Whether this lambda's source is the one `code` was compiled from (not another lambda
    on the same line, nor a file edited since it was imported)."""
    try:
        outer = compile(ast.Expression(node), code.co_filename, "eval")
    except (SyntaxError, ValueError):
        return False
    inner = next((c for c in outer.co_consts if inspect.iscode(c)), None)
    # (Not co_code: a .pyc from another 3.11 release may spell the same source otherwise.)
    return (
        inner is not None
        and inner.co_consts == code.co_consts
        and inner.co_names == code.co_names
        and inner.co_varnames == code.co_varnames
        and set(inner.co_positions()) == set(code.co_positions())
    )
