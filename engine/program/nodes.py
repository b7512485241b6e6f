"""The `nodes` form: a flat JSON list of operations, for generated graphs.

    {"nodes": [{"id": "a3", "op": "pow", "inputs": ["a", 3]},
               {"id": "t",  "op": "mul", "inputs": [3, "a3"]},
               {"id": "b2", "op": "pow", "inputs": ["b", 2]},
               {"id": "Q",  "op": "sub", "inputs": ["t", "b2"]}],
     "outputs": ["Q"]}

- `op`: a registry function (`GET /v1/ops`), with or without `torch.`/`F.`; an operator by
  torch's name (`add`, `sub`, `mul`, `div`, `matmul`, `getitem`, `eq`...) or symbol (`+`,
  `[]`); or a Tensor attribute (`T`, `mT`, `float`, `double`, `long`, `bool`, `detach`).
- `inputs`: the positional arguments. A string is a reference (a node id or an input name),
  a number/bool/null a constant, an array a list (cat's tensors, a shape).
- `attrs`: keyword arguments; here a string is a string (`"reduction": "sum"`).
- Anywhere, an object is a value JSON has no literal for: `{"ref": id}`, `{"slice": [start,
  stop, step]}`, `{"ellipsis": true}`, `{"tuple": [...]}` (for indices: `x[:, 0]` is
  `{"op": "getitem", "inputs": ["x", {"tuple": [{"slice": [null, null, null]}, 0]}]}`).

Nodes may come in any order; they are sorted topologically (Kahn's algorithm, no recursion)
and refused on duplicate ids, unknown ops, references to nothing and cycles."""

from __future__ import annotations

from collections import deque

from ..registry import FUNCTIONS
from .errors import ProgramError
from .ir import Eqn, List, Program, Ref, Where
from .limits import DEFAULT, Limits
from .names import OPERATORS, TENSOR_ATTRS, function_name, resolve

_KEYS = {"id", "op", "inputs", "attrs"}


def op_name(op: str) -> str | None:
    """The `fn` for a node's `op`, or None."""
    if op in FUNCTIONS or op in OPERATORS:
        return op
    name = function_name(op)
    if name is not None:
        return name
    attr = op.removeprefix(".")
    if attr in TENSOR_ATTRS:
        return "." + attr
    return None


class _Decoder:
    def __init__(self, limits: Limits):
        self.limits = limits
        self.count = 0

    def value(self, v, node_id, refs: list, strings_are_refs: bool, depth=0):
        self.count += 1
        if self.count > self.limits.max_syntax_nodes:
            raise ProgramError(
                f"the nodes' inputs and attrs hold more than {self.limits.max_syntax_nodes} values",
                kind="limit",
                limit="max_syntax_nodes",
                node=node_id,
            )
        if depth > self.limits.max_depth:
            raise ProgramError(
                f"a value nested more than {self.limits.max_depth} deep",
                kind="limit",
                limit="max_depth",
                node=node_id,
            )
        if isinstance(v, str):
            if strings_are_refs:
                refs.append(v)
                return Ref(v)
            return v
        if v is None or isinstance(v, bool | float):
            return v
        if isinstance(v, int):
            if v.bit_length() > self.limits.max_int_bits:
                raise ProgramError(
                    f"integer constant of {v.bit_length()} bits exceeds the limit of "
                    f"{self.limits.max_int_bits}",
                    kind="limit",
                    limit="max_int_bits",
                    node=node_id,
                )
            return v
        if isinstance(v, list):
            return List(self.value(x, node_id, refs, strings_are_refs, depth + 1) for x in v)
        if isinstance(v, dict) and len(v) == 1:
            ((key, inner),) = v.items()
            if key == "ref" and isinstance(inner, str):
                refs.append(inner)
                return Ref(inner)
            if key == "slice" and isinstance(inner, list) and len(inner) <= 3:
                parts = [self.value(x, node_id, refs, False, depth + 1) for x in inner]
                if all(
                    p is None or (isinstance(p, int) and not isinstance(p, bool)) for p in parts
                ):
                    return slice(*parts) if parts else slice(None)
            if key == "ellipsis" and inner is True:
                return Ellipsis
            if key == "tuple" and isinstance(inner, list):
                return tuple(
                    self.value(x, node_id, refs, strings_are_refs, depth + 1) for x in inner
                )
        raise ProgramError(
            f"cannot read {v!r} as a value: use a reference string, a number, a list, or "
            '{"ref": id}, {"slice": [start, stop, step]}, {"ellipsis": true}, {"tuple": [...]}',
            kind="input",
            node=node_id,
        )


