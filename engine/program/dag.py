"""The backward graph autograd recorded, as JSON-able data and as Graphviz DOT.

`describe(outputs, inputs)` walks the grad_fn graph reachable from the chosen output tensors
(iteratively) and numbers its nodes in topological order from the outputs (a node comes after
every node whose gradient flows into it):

    {"nodes": [{"id": 0, "name": "SubBackward0", "op": "sub", "shape": [2],
                "dtype": "float32", "next": [1, 3]}, ...,
               {"id": 2, "name": "AccumulateGrad", "op": null, "shape": [2],
                "dtype": "float32", "next": [], "input": "a", "requires_grad": true}],
     "outputs": {"Q": 0},
     "dot": "digraph autograd { ... }"}

`next` lists, in `next_functions` order, the ids the node's gradient flows to (null where
none flows, as torch's `(None, 0)`). A node's shape and dtype are those of the tensor it
produced (read from the consumer that recorded it, so composite ops' inner nodes have them
too). The DOT text draws the graph as the seed tutorial's figure: arrows in the direction
of the forward pass, leaves (the input tensors) in light blue. `render_svg` runs Graphviz."""

from __future__ import annotations

import resource
import shutil
import subprocess
from collections import deque
from collections.abc import Mapping

from ..graph import AccumulateGrad
from .errors import ProgramError


class GraphvizMissing(ProgramError):
    """Graphviz's `dot` is not installed (the HTTP layer answers 501)."""


def describe(outputs: Mapping, inputs: Mapping | None = None, *, dot: bool = True) -> dict:
    """The backward graph of `outputs` (name -> Tensor); `inputs` (name -> Tensor) names
    the leaves. Output tensors without a grad_fn map to null (or to their leaf, for an input
    that requires grad)."""
    names = {id(t): n for n, t in (inputs or {}).items()}
    roots = []
    out_ids = {}
    for name, t in outputs.items():
        fn = _node_of(t)
        out_ids[name] = fn
        if fn is not None:
            roots.append((fn, t))

    # Collect the reachable nodes and how many consumers each has (iteratively).
    consumers: dict[int, int] = {}
    nodes: dict[int, object] = {}
    stack = [fn for fn, _ in roots]
    for fn in stack:
        nodes[id(fn)] = fn
    seen = set(nodes)
    while stack:
        fn = stack.pop()
        for nxt, _ in fn.next_functions:
            if nxt is None:
                continue
            consumers[id(nxt)] = consumers.get(id(nxt), 0) + 1
            if id(nxt) not in seen:
                seen.add(id(nxt))
                nodes[id(nxt)] = nxt
                stack.append(nxt)

    # Shapes/dtypes: a node's output is the operand its consumers recorded.
    meta: dict[int, tuple] = {}
    for fn, t in roots:
        meta.setdefault(id(fn), (tuple(t.shape), str(t.dtype)))
    for fn in nodes.values():
        shapes = getattr(fn, "shapes", ())
        dts = getattr(fn, "dtypes", ())
        for i, (nxt, _) in enumerate(fn.next_functions):
            if nxt is not None and id(nxt) not in meta and i < len(shapes):
                dt = dts[i] if i < len(dts) else None
                meta[id(nxt)] = (tuple(shapes[i]), None if dt is None else str(dt))

    # Number in topological order from the outputs (Kahn's algorithm, stable).
    order: dict[int, int] = {}
    left = dict(consumers)
    ready = deque(fn for fn, _ in roots if left.get(id(fn), 0) == 0)
    queued = {id(fn) for fn in ready}
    while ready:
        fn = ready.popleft()
        if id(fn) in order:
            continue
        order[id(fn)] = len(order)
        for nxt, _ in fn.next_functions:
            if nxt is None:
                continue
            left[id(nxt)] -= 1
            if left[id(nxt)] == 0 and id(nxt) not in queued:
                queued.add(id(nxt))
                ready.append(nxt)

    entries = []
    for key, num in sorted(order.items(), key=lambda kv: kv[1]):
        fn = nodes[key]
        shape, dtype = meta.get(key, (None, None))
        op = getattr(fn, "op", None)
        entry = {
            "id": num,
            "name": fn.name(),
            "op": None if op is None else op.name,
            "shape": None if shape is None else list(shape),
            "dtype": dtype,
            "next": [None if n is None else order[id(n)] for n, _ in fn.next_functions],
        }
        if isinstance(fn, AccumulateGrad) and fn.variable is not None:  # (None: leaf gone)
            v = fn.variable
            entry["shape"], entry["dtype"] = list(v.shape), str(v.dtype)
            entry["input"] = names.get(id(v))
            entry["requires_grad"] = bool(v.requires_grad)
        entries.append(entry)
    result = {
        "nodes": entries,
        "outputs": {n: None if fn is None else order[id(fn)] for n, fn in out_ids.items()},
    }
    if dot:
        result["dot"] = to_dot(result)
    return result


def _node_of(t):
    if t.grad_fn is not None:
        return t.grad_fn
    if t.requires_grad:
        return t.accumulator()
    return None


def _q(s: str) -> str:
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _shape_text(shape) -> str:
    return (
        "()"
        if shape is None
        else "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"
    )


