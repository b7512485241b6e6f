"""Programs over the engine: the `expr` and `nodes` forms, compiled to one IR, checked
before any numpy work, evaluated by one interpreter loop, and their backward graph described.

    prog = parse_expr("Q = 3a³ − b²")                    # or parse_nodes(nodes, outputs)
    checked = check(prog, {"a": a, "b": b}, limits)       # shapes, dtypes, limits
    out = run(prog, {"a": a, "b": b})                     # {"Q": Tensor}
    dag = describe(out, {"a": a, "b": b})                 # nodes, outputs, dot

Every refusal is a ProgramError with a machine-readable `kind` (see `KINDS`) and the line
and column (expr) or node id (nodes) it is about. Pure Python + numpy."""

from .check import Checked, check
from .dag import DrawingTooCostly, GraphvizMissing, describe, layout_size, render_svg, to_dot
from .errors import KINDS, ProgramError
from .expr import parse_expr, set_cache_size, to_python
from .ir import Eqn, List, Program, Ref, Where
from .limits import DEFAULT as DEFAULT_LIMITS
from .limits import Limits
from .nodes import parse_nodes
from .run import run
from .specs import TensorSpec, spec_of

__all__ = [
    "DEFAULT_LIMITS",
    "KINDS",
    "Checked",
    "Eqn",
    "DrawingTooCostly",
    "GraphvizMissing",
    "Limits",
    "List",
    "Program",
    "ProgramError",
    "Ref",
    "TensorSpec",
    "Where",
    "check",
    "describe",
    "parse_expr",
    "parse_nodes",
    "layout_size",
    "render_svg",
    "run",
    "set_cache_size",
    "spec_of",
    "to_dot",
    "to_python",
]
