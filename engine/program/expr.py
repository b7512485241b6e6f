"""The `expr` form: a program of assignments in Python syntax, or the seed's notation.

    Q = 3a³ − b²            # superscript powers, unicode minus, number-times-name
    h = relu(x @ W.T + b); p = softmax(h, dim=-1)

The text is first rewritten to Python (`3a³ − b²` → `3*a**3 - b**2`, keeping a map back to
the original columns), then parsed with `ast` and compiled against a whitelist into a
`Program`; nothing is ever evaluated. Hostile text is refused cheaply: the length and the
bracket nesting are checked before `ast.parse`, the parser's own depth errors are caught, the
AST is walked without recursion and counted, and constant arithmetic is folded only when the
result is provably small (`x**10**100` is refused, not computed). Compiling is linear in the
text (a re-bound name's next id is a counter, not a search). The operation limit is met while
compiling, at the operation over it: only the compiler knows which expressions fold to
constants, and a syntax error or forbidden construct anywhere is reported before it."""

from __future__ import annotations

import ast
import functools
import re
from types import GeneratorType

from .errors import ProgramError
from .expr_source import FORBIDDEN, Source
from .expr_values import Values
from .ir import Eqn, Program, Ref, Where
from .limits import DEFAULT, Limits
from .names import DTYPE_NAMES, NAMESPACES, function_name, method_name, resolve
from .notation import PosMap, prescan, statement_cuts, to_python

# -- compiling the AST --------------------------------------------------------------------------


