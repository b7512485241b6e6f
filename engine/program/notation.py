"""The seed's notation rewritten to Python, with a map back to the original columns, and the
cheap checks run on the raw text before `ast.parse` sees it (length, bracket depth).

    Q = 3a³ − b²   →   Q = 3*a**3 - b**2
"""

from __future__ import annotations

import bisect
import re

from .errors import ProgramError
from .limits import Limits

# -- the rewrite ------------------------------------------------------------------------

_SUPERSCRIPT = dict(zip("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+", strict=True))
_SYMBOLS = {"−": "-", "×": "*", "·": "*", "⋅": "*", "÷": "/"}
_SUP = "⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺"
# What the rewrite touches; everything else is copied in bulk. Strings are matched so that
# their contents are left alone; a number counts only where no name or number precedes it
# (`x2`, `1e5`, `0x1F` stay whole).
_TOKEN = re.compile(
    rf"""
    (?P<str>'[^'\n\\]*(?:\\.[^'\n\\]*)*'?|"[^"\n\\]*(?:\\.[^"\n\\]*)*"?)
    |(?P<num>(?<![\w.])(?:0[xXoObB][0-9a-fA-F_]+
        |(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d[\d_]*)?))
    |(?P<sup>[{_SUP}]+)
    |(?P<sym>[{"".join(_SYMBOLS)}])
    """,
    re.VERBOSE,
)
_MAX_DIGITS = 30  # a longer integer literal cannot fit any configurable int limit
_OPEN, _CLOSE = "([{", ")]}"


class PosMap:
    """Index in the rewritten text -> index in the client's text, from the list of edits
    (so the common, unedited text costs nothing)."""

    def __init__(self, n_text: int):
        self.n_text = n_text
        self.out_starts: list[int] = []
        self.edits: list[tuple[int, int, int, int]] = []  # out start/end, text start/end

    def add(self, out_start, out_end, text_start, text_end):
        self.out_starts.append(out_start)
        self.edits.append((out_start, out_end, text_start, text_end))

    def __getitem__(self, k: int) -> int:
        e = bisect.bisect_right(self.out_starts, k) - 1
        if e < 0:
            return min(k, self.n_text)
        o0, o1, t0, t1 = self.edits[e]
        if k < o1:
            return t0
        return min(t1 + (k - o1), self.n_text)


def to_python(text: str) -> tuple[str, PosMap]:
    """The text in Python syntax, and a map from its character indices back to the client's
    text (so errors point at what the client wrote)."""
    out: list[str] = []
    pos = PosMap(len(text))
    n, done, shift = len(text), 0, 0  # shift: len(out text) - len(text consumed)

    def edit(i, j, new):
        nonlocal done, shift
        out.append(text[done:i])
        pos.add(i + shift, i + shift + len(new), i, j)
        out.append(new)
        shift += len(new) - (j - i)
        done = j

    for m in _TOKEN.finditer(text):
        kind, i, j = m.lastgroup, m.start(), m.end()
        tok = m.group()
        if kind == "num":
            if tok.isdigit() and len(tok) > _MAX_DIGITS:
                raise ProgramError(
                    f"integer literal of {len(tok)} digits is too large",
                    kind="limit",
                    limit="max_int_bits",
                    **line_col(text, i),
                )
            if j < n and (text[j].isidentifier() or text[j] == "("):
                edit(j, j, "*")  # 3a, 2.5x, 2(a+b): a product
        elif kind == "sup":
            run = "".join(_SUPERSCRIPT[ch] for ch in tok)
            if not re.fullmatch(r"[-+]?\d+", run):
                raise ProgramError(
                    f"superscript {tok!r} is not a power: write digits, optionally after ⁻ (x⁻¹)",
                    kind="syntax",
                    **line_col(text, i),
                )
            edit(i, j, "**" + (run if run[0].isdigit() else f"({run})"))
        elif kind == "sym":
            edit(i, j, _SYMBOLS[tok])
    out.append(text[done:])
    return "".join(out), pos


def line_col(text: str, index: int) -> dict:
    index = max(0, min(index, len(text)))
    line = text.count("\n", 0, index) + 1
    col = index - (text.rfind("\n", 0, index) + 1) + 1
    return {"line": line, "col": col}


# Brackets, with strings (to their end or the line's) and comments matched whole so that the
# brackets inside them do not count; newlines and continuations too, for statement_cuts.
_QUOTED = r"""'[^'\n\\]*(?:\\.[^'\n\\]*)*'?|"[^"\n\\]*(?:\\.[^"\n\\]*)*"?|#[^\n]*"""
_BRACKETS = re.compile(rf"[()\[\]{{}}]|{_QUOTED}")
_STRUCTURE = re.compile(rf"[()\[\]{{}}]|{_QUOTED}|\\\n|\n")


def prescan(text: str, limits: Limits) -> None:
    """Length and bracket nesting, before the parser sees the text (deep nesting makes
    Python's parser raise MemoryError/RecursionError, and takes time to do so)."""
    if not isinstance(text, str):
        raise ProgramError("the program must be a string", kind="input")
    if len(text) > limits.max_expr_chars:
        raise ProgramError(
            f"program text of {len(text)} characters exceeds the limit of {limits.max_expr_chars}",
            kind="limit",
            limit="max_expr_chars",
        )
    depth = 0
    for m in _BRACKETS.finditer(text):  # (strings and comments are matched whole, skipped)
        c = m.group()
        if c in _OPEN:
            depth += 1
            if depth > limits.max_depth:
                raise ProgramError(
                    f"brackets nested more than {limits.max_depth} deep",
                    kind="limit",
                    limit="max_depth",
                    **line_col(text, m.start()),
                )
        elif c in _CLOSE:
            depth -= 1


def statement_cuts(src: str, chunk: int) -> list[int]:
    """Indices in Python source where a top-level statement begins (after a newline outside
    brackets, strings, comments and continuations, before an unindented line), at least
    `chunk` characters apart; none for a text of at most `chunk`. Only a hint: the parser
    checks the pieces (see expr.parse_module)."""
    if len(src) <= chunk:
        return []
    cuts: list[int] = []
    depth, last = 0, 0
    for m in _STRUCTURE.finditer(src):
        c = m.group()
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth -= 1
        elif c == "\n" and depth <= 0:
            i = m.end()
            if i - last >= chunk and i < len(src) and src[i] not in " \t\n":
                cuts.append(i)
                last = i
    return cuts
