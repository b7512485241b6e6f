"""Backward-graph nodes: what `Tensor.grad_fn` points at.

Each op application records one `Node` (a subclass named as torch names it, so
`type(q.grad_fn).__name__ == "SubBackward0"`). Edges point at the producers' nodes, never at
tensors; a leaf that requires grad is reached through its `AccumulateGrad` node."""

from __future__ import annotations

import itertools
import weakref

from .errors import GradError

# Creation order is a topological order of the graph (an op's node is made after its
# inputs' nodes), so backward can visit nodes newest first without first walking the graph
# to count dependencies. The heap key counts down, so the newest node has the smallest key;
# sinks count up from 1 and so come after every op node.
node_keys = itertools.count(0, -1)
sink_keys = itertools.count(1)

FREED_MESSAGE = (
    "Trying to backward through the graph a second time (or directly access saved tensors "
    "after they have already been freed). Saved intermediate values of the graph are freed "
    "when you call .backward() or autograd.grad(). Specify retain_graph=True if you need to "
    "backward through the graph a second time or if you need to access saved tensors after "
    "calling backward."
)


class Node:
    """One recorded op application. Made by `new_node`, its one constructor (the generated
    forwards of engine/fast set the same fields one by one: a class call without `__init__`
    is half the cost of one with; tests/engine/test_constructors.py checks both set every
    slot). The op is a class attribute of each op's node classes (`Op.node_class`)."""

    __slots__ = (
        "attrs",
        "edges",  # per input: the producer's node, or None when no gradient flows there
        "nrs",  # per input: which output of its producer it is (ZEROS[n] when all first)
        "saved",  # per input: the operand if some needed VJP uses it, else None
        "ans",  # the output array(s) when a VJP uses them
        "shapes",  # input shapes, to sum broadcast gradients back
        "dtypes",
        # Every input has the output's shape (an elementwise op, operands of one shape):
        # the VJPs' gradients are taken to have it too, without checking.
        "same_shape",
        "n_out",
        "retained",  # output_nr -> weak refs of tensors that asked for retain_grad()
        "freed",
        "key",  # heap key of backward: minus the creation order
        # Edges recorded into this node: with one, backward runs it as soon as that consumer
        # did, without heap or buffer. A node with several outputs starts at 1 (their
        # gradients are gathered in a buffer, so it must never look single-use).
        "uses",
        "__weakref__",
    )
    op = None

    def name(self) -> str:
        return type(self).__name__

    @property
    def next_functions(self):
        pairs = zip(self.edges, self.nrs, strict=True)
        return tuple((e, nr) if e is not None else (None, 0) for e, nr in pairs)

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


ZEROS = tuple((0,) * n for n in range(9))  # `nrs` of nodes whose inputs are all outputs 0


def new_node(cls, attrs, edges, nrs, saved, ans, shapes, dtypes, n_out=1):
    """The Node constructor: a node of class `cls` (an op's node class) with every slot set."""
    node = cls()
    node.attrs = attrs
    node.edges = edges
    node.nrs = nrs
    node.saved = saved
    node.ans = ans
    node.shapes = shapes
    node.dtypes = dtypes
    node.same_shape = False
    node.n_out = n_out
    node.retained = None
    node.freed = False
    node.key = next(node_keys)
    node.uses = 0 if n_out == 1 else 1  # (see `uses`)
    return node


class AccumulateGrad:
    """Sink node of a leaf tensor: backward adds the incoming gradient to `variable.grad`.

    Made once per leaf by `Tensor.accumulator` and kept by the tensor, which it references
    weakly (no cycle: a dropped leaf is freed at once). So it is not made again for every
    graph; but a graph does not keep its leaves alive: a leaf nobody holds any more gets no
    gradient (nobody could read it) and `variable` is None.

    `uses` counts the edges recorded into it since a backward last ran it and freed its
    graph: one means it can run straight after its consumer (see Node.uses). Should a
    consumer recorded before that backward run later too, the leaf then runs once per
    gradient, which adds up to the same .grad."""

    __slots__ = ("_ref", "key", "uses", "__weakref__")
    edges = ()
    nrs = ()
    n_out = 1
    retained = None

    def __init__(self, variable) -> None:
        self._ref = weakref.ref(variable)
        self.key = next(sink_keys)
        self.uses = 0

    @property
    def variable(self):
        return self._ref()

    def __deepcopy__(self, memo):
        return None  # a copied leaf gets an AccumulateGrad of its own (Tensor.accumulator)

    def name(self) -> str:
        return "AccumulateGrad"

    @property
    def next_functions(self):
        return ()

    def __repr__(self) -> str:
        return f"<AccumulateGrad object at {id(self):#x}>"