class _Compiler(Source, Values):
    """The AST of one `expr` text to a Program: statements, names, calls and attributes here;
    positions and screening in `Source` (expr_source.py); operators, constant folding,
    indexing and literals in `Values` (expr_values.py)."""

    def __init__(self, text: str, src: str, pos: PosMap, limits: Limits):
        self.text, self.src, self.pos, self.limits = text, src, pos, limits
        self.lines = src.split("\n")
        self.encoded: dict[int, bytes] = {}  # line number -> UTF-8 (non-ASCII lines only)
        self.starts = [0]
        for line in self.lines[:-1]:
            self.starts.append(self.starts[-1] + len(line) + 1)
        self.text_lines = [0] + [m.end() for m in re.finditer("\n", text)]
        self.env: dict[str, object] = {}
        self.inputs: dict[str, Where] = {}
        self.eqns: list[Eqn] = []
        self.ids: set[str] = set()
        self.suffix: dict[str, int] = {}  # name -> the k of the last id emit gave it
        self.outputs: dict[str, Ref] = {}
        self.n_nodes = 0
        self.n_temps = 0
        self.root = None  # the value node of the assignment being compiled
        self.target = None

    # -- driving --------------------------------------------------------------------------
    def compile(self, module: ast.Module) -> Program:
        self.screen(module)
        for stmt in module.body:
            self.statement(stmt)
        if not self.outputs:
            raise ProgramError(
                "the program assigns no tensor: write `name = expression`", kind="syntax"
            )
        return Program(
            inputs=tuple(self.inputs),
            eqns=tuple(self.eqns),
            outputs=tuple(self.outputs.items()),
            input_where=tuple(self.inputs.items()),
        )

    def statement(self, stmt) -> None:
        self.tick(stmt)
        kind = type(stmt).__name__
        if isinstance(stmt, ast.Expr):
            raise self.error(
                "a statement must be an assignment `name = expression`", "syntax", stmt
            )
        if not isinstance(stmt, ast.Assign):
            what = FORBIDDEN.get(kind, kind)
            raise self.error(f"{what} is not allowed: only assignments", "forbidden", stmt)
        if len(stmt.targets) != 1:
            raise self.error("chained assignment (a = b = ...) is not allowed", "syntax", stmt)
        target = stmt.targets[0]
        if isinstance(target, ast.Name):
            self.check_target(target)
            self.root, self.target = stmt.value, target.id
            value = self.eval(stmt.value)
            self.root = self.target = None
            self.bind(target.id, value, stmt.value)
        elif isinstance(target, ast.Tuple | ast.List) and all(
            isinstance(t, ast.Name) for t in target.elts
        ):
            for t in target.elts:
                self.check_target(t)
            value = self.eval(stmt.value)
            if not isinstance(value, Ref):
                raise self.error("only a tuple-valued result can be unpacked", "syntax", stmt)
            for k, t in enumerate(target.elts):
                ref = self.emit("[]", (value, k), (), self.where(t), name=t.id)
                self.bind(t.id, ref, t)
        else:
            raise self.error("assign to a name (or a tuple of names)", "syntax", target)

    def check_target(self, t: ast.Name) -> None:
        self.tick(t)
        if t.id.startswith("__"):
            raise self.error(f"name {t.id!r}: dunder names are not allowed", "forbidden", t)
        if t.id in NAMESPACES or t.id in DTYPE_NAMES:
            raise self.error(f"{t.id!r} is a reserved name", "forbidden", t)

    def bind(self, name: str, value, node) -> None:
        if isinstance(value, tuple | slice) or value is Ellipsis:
            raise self.error(f"{name}: a tuple, list or slice cannot be assigned", "syntax", node)
        self.env[name] = value
        if isinstance(value, Ref):
            self.outputs[name] = value
        else:
            self.outputs.pop(name, None)  # a number is not an output

    def tick(self, node) -> None:
        self.n_nodes += 1
        if self.n_nodes > self.limits.max_syntax_nodes:
            raise self.error(
                f"program has more than {self.limits.max_syntax_nodes} syntax nodes",
                "limit",
                node,
                limit="max_syntax_nodes",
            )

    def eval(self, root):
        """The value of an expression: a Ref or a constant. Iterative: each handler is a
        generator that yields sub-expressions and is sent their values, so nesting depth
        costs heap, not Python stack."""
        stack: list[GeneratorType] = []
        pending, value = root, None
        while True:
            if pending is not None:
                node, pending = pending, None
                self.tick(node)
                handler = getattr(self, "v_" + type(node).__name__, None)
                if handler is None:
                    what = FORBIDDEN.get(type(node).__name__, type(node).__name__)
                    raise self.error(f"{what} is not allowed", "forbidden", node)
                r = handler(node)
                if isinstance(r, GeneratorType):
                    stack.append(r)
                    value = None
                else:
                    value = r
            if not stack:
                return value
            try:
                pending = stack[-1].send(value)
            except StopIteration as stop:
                stack.pop()
                value = stop.value
                if not stack:
                    return value

    def emit(self, fn, args, kwargs, where, node=None, name=None) -> Ref:
        if len(self.eqns) >= self.limits.max_nodes:
            raise ProgramError(
                f"program has more than {self.limits.max_nodes} operations",
                kind="limit",
                limit="max_nodes",
                line=where.line,
                col=where.col,
            )
        if name is None and node is not None and node is self.root:
            name = self.target
        if name is not None:
            # The first free of name, name@2, name@3...: ids and inputs only grow, so the
            # search resumes where the last one for this name stopped (linear in re-bindings).
            k = self.suffix.get(name, 1)
            eid = name if k == 1 else f"{name}@{k}"
            while eid in self.ids or eid in self.inputs:
                k += 1
                eid = f"{name}@{k}"
            self.suffix[name] = k
        else:
            self.n_temps += 1
            eid = f"%{self.n_temps}"
        self.ids.add(eid)
        self.eqns.append(Eqn(eid, fn, tuple(args), tuple(kwargs), where))
        return Ref(eid)

    def resolve(self, fn, where):
        try:
            resolve(fn)
        except ProgramError as e:
            raise e.at(where) from None
        return fn

    # -- leaves ---------------------------------------------------------------------------
    def v_Constant(self, node):
        v = node.value
        if v is None or v is Ellipsis or isinstance(v, bool | float | str):
            return v
        if isinstance(v, int):
            return self.small_int(v, node)
        raise self.error(f"{type(v).__name__} constants are not supported", "argument", node)

    def small_int(self, v, node=None, where=None):
        if v.bit_length() > self.limits.max_int_bits:
            raise self.error(
                f"integer constant of {v.bit_length()} bits exceeds the limit of "
                f"{self.limits.max_int_bits}",
                "limit",
                node,
                where,
                limit="max_int_bits",
            )
        return v

    def v_Name(self, node):
        name = node.id
        if name.startswith("__"):
            raise self.error(f"name {name!r}: dunder names are not allowed", "forbidden", node)
        if name in self.env:
            return self.env[name]
        if name in DTYPE_NAMES:
            return DTYPE_NAMES[name]
        if name in NAMESPACES:
            raise self.error(f"{name!r} is a namespace, not a value", "syntax", node)
        if name not in self.inputs:
            if name in self.ids:  # an input named like an earlier result's id
                raise self.error(f"name {name!r} clashes with a result id", "syntax", node)
            self.inputs[name] = self.where(node)
        return Ref(name)

    # -- calls and attributes -------------------------------------------------------------
    def dotted(self, node) -> str | None:
        """`torch.nn.functional.relu` as a string when it is a path in a namespace (its
        root a namespace name that the program did not assign), else None."""
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if isinstance(node, ast.Name) and node.id in NAMESPACES and node.id not in self.env:
            parts.append(node.id)
            return ".".join(reversed(parts))
        return None

    def check_attr(self, node) -> None:
        if node.attr.startswith("_"):
            raise self.error(
                f"attribute {node.attr!r}: private and dunder attributes are not allowed",
                "forbidden",
                node,
            )

    def attr_where(self, node) -> Where:
        return self.where_at(node.end_lineno, node.end_col_offset - len(node.attr.encode()))

    def v_Attribute(self, node):
        self.check_attr(node)
        path = self.dotted(node)
        if path is not None:  # torch.float64
            name = path.split(".", 1)[1] if "." in path else path
            if name in DTYPE_NAMES:
                return DTYPE_NAMES[name]
            raise self.error(
                f"{path!r} is not a value this language knows", "unknown_function", node
            )
        fn = method_name(node.attr, called=False)
        if fn is None:
            raise self.error(
                f"Tensor attribute {node.attr!r} is not available (attributes: T, mT; methods "
                "are called: x.sum())",
                "unknown_function",
                node,
                op=node.attr,
            )
        value = yield node.value
        self.need_tensor(value, node.attr, node.value)
        return self.emit(fn, (value,), (), self.attr_where(node), node)

    def v_Call(self, node):
        func = node.func
        receiver = None
        if isinstance(func, ast.Name):
            if func.id.startswith("__"):
                raise self.error(
                    f"name {func.id!r}: dunder names are not allowed", "forbidden", func
                )
            if func.id in self.env:
                raise self.error(f"{func.id!r} is a variable, not a function", "syntax", func)
            fn, where = function_name(func.id), self.where(func)
            label = func.id
        elif isinstance(func, ast.Attribute):
            self.check_attr(func)
            path = self.dotted(func)
            where = self.attr_where(func)
            if path is not None:
                fn, label = function_name(path), path
            else:
                fn, label = method_name(func.attr, called=True), f"Tensor.{func.attr}"
                receiver = func.value
        else:
            raise self.error("only functions and methods can be called", "forbidden", func)
        if fn is None:
            raise self.error(
                f"unknown function {label!r}; GET /v1/ops lists the registry",
                "unknown_function",
                func,
                op=label,
            )
        self.resolve(fn, where)
        args = []
        if receiver is not None:
            value = yield receiver
            self.need_tensor(value, func.attr, receiver)
            args.append(value)
        for a in node.args:
            if isinstance(a, ast.Starred):
                raise self.error("starred arguments (*x) are not allowed", "forbidden", a)
            args.append((yield a))
        kwargs = []
        for k in node.keywords:
            if k.arg is None:
                raise self.error("keyword splats (**x) are not allowed", "forbidden", k.value)
            if k.arg.startswith("_"):
                raise self.error(
                    f"keyword {k.arg!r}: private arguments are not allowed", "forbidden", k.value
                )
            kwargs.append((k.arg, (yield k.value)))
        return self.emit(fn, args, kwargs, where, node)

    def need_tensor(self, value, what, node) -> None:
        if not isinstance(value, Ref):
            raise self.error(
                f"{what}: needs a tensor, got {type(value).__name__} {value!r}", "argument", node
            )


