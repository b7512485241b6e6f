"""Backward-graph nodes: what `Tensor.grad_fn` points at.

Each op application records one `Node` (a subclass named as torch names it, so
`type(q.grad_fn).__name__ == "SubBackward0"`). Edges point at the producers' nodes, never at
tensors; a leaf that requires grad is reached through its `AccumulateGrad` node."""

from __future__ import annotations

import itertools

from .errors import GradError

# Creation order is a topological order of the graph (an op's node is made after its
# inputs' nodes), so backward can visit nodes newest first without first walking the graph
# to count dependencies. Sinks count down from -1 and so come after every op node.
_node_seq = itertools.count()
_sink_seq = itertools.count(-1, -1)

FREED_MESSAGE = (
    "Trying to backward through the graph a second time (or directly access saved tensors "
    "after they have already been freed). Saved intermediate values of the graph are freed "
    "when you call .backward() or autograd.grad(). Specify retain_graph=True if you need to "
    "backward through the graph a second time or if you need to access saved tensors after "
    "calling backward."
)


class Node:
    __slots__ = (
        "op",
        "attrs",
        "edges",  # per input: (node, output_nr) or None when no gradient flows there
        "saved",  # per input: the operand if some needed VJP uses it, else None
        "ans",  # the output array(s) when a VJP uses them
        "shapes",  # input shapes, to sum broadcast gradients back
        "dtypes",
        "n_out",
        "retained",  # output_nr -> weak refs of tensors that asked for retain_grad()
        "freed",
        "seq",
        "__weakref__",
    )

    def __init__(self, op, attrs, edges, saved, ans, shapes, dtypes, n_out=1):
        self.op = op
        self.attrs = attrs
        self.edges = edges
        self.saved = saved
        self.ans = ans
        self.shapes = shapes
        self.dtypes = dtypes
        self.n_out = n_out
        self.retained = None
        self.freed = False
        self.seq = next(_node_seq)

    def name(self) -> str:
        return type(self).__name__

    @property
    def next_functions(self):
        return tuple((None, 0) if e is None else e for e in self.edges)

    def release(self) -> None:
        """Free saved values; a later backward through this node then fails loudly."""
        if self.saved or self.ans is not None:
            self.freed = True
            self.saved = None
            self.ans = None

    def check_alive(self) -> None:
        if self.freed:
            raise GradError(FREED_MESSAGE)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} object at {id(self):#x}>"


class AccumulateGrad:
    """Sink node of a leaf tensor: backward adds the incoming gradient to `variable.grad`."""

    __slots__ = ("variable", "seq", "__weakref__")
    edges = ()
    n_out = 1

    def __init__(self, variable):
        self.variable = variable
        self.seq = next(_sink_seq)

    def name(self) -> str:
        return "AccumulateGrad"

    @property
    def next_functions(self):
        return ()

    def __repr__(self) -> str:
        return f"<AccumulateGrad object at {id(self):#x}>"