def parse_nodes(nodes, outputs, inputs=None, limits: Limits = DEFAULT) -> Program:
    """Compile the nodes form to a Program. `inputs` (names), when given, makes a reference
    to anything else an error here; otherwise unknown references become program inputs and
    `check` reports the ones not supplied."""
    if not isinstance(nodes, list):
        raise ProgramError("`nodes` must be a list of node objects", kind="input")
    if len(nodes) > limits.max_nodes:
        raise ProgramError(
            f"{len(nodes)} nodes exceed the limit of {limits.max_nodes}",
            kind="limit",
            limit="max_nodes",
        )
    if not isinstance(outputs, list) or not outputs or not all(isinstance(o, str) for o in outputs):
        raise ProgramError("`outputs` must be a non-empty list of node ids", kind="input")
    given = None if inputs is None else set(inputs)
    decoder = _Decoder(limits)
    eqns: dict[str, Eqn] = {}
    deps: dict[str, list[str]] = {}
    for k, node in enumerate(nodes):
        eqn, refs = _node(node, k, decoder)
        if eqn.id in eqns:
            raise ProgramError(f"duplicate node id {eqn.id!r}", kind="duplicate", node=eqn.id)
        if given is not None and eqn.id in given:
            raise ProgramError(
                f"node id {eqn.id!r} is also an input name", kind="duplicate", node=eqn.id
            )
        eqns[eqn.id] = eqn
        deps[eqn.id] = refs
    free: dict[str, Where] = {}
    for nid, refs in deps.items():
        for r in refs:
            if r in eqns:
                continue
            if given is not None and r not in given:
                raise ProgramError(
                    f"node {nid!r} refers to {r!r}, which is neither a node id nor an input",
                    kind="undefined",
                    node=nid,
                )
            free.setdefault(r, Where(node=nid))
    for o in outputs:
        if o not in eqns:
            raise ProgramError(f"output {o!r} is not a node id", kind="undefined", node=o)
    order = _toposort(deps, eqns)
    return Program(
        inputs=tuple(free),
        eqns=tuple(eqns[i] for i in order),
        outputs=tuple((o, Ref(o)) for o in dict.fromkeys(outputs)),
        input_where=tuple(free.items()),
    )


def _node(node, k, decoder) -> tuple[Eqn, list[str]]:
    if not isinstance(node, dict):
        raise ProgramError(f"node #{k} is not an object", kind="input")
    nid = node.get("id")
    if not isinstance(nid, str) or not nid:
        raise ProgramError(f"node #{k} needs a non-empty string `id`", kind="input")
    extra = set(node) - _KEYS
    if extra:
        raise ProgramError(f"unknown node fields {sorted(extra)}", kind="input", node=nid)
    op = node.get("op")
    fn = op_name(op) if isinstance(op, str) else None
    if fn is None:
        raise ProgramError(
            f"unknown op {op!r}; GET /v1/ops lists the registry",
            kind="unknown_function",
            node=nid,
            op=str(op),
        )
    where = Where(node=nid)
    try:
        resolve(fn)
    except ProgramError as e:
        raise e.at(where) from None
    args, attrs = node.get("inputs", []), node.get("attrs", {})
    if not isinstance(args, list) or not isinstance(attrs, dict):
        raise ProgramError("`inputs` must be a list and `attrs` an object", kind="input", node=nid)
    refs: list[str] = []
    values = tuple(decoder.value(a, nid, refs, True) for a in args)
    kwargs = []
    for name, v in attrs.items():
        if not name.isidentifier() or name.startswith("_"):
            raise ProgramError(
                f"attribute name {name!r} is not allowed", kind="forbidden", node=nid
            )
        kwargs.append((name, decoder.value(v, nid, refs, False)))
    if resolve(fn).picks and len(values) == 2 and isinstance(values[1], Ref):
        values = (values[0], (values[1],))  # x[i] is x[(i,)] for a tensor i, as in expr
    return Eqn(nid, fn, values, tuple(kwargs), where), refs


def _toposort(deps: dict[str, list[str]], eqns: dict) -> list[str]:
    """Kahn's algorithm, keeping the given order where dependencies allow."""
    users: dict[str, list[str]] = {}
    missing = {}
    for nid, refs in deps.items():
        inner = {r for r in refs if r in eqns}
        missing[nid] = len(inner)
        for r in inner:
            users.setdefault(r, []).append(nid)
    ready = deque(n for n in deps if missing[n] == 0)
    order = []
    while ready:
        n = ready.popleft()
        order.append(n)
        for u in users.get(n, ()):
            missing[u] -= 1
            if missing[u] == 0:
                ready.append(u)
    if len(order) < len(deps):
        cycle = _find_cycle(deps, {n for n in deps if missing[n] > 0})
        raise ProgramError(
            "the nodes form a cycle: "
            + " -> ".join(map(repr, cycle[:12]))
            + (" ..." if len(cycle) > 12 else ""),
            kind="cycle",
            node=cycle[0],
        )
    return order


def _find_cycle(deps, stuck: set) -> list[str]:
    """One cycle among the nodes Kahn's algorithm could not order: walk dependencies that
    are themselves stuck until a node repeats (every stuck node has one)."""
    n = next(iter(n for n in deps if n in stuck))
    seen: dict[str, int] = {}
    path = []
    while n not in seen:
        seen[n] = len(path)
        path.append(n)
        n = next(r for r in deps[n] if r in stuck)
    cycle = path[seen[n] :]
    return [*cycle, cycle[0]]
