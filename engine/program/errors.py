"""ProgramError: every way a program can be refused, with where and why.

`kind` is machine-readable (the HTTP layer maps it to a problem type and status); `line` and
`col` (1-based, in the text as the client wrote it) or `node` (the node id) say where; `op`
and `shapes` say what did not fit."""

from __future__ import annotations

from ..errors import EngineError

#: Every `ProgramError.kind`, with what it means. All are the client's fault (HTTP 422)
#: except `no_rule` (a registry function without a usable shape/dtype rule: a bug of ours),
#: `runtime` (the engine failed after every check passed) and `unavailable` (501).
KINDS = {
    "syntax": "text that is not a program: bad syntax, a statement that is not `name = expr`",
    "forbidden": "a construct outside the language: dunder or private names, imports, "
    "lambdas, comprehensions, starred or ** arguments, f-strings, walrus, conditionals...",
    "limit": "a configured limit exceeded: text length, nesting, nodes, elements, FLOPs, "
    "peak bytes, constant size (`limit` names which, `value` what was asked where known)",
    "unknown_function": "a function, method, attribute, operator or op not in the registry",
    "undefined": "a name or node reference that is neither assigned nor a given input",
    "duplicate": "two nodes with the same id",
    "cycle": "nodes that depend on themselves",
    "arity": "wrong number or names of arguments for the function",
    "argument": "an argument of the wrong type or value (dims out of range, bad constants)",
    "shape": "operand shapes that do not fit the op",
    "dtype": "operand dtypes the op does not accept",
    "input": "a malformed input or program description (not JSON-shaped as documented)",
    "no_rule": "a registered function whose shape or dtype rule is missing or does not "
    "accept this call: a registry bug, reported rather than skipped",
    "runtime": "the engine failed while evaluating a program that passed every check",
    "unavailable": "a feature needing software that is not installed (Graphviz's `dot`)",
}


class ProgramError(EngineError, ValueError):
    """A program refused before (or, kind `runtime`, while) running it."""

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        line: int | None = None,
        col: int | None = None,
        node: str | None = None,
        op: str | None = None,
        shapes=(),
        limit: str | None = None,
        value: int | None = None,
    ):
        assert kind in KINDS, kind
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.line = line
        self.col = col
        self.node = node
        self.op = op
        self.shapes = [None if s is None else list(s) for s in shapes]
        self.limit = limit
        self.value = value  # what a `limit` refusal asked for (FLOPs, bytes), where known

    def at(self, where) -> ProgramError:
        """Fill in the location from a `Where` unless one is already set."""
        if where is not None and self.line is None and self.node is None:
            self.line, self.col, self.node = where.line, where.col, where.node
        return self

    @property
    def location(self) -> str:
        if self.node is not None:
            return f"node {self.node!r}"
        if self.line is not None:
            return f"line {self.line}, column {self.col}"
        return ""

    def __str__(self) -> str:
        loc = self.location
        return f"{loc}: {self.message}" if loc else self.message

    def to_dict(self) -> dict:
        """The JSON-able fields, `None`s left out."""
        out = {"kind": self.kind, "message": self.message}
        for key in ("line", "col", "node", "op", "limit", "value"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.shapes:
            out["shapes"] = self.shapes
        return out
