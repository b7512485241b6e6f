"""The `expr` form: a program of assignments in Python syntax, or the seed's notation.

    Q = 3a³ − b²            # superscript powers, unicode minus, number-times-name
    h = relu(x @ W.T + b); p = softmax(h, dim=-1)

The text is first rewritten to Python (`3a³ − b²` → `3*a**3 - b**2`, keeping a map back to
the original columns), then parsed with `ast` and compiled against a whitelist into a
`Program`; nothing is ever evaluated. Hostile text is refused cheaply: the length and the
bracket nesting are checked before `ast.parse`, the parser's own depth errors are caught, the
AST is walked without recursion and counted, and constant arithmetic is folded only when the
result is provably small (`x**10**100` is refused, not computed)."""

from __future__ import annotations

import ast
import bisect
import functools
import math
import operator
import re
from types import GeneratorType

from .errors import ProgramError
from .ir import Eqn, List, Program, Ref, Where
from .limits import DEFAULT, Limits
from .names import DTYPE_NAMES, NAMESPACES, function_name, method_name, resolve
from .notation import PosMap, prescan, to_python

# -- compiling the AST --------------------------------------------------------------------------

_BINOPS = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
    ast.MatMult: "@",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
}
_CMPOPS = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
}
_FOLD = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": operator.mod,
    "**": operator.pow,
    "&": operator.and_,
    "|": operator.or_,
    "^": operator.xor,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_FORBIDDEN = {
    "Lambda": "lambda",
    "ListComp": "list comprehension",
    "SetComp": "set comprehension",
    "DictComp": "dict comprehension",
    "GeneratorExp": "generator expression",
    "IfExp": "conditional expression",
    "NamedExpr": "assignment expression (:=)",
    "JoinedStr": "f-string",
    "FormattedValue": "f-string",
    "Dict": "dict",
    "Set": "set",
    "BoolOp": "and/or",
    "Await": "await",
    "Yield": "yield",
    "YieldFrom": "yield",
    "Starred": "starred argument (*x)",
    "Import": "import",
    "ImportFrom": "import",
    "AugAssign": "in-place assignment (write `h = h + x`)",
    "AnnAssign": "annotated assignment",
    "FunctionDef": "function definition",
    "AsyncFunctionDef": "function definition",
    "ClassDef": "class definition",
    "Delete": "del",
    "Global": "global",
    "Nonlocal": "nonlocal",
}
_NUMBERS = (bool, int, float)


def _is_number(v) -> bool:
    return isinstance(v, _NUMBERS)