def to_dot(desc: dict) -> str:
    """DOT text of a `describe` result, drawn as the seed's figure: arrows in the forward
    direction (from the leaves toward the outputs), leaves in light blue."""
    lines = [
        "digraph autograd {",
        '  graph [rankdir=TB, fontname="Helvetica"];',
        '  node [shape=box, style="rounded,filled", fillcolor=white, fontname="Helvetica"];',
    ]
    for e in desc["nodes"]:
        if e["name"] == "AccumulateGrad":
            label = f"{e.get('input') or 'leaf'}\n{_shape_text(e['shape'])}"
            lines.append(f"  n{e['id']} [label={_q(label)}, fillcolor=lightblue];")
        else:
            lines.append(f"  n{e['id']} [label={_q(e['name'])}];")
    for e in desc["nodes"]:
        for n in e["next"]:
            if n is not None:
                lines.append(f"  n{n} -> n{e['id']};")
    for k, (name, nid) in enumerate(desc["outputs"].items()):
        if nid is None:
            continue
        shape = next((e["shape"] for e in desc["nodes"] if e["id"] == nid), None)
        label = f"{name}\n{_shape_text(shape)}"
        lines.append(f"  out{k} [label={_q(label)}, shape=ellipse, fillcolor=darkseagreen1];")
        lines.append(f"  n{nid} -> out{k};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def layout_size(desc: dict) -> int:
    """The nodes dot lays out for `describe`'s graph: its own, plus one per rank each edge
    crosses beyond the first (dot draws a long edge as a chain of virtual nodes, one per
    rank). Graphviz's time and memory grow with this, not with the node count alone: a
    few hundred nodes each reading a value computed far earlier make tens of thousands.

    Ranks by longest path from the leaves, a leaf one rank above its first consumer: a
    feasible ranking, so an upper bound of the total edge length dot's own (optimal) one has.
    """
    nodes = desc["nodes"]
    inputs = {node["id"]: [n for n in node["next"] if n is not None] for node in nodes}
    rank: dict[int, int] = {}
    for node in reversed(nodes):  # `nodes` lists a node after those its gradient flows to
        ranks = [rank[n] for n in inputs[node["id"]]]
        rank[node["id"]] = 1 + max(ranks) if ranks else 0
    closest: dict[int, int] = {}  # each leaf pulled down next to its closest consumer
    for node, feeding in inputs.items():
        for n in feeding:
            if not inputs[n]:
                closest[n] = min(closest.get(n, rank[node]), rank[node])
    rank.update({leaf: at - 1 for leaf, at in closest.items()})
    return len(nodes) + sum(rank[node] - rank[n] - 1 for node, ns in inputs.items() for n in ns)


class DrawingTooCostly(ProgramError):
    """Graphviz ran past its time (`limit` "seconds") or memory (`limit` "bytes") cap."""


NETWORK_SIMPLEX_ITERATIONS = 200
"""dot's network simplex (ranking, then x positions) iterates until optimal by default:
minutes for 200 nodes each reading a value computed far earlier. Its `nslimit` caps the
iterations at that many times the node count: at most one per node, and at most this many,
each costing time in proportion to the layout (`layout_size`). Ordinary graphs converge
long before; beyond, the drawing is merely less compact."""


def render_svg(
    dot: str, timeout: float = 10.0, max_bytes: int | None = None, nodes: int = 0
) -> bytes:
    """SVG of DOT text (a graph of `nodes` nodes), by Graphviz's `dot -Tsvg`, stopped after
    `timeout` seconds and held to `max_bytes` of address space (RLIMIT_AS). Raises
    GraphvizMissing when `dot` is not installed, DrawingTooCostly past either cap,
    ProgramError(kind='runtime') on another failure."""
    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizMissing(
            "rendering SVG needs Graphviz's `dot`, which is not installed (Debian/Ubuntu: "
            "apt-get install graphviz; macOS: brew install graphviz)",
            kind="unavailable",
        )
    nslimit = min(1.0, NETWORK_SIMPLEX_ITERATIONS / max(nodes, 1))
    proc = subprocess.Popen(  # noqa: S603 - fixed argv, DOT text on stdin
        [exe, "-Tsvg", f"-Gnslimit={nslimit:g}", f"-Gnslimit1={nslimit:g}"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        if max_bytes is not None:
            # Set from here, not in a preexec_fn (unsafe with threads): dot is still waiting
            # for its input, so it lays nothing out before the cap holds.
            resource.prlimit(proc.pid, resource.RLIMIT_AS, (max_bytes, max_bytes))
        out, err = proc.communicate(dot.encode(), timeout=timeout)
    except subprocess.TimeoutExpired:
        raise DrawingTooCostly(
            f"graphviz took more than {timeout:g} s", kind="limit", limit="seconds"
        ) from None
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    if proc.returncode != 0:
        message = err.decode(errors="replace").strip()
        if max_bytes is not None and (proc.returncode < 0 or "memory" in message.lower()):
            raise DrawingTooCostly(
                f"graphviz needed more than {max_bytes} bytes of memory",
                kind="limit",
                limit="bytes",
            )
        raise ProgramError(f"graphviz failed: {message[:500]}", kind="runtime")
    return out