def _parse(text: str, limits: Limits) -> Program:
    prescan(text, limits)
    src, pos = to_python(text)
    try:
        module = parse_module(src)
    except SyntaxError as e:
        c = _Compiler(text, src, pos, limits)
        lineno = e.lineno or 1
        line = c.lines[lineno - 1] if lineno <= len(c.lines) else ""
        w = c.where_at(lineno, len(line[: max((e.offset or 1) - 1, 0)].encode()))
        raise ProgramError(
            f"syntax error: {e.msg}", kind="syntax", line=w.line, col=w.col
        ) from None
    except (RecursionError, MemoryError):
        raise ProgramError(
            "expression nested too deeply for the parser", kind="limit", limit="max_depth"
        ) from None
    except ValueError as e:  # e.g. an integer literal of more than 4300 digits
        raise ProgramError(str(e), kind="limit", limit="max_int_bits") from None
    return _Compiler(text, src, pos, limits).compile(module)


# Source characters given to one ast.parse call. The parser holds the GIL from start to end
# (150 ms for 64 KB), and in the server every other thread waits that long: the event loop
# stopped answering /livez. Parsing a few KB of whole statements at a time lets it in.
PARSE_CHUNK = 2048


def parse_module(src: str) -> ast.Module:
    """ast.parse(src), a few KB of statements at a time, giving the same tree. A chunk each
    parser call sees starts with blank lines for those before it, so line numbers come
    out as in the whole text; a chunk that does not parse (a split inside something the
    cut points did not foresee) means the whole text is parsed at once, for its error."""
    cuts = statement_cuts(src, PARSE_CHUNK)
    if not cuts:
        return ast.parse(src, mode="exec")
    body: list[ast.stmt] = []
    start, lines = 0, 0
    try:
        for end in [*cuts, len(src)]:
            piece = src[start:end]
            body.extend(ast.parse("\n" * lines + piece, mode="exec").body)
            lines += piece.count("\n")
            start = end
    except SyntaxError:
        return ast.parse(src, mode="exec")
    return ast.Module(body=body, type_ignores=[])


_cached = functools.lru_cache(maxsize=256)(_parse)


def parse_expr(text: str, limits: Limits = DEFAULT) -> Program:
    """Compile program text to a Program (cached by text and limits); ProgramError on any
    problem, pointing at the line and column of the client's text."""
    return _cached(text, limits)


def set_cache_size(size: int) -> None:
    """Resize the parse cache (the service's `program_cache_size`; 0 disables it)."""
    global _cached
    _cached = functools.lru_cache(maxsize=size)(_parse) if size else _parse
