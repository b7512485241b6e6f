"""The value nodes of the `expr` form (expr.py's compiler): operators, with constant
arithmetic folded only when the result is provably small, indexing and literals.

`Values` is a part of expr.py's `_Compiler`: it uses its `error`, `where`, `op_where`,
`resolve`, `emit`, `small_int`, `need_tensor` and `limits`."""

from __future__ import annotations

import ast
import math
import operator

from .errors import ProgramError
from .ir import List, Ref

BINOPS = {
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
CMPOPS = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
}
FOLD = {
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
NUMBERS = (bool, int, float)


def is_number(v) -> bool:
    return isinstance(v, NUMBERS)


class Values:
    # -- operators ------------------------------------------------------------------------
    def v_BinOp(self, node):
        sym = BINOPS.get(type(node.op))
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
            if is_number(value) or isinstance(value, Ref):
                return value if isinstance(value, Ref) else +value
            raise self.error("unary + needs a tensor or a number", "argument", node)
        sym = "neg" if isinstance(node.op, ast.USub) else "~"
        return self.operate(sym, (value,), self.where(node), node)

    def v_Compare(self, node):
        if len(node.ops) != 1:
            raise self.error("chained comparisons are not supported", "forbidden", node)
        sym = CMPOPS.get(type(node.ops[0]))
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
        if all(is_number(v) for v in values):
            return self.fold(sym, values, where)
        for v in values:
            if not (isinstance(v, Ref) or is_number(v)):
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
            out = FOLD[sym](a, b)
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
