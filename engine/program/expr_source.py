"""Where things are in an `expr` text, and what it may not contain: `Source` is the part of
expr.py's `_Compiler` that maps the rewritten source's positions back to the client's text
(ast gives UTF-8 byte columns of the rewritten source), builds errors there, and screens the
whole AST for forbidden constructs before anything is compiled. It reads the compiler's
`lines`, `encoded`, `starts`, `pos`, `text_lines` and `limits`."""

from __future__ import annotations

import ast
import bisect
from collections import deque

from .errors import ProgramError
from .ir import Where

FORBIDDEN = {
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


class Source:
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

    def screen(self, module: ast.Module) -> None:
        """Refuse forbidden constructs anywhere (before compiling anything), counting the
        nodes: breadth-first with a queue (ast.walk's order), so depth costs no stack."""
        limit = self.limits.max_syntax_nodes
        for n, node in enumerate(walk(module), 1):
            if n > limit:
                raise self.error(
                    f"program has more than {limit} syntax nodes",
                    "limit",
                    node if hasattr(node, "lineno") else None,
                    limit="max_syntax_nodes",
                )
            cls = type(node)
            if cls is ast.Name:
                name = node.id
            elif cls is ast.Attribute:
                name = node.attr
            elif cls is ast.keyword:
                name = node.arg or ""
            else:
                kind = cls.__name__
                if kind in FORBIDDEN:
                    raise self.error(f"{FORBIDDEN[kind]} is not allowed", "forbidden", node)
                continue
            if name.startswith("__") or (name.startswith("_") and cls is not ast.Name):
                what = "dunder names" if name.startswith("__") else "private names"
                raise self.error(
                    f"{name!r}: {what} are not allowed",
                    "forbidden",
                    node if hasattr(node, "lineno") else None,
                )


def walk(node: ast.AST):
    """ast.walk without its per-node generators (the same nodes in the same order)."""
    todo = deque([node])
    push, AST = todo.append, ast.AST
    while todo:
        node = todo.popleft()
        for field in node._fields:
            value = getattr(node, field, None)
            if isinstance(value, AST):
                push(value)
            elif isinstance(value, list):
                for item in value:
                    if isinstance(item, AST):
                        push(item)
        yield node