class _Compiler:
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
        self.outputs: dict[str, Ref] = {}
        self.n_nodes = 0
        self.n_temps = 0
        self.root = None  # the value node of the assignment being compiled
        self.target = None

    # -- positions ------------------------------------------------------------------------
    def line_bytes(self, lineno: int) -> bytes | None:
        """The line as UTF-8, or None when it is ASCII (byte and character columns agree)."""
        if lineno not in self.encoded:
            line = self.lines[lineno - 1] if 0 < lineno <= len(self.lines) else ""
            self.encoded[lineno] = None if line.isascii() else line.encode("utf-8")
        return self.encoded[lineno]

    def where_at(self, lineno: int, byte_col: int) -> Where:
        """Where, in the client's text, a position of the rewritten source is (ast gives
        columns in UTF-8 bytes)."""
        raw = self.line_bytes(lineno)
        col = byte_col if raw is None else len(raw[:byte_col].decode("utf-8", "ignore"))
        i = self.starts[min(lineno, len(self.starts)) - 1] + col
        orig = self.pos[i]
        line = bisect.bisect_right(self.text_lines, orig)
        return Where(line=line, col=orig - self.text_lines[line - 1] + 1)

    def where(self, node) -> Where:
        return self.where_at(node.lineno, node.col_offset)

    def op_where(self, node, left, right) -> Where:
        """Where the operator between two operands is (for `x @ W`, the `@`)."""
        if left.end_lineno == right.lineno == node.lineno:
            raw = self.line_bytes(node.lineno)
            line = self.lines[node.lineno - 1] if raw is None else raw.decode("latin-1")
            seg = line[left.end_col_offset : right.col_offset]  # latin-1: one char per byte
            k = len(seg) - len(seg.lstrip(" )\t"))
            return self.where_at(node.lineno, left.end_col_offset + k)
        return self.where(node)

    def error(self, message, kind, node=None, where=None, **extra):
        w = where or (self.where(node) if node is not None else None)
        loc = {"line": w.line, "col": w.col} if w else {}
        return ProgramError(message, kind=kind, **loc, **extra)

    # -- driving --------------------------------------------------------------------------
    def screen(self, module: ast.Module) -> None:
        """Refuse forbidden constructs anywhere (before compiling anything), counting the
        nodes: ast.walk is breadth-first with a queue, so depth costs no stack."""
        for n, node in enumerate(ast.walk(module), 1):
            if n > self.limits.max_syntax_nodes:
                raise self.error(
                    f"program has more than {self.limits.max_syntax_nodes} syntax nodes",
                    "limit",
                    node if hasattr(node, "lineno") else None,
                    limit="max_syntax_nodes",
                )
            kind = type(node).__name__
            if kind in _FORBIDDEN and kind not in ("Expr",):
                raise self.error(f"{_FORBIDDEN[kind]} is not allowed", "forbidden", node)
            name = getattr(node, "id", None) or getattr(node, "attr", None)
            if isinstance(node, ast.keyword):
                name = node.arg or ""
            if isinstance(name, str) and (
                name.startswith("__") or (name.startswith("_") and not isinstance(node, ast.Name))
            ):
                what = "dunder names" if name.startswith("__") else "private names"
                raise self.error(
                    f"{name!r}: {what} are not allowed",
                    "forbidden",
                    node if hasattr(node, "lineno") else None,
                )

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
            what = _FORBIDDEN.get(kind, kind)
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
                    what = _FORBIDDEN.get(type(node).__name__, type(node).__name__)
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
            eid, k = name, 1
            while eid in self.ids or eid in self.inputs:
                k += 1
                eid = f"{name}@{k}"
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

    # -- operators ------------------------------------------------------------------------
    def v_BinOp(self, node):
        sym = _BINOPS.get(type(node.op))
        if sym is None:
            raise self.error(
                f"operator {type(node.op).__name__} is not supported", "forbidden", node
            )
        left = yield node.left
        right = yield node.right
        where = self.op_where(node, node.left, node.right)
        return self.operate(sym, (left, right), where, node)

    def v_UnaryOp(self, node):
        if isinstance(node.op, ast.Not):
            raise self.error("`not` is not supported (use ~ on bool tensors)", "forbidden", node)
        value = yield node.operand
        if isinstance(node.op, ast.UAdd):
            if _is_number(value) or isinstance(value, Ref):
                return value if isinstance(value, Ref) else +value
            raise self.error("unary + needs a tensor or a number", "argument", node)
        sym = "neg" if isinstance(node.op, ast.USub) else "~"
        return self.operate(sym, (value,), self.where(node), node)

    def v_Compare(self, node):
        if len(node.ops) != 1:
            raise self.error("chained comparisons are not supported", "forbidden", node)
        sym = _CMPOPS.get(type(node.ops[0]))
        if sym is None:
            raise self.error(
                f"comparison {type(node.ops[0]).__name__} is not supported", "forbidden", node
            )
        left = yield node.left
        right = yield node.comparators[0]
        return self.operate(
            sym, (left, right), self.op_where(node, node.left, node.comparators[0]), node
        )

    def operate(self, sym, values, where, node):
        if all(_is_number(v) for v in values):
            return self.fold(sym, values, where)
        for v in values:
            if not (isinstance(v, Ref) or _is_number(v)):
                raise ProgramError(
                    f"operator {sym}: operands must be tensors or numbers, got "
                    f"{type(v).__name__} {v!r}",
                    kind="argument",
                    line=where.line,
                    col=where.col,
                    op=sym,
                )
        self.resolve(sym, where)
        return self.emit(sym, values, (), where, node)

    def fold(self, sym, values, where):
        """Constant arithmetic, computed only when the result is provably small."""
        if sym == "neg":
            return self.checked(-values[0], where)
        if sym == "~":
            if isinstance(values[0], float):
                raise ProgramError(
                    "~ needs an integer", kind="argument", line=where.line, col=where.col
                )
            return ~values[0]
        a, b = values
        if sym == "**" and isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1:
            bits = b * math.log2(abs(a))
            if bits > self.limits.max_int_bits:
                raise ProgramError(
                    f"constant {a}**{b} would have about {bits:.3g} bits, over the limit of "
                    f"{self.limits.max_int_bits}",
                    kind="limit",
                    limit="max_int_bits",
                    line=where.line,
                    col=where.col,
                )
        try:
            out = _FOLD[sym](a, b)
        except (ZeroDivisionError, OverflowError, ValueError, TypeError) as e:
            raise ProgramError(
                f"constant {a!r} {sym} {b!r}: {e}", kind="argument", line=where.line, col=where.col
            ) from None
        if isinstance(out, complex):
            raise ProgramError(
                f"constant {a!r} {sym} {b!r} is complex",
                kind="argument",
                line=where.line,
                col=where.col,
            )
        return self.checked(out, where)

    def checked(self, v, where):
        return (
            self.small_int(v, where=where) if isinstance(v, int) and not isinstance(v, bool) else v
        )

    # -- indexing and literals ------------------------------------------------------------
    def v_Subscript(self, node):
        value = yield node.value
        self.need_tensor(value, "indexing", node.value)
        index = yield node.slice
        if isinstance(index, Ref):
            index = (index,)  # x[i] is x[(i,)] for a tensor i: rules read it as an index tuple
        where = self.where_at(node.value.end_lineno, node.value.end_col_offset)
        self.resolve("[]", where)
        return self.emit("[]", (value, index), (), where, node)

    def v_Slice(self, node):
        parts = []
        for part in (node.lower, node.upper, node.step):
            v = None if part is None else (yield part)
            if not (v is None or (isinstance(v, int) and not isinstance(v, bool))):
                raise self.error("slice bounds must be integer constants", "argument", part)
            parts.append(v)
        return slice(*parts)

    def v_Tuple(self, node):
        items = []
        for e in node.elts:
            items.append((yield e))
        return tuple(items)

    def v_List(self, node):
        items = []
        for e in node.elts:
            items.append((yield e))
        return List(items)


def _parse(text: str, limits: Limits) -> Program:
    prescan(text, limits)
    src, pos = to_python(text)
    try:
        module = ast.parse(src, mode="exec")
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


_cached = functools.lru_cache(maxsize=256)(_parse)


def parse_expr(text: str, limits: Limits = DEFAULT) -> Program:
    """Compile program text to a Program (cached by text and limits); ProgramError on any
    problem, pointing at the line and column of the client's text."""
    return _cached(text, limits)


def set_cache_size(size: int) -> None:
    """Resize the parse cache (the service's `program_cache_size`; 0 disables it)."""
    global _cached
    _cached = functools.lru_cache(maxsize=size)(_parse) if size else _parse
