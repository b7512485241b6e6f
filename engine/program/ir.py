"""The intermediate representation both program forms compile to (JAX's jaxpr, in small).

A `Program` is its inputs (free names), a flat list of equations in evaluation order and its
named outputs. An equation applies one callable `fn` to arguments:

- `fn` is a key of `engine.registry.FUNCTIONS` (`"sum"`, `"softmax"`, `"linalg.norm"`), an
  operator symbol (`"+"`, `"@"`, `"**"`, `"neg"`, `"[]"`...) or a Tensor attribute (`".T"`,
  `".float"`): `engine.program.names` says what each means;
- an argument is a `Ref` to an input or an earlier equation, a constant (int, float, bool,
  None, str, slice, Ellipsis) or a tuple/`List` of arguments (cat's tensors, an index);
- `where` is the line/column of the expression or the id of the node it came from.

Programs are immutable (parsed programs are cached and shared between requests)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Ref:
    """The value of input `id` or of the equation with that id."""

    id: str

    def __repr__(self) -> str:
        return self.id


class List(tuple):
    """A list argument (torch tells `x[[0, 1]]` from `x[0, 1]`), immutable like the rest."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"[{', '.join(map(repr, self))}]"


@dataclass(frozen=True, slots=True)
class Where:
    """Where an equation came from: 1-based line and column in the text, or a node id."""

    line: int | None = None
    col: int | None = None
    node: str | None = None

    def __str__(self) -> str:
        if self.node is not None:
            return f"node {self.node!r}"
        return f"line {self.line}, column {self.col}"


@dataclass(frozen=True, slots=True)
class Eqn:
    id: str
    fn: str
    args: tuple
    kwargs: tuple  # ((name, value), ...): hashable and ordered
    where: Where

    @property
    def kw(self) -> dict:
        return dict(self.kwargs)

    def refs(self):
        """Every Ref among the arguments, nested ones included."""
        stack = [*self.args, *(v for _, v in self.kwargs)]
        while stack:
            a = stack.pop()
            if isinstance(a, Ref):
                yield a
            elif isinstance(a, tuple):
                stack.extend(a)

    def __str__(self) -> str:
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs]
        return f"{self.id} = {self.fn}({', '.join(parts)})  # {self.where}"


@dataclass(frozen=True)
class Program:
    inputs: tuple[str, ...]  # names the program reads without assigning, in first-use order
    eqns: tuple[Eqn, ...]
    outputs: tuple[tuple[str, Ref], ...]  # (name, value) in assignment order
    # Where each input is first used, so "undefined name" errors can point at it.
    input_where: tuple[tuple[str, Where], ...] = field(default=(), compare=False)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.outputs)

    def output(self, name: str) -> Ref:
        for n, ref in self.outputs:
            if n == name:
                return ref
        raise KeyError(name)

    def where_input(self, name: str) -> Where | None:
        return dict(self.input_where).get(name)

    def __str__(self) -> str:
        lines = [f"inputs: {', '.join(self.inputs)}"]
        lines += [str(e) for e in self.eqns]
        lines.append("outputs: " + ", ".join(f"{n}={r!r}" for n, r in self.outputs))
        return "\n".join(lines)
