"""A Module as a program of the graph language (`engine.program`, nodes form): one node per
layer call, parameters and buffers referred to by their state_dict names.

    prog = to_program(resnet18(), mode="train")
    prog.nodes[0]   # {"id": "conv1", "op": "conv2d",
                    #  "inputs": ["input", "conv1.weight", None],
                    #  "attrs": {"stride": [2, 2], "padding": [3, 3], "dilation": [1, 1],
                    #            "groups": 1}}
    parse_nodes(prog.nodes, prog.outputs)   # runs on {"input": x, **state_dict}

The program reads `input` and defines `output`; running it on a model's state_dict tensors
computes what `model(input)` computes, through the same registry functions with the same
arguments (so the same numbers and the same grad_fn graph). Node ids are the modules'
dotted paths ("layer1.0.conv1"; a module called twice gets "layer1.0.relu_1" the second
time; a block's residual sum "layer1.0.add"); the last node is `output`, and `layers` maps
every node id to the module that made it ("output" → "fc").

`mode` fixes what `model.train()` / `model.eval()` decide at call time: batch norm with the
batch statistics (updating running_mean / running_var in place, as the forward does) or with
the running ones, and dropout on or off. The buffers a module's forward updates besides
those — BatchNorm's `num_batches_tracked` — are listed in `counters`: whoever runs a
training program adds 1 to each.

A module type is translated by the emitter registered for it (`@emits(cls)`): the layers of
engine.nn, Sequential, and engine.models' BasicBlock and ResNet. Others raise
ArgumentError naming the module."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import nn
from ..errors import ArgumentError
from .resnet import BasicBlock, ResNet

INPUT, OUTPUT = "input", "output"
MODES = ("train", "eval")


@dataclass(frozen=True)
class ModelProgram:
    """A module's forward as nodes (see the module docstring)."""

    nodes: list[dict[str, Any]]
    outputs: list[str]
    inputs: list[str]  # the batch: ["input"]
    mode: str
    layers: dict[str, str] = field(default_factory=dict)  # node id -> module path
    counters: list[str] = field(default_factory=list)  # buffers +1 per training forward

    def to_json(self) -> dict[str, Any]:
        """The nodes form, as `POST /v1/evaluate` and sessions take it."""
        return {"nodes": self.nodes, "outputs": self.outputs}


class _Builder:
    def __init__(self, module: nn.Module, mode: str) -> None:
        self.training = mode == "train"
        self.names: dict[int, str] = {}
        for name, t in module.state_dict(keep_vars=True).items():
            self.names.setdefault(id(t), name)
        self.nodes: list[dict[str, Any]] = []
        self.layers: dict[str, str] = {}
        self.counters: list[str] = []
        self.used: set[str] = set()

    def ref(self, tensor) -> str | None:
        """A parameter's or buffer's state_dict name (None stays None)."""
        if tensor is None:
            return None
        try:
            return self.names[id(tensor)]
        except KeyError:
            raise ArgumentError(
                "to_program: a tensor the module uses is neither a parameter nor a buffer "
                "of the model"
            ) from None

    def node(self, path: str, op: str, inputs: list, attrs: dict | None = None) -> str:
        base = path or op
        nid, k = base, 0
        while nid in self.used or nid in (INPUT, OUTPUT):
            k += 1
            nid = f"{base}_{k}"
        self.used.add(nid)
        node: dict[str, Any] = {"id": nid, "op": op, "inputs": inputs}
        if attrs:
            node["attrs"] = attrs
        self.nodes.append(node)
        self.layers[nid] = path
        return nid

    def call(self, module: nn.Module, path: str, x: str) -> str:
        for cls in type(module).__mro__:
            emit = EMITTERS.get(cls)
            if emit is not None:
                return emit(self, module, path, x)
        raise ArgumentError(
            f"to_program: {path or 'the model'} ({type(module).__name__}) has no program "
            f"form; the module types that have one are {', '.join(_known())}"
        )


EMITTERS: dict[type, Callable[[_Builder, Any, str, str], str]] = {}


def emits(cls: type):
    """Register the program form of a module type: fn(builder, module, path, x) -> node id."""

    def register(fn):
        EMITTERS[cls] = fn
        return fn

    return register


def _known() -> list[str]:
    return sorted(c.__name__ for c in EMITTERS)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _list(v):
    return list(v) if isinstance(v, tuple | list) else v


def to_program(module: nn.Module, mode: str = "train") -> ModelProgram:
    """`module`'s forward on `input` as a nodes program defining `output` (see above)."""
    if mode not in MODES:
        raise ArgumentError(f"to_program: mode must be 'train' or 'eval', not {mode!r}")
    b = _Builder(module, mode)
    last = b.call(module, "", INPUT)
    if last == INPUT:
        raise ArgumentError("to_program: the module computes nothing (its output is its input)")
    for node in b.nodes:  # the final node is the program's output
        node["inputs"] = [OUTPUT if v == last else v for v in node["inputs"]]
    b.nodes[-1]["id"] = OUTPUT
    b.layers[OUTPUT] = b.layers.pop(last)
    return ModelProgram(b.nodes, [OUTPUT], [INPUT], mode, b.layers, b.counters)


# -- the layers of engine.nn -----------------------------------------------------------------


@emits(nn.Sequential)
def _sequential(b: _Builder, m: nn.Sequential, path: str, x: str) -> str:
    for name, child in m._modules.items():
        x = b.call(child, _join(path, name), x)
    return x


@emits(nn.Identity)
def _identity(b, m, path, x):
    return x


@emits(nn.Conv2d)
def _conv2d(b, m: nn.Conv2d, path, x):
    attrs = {"stride": _list(m.stride), "padding": _list(m.padding),
             "dilation": _list(m.dilation), "groups": m.groups}  # fmt: skip
    return b.node(path, "conv2d", [x, b.ref(m.weight), b.ref(m.bias)], attrs)


@emits(nn.modules.batchnorm._BatchNorm)
def _batch_norm(b, m, path, x):
    training = b.training
    if training and m.track_running_stats and m.num_batches_tracked is not None:
        if m.momentum is None:
            raise ArgumentError(
                f"to_program: {path} ({type(m).__name__}) has momentum=None (a cumulative "
                "average by num_batches_tracked), which a program cannot express"
            )
        b.counters.append(_join(path, "num_batches_tracked"))
    factor = 0.0 if m.momentum is None else m.momentum
    use_batch = training or (m.running_mean is None and m.running_var is None)
    keep = not training or m.track_running_stats
    inputs = [
        x,
        b.ref(m.running_mean) if keep else None,
        b.ref(m.running_var) if keep else None,
        b.ref(m.weight),
        b.ref(m.bias),
    ]
    attrs = {"training": use_batch, "momentum": factor, "eps": m.eps}
    return b.node(path, "batch_norm", inputs, attrs)


@emits(nn.ReLU)
def _relu(b, m, path, x):
    return b.node(path, "relu", [x])


@emits(nn.Sigmoid)
def _sigmoid(b, m, path, x):
    return b.node(path, "sigmoid", [x])


@emits(nn.Tanh)
def _tanh(b, m, path, x):
    return b.node(path, "tanh", [x])


@emits(nn.LeakyReLU)
def _leaky_relu(b, m, path, x):
    return b.node(path, "leaky_relu", [x, m.negative_slope])


@emits(nn.GELU)
def _gelu(b, m, path, x):
    return b.node(path, "gelu", [x], {"approximate": m.approximate})


@emits(nn.Softplus)
def _softplus(b, m, path, x):
    return b.node(path, "softplus", [x], {"beta": m.beta, "threshold": m.threshold})


@emits(nn.Softmax)
def _softmax(b, m, path, x):
    op = "log_softmax" if isinstance(m, nn.LogSoftmax) else "softmax"
    return b.node(path, op, [x, m.dim])


@emits(nn.Dropout)
def _dropout(b, m, path, x):
    return b.node(path, "dropout", [x, m.p, b.training])


@emits(nn.MaxPool2d)
def _max_pool2d(b, m: nn.MaxPool2d, path, x):
    if m.return_indices:
        raise ArgumentError(f"to_program: {path} (MaxPool2d) returns indices; a layer cannot")
    inputs = [x, _list(m.kernel_size), _list(m.stride), _list(m.padding), _list(m.dilation)]
    return b.node(path, "max_pool2d", inputs, {"ceil_mode": m.ceil_mode})


@emits(nn.AvgPool2d)
def _avg_pool2d(b, m: nn.AvgPool2d, path, x):
    inputs = [x, _list(m.kernel_size), _list(m.stride), _list(m.padding), m.ceil_mode,
              m.count_include_pad, m.divisor_override]  # fmt: skip
    return b.node(path, "avg_pool2d", inputs)


@emits(nn.AdaptiveAvgPool2d)
def _adaptive_avg_pool2d(b, m, path, x):
    return b.node(path, "adaptive_avg_pool2d", [x, _list(m.output_size)])


@emits(nn.Flatten)
def _flatten(b, m: nn.Flatten, path, x):
    return b.node(path, "flatten", [x, m.start_dim, m.end_dim])


@emits(nn.Linear)
def _linear(b, m: nn.Linear, path, x):
    return b.node(path, "linear", [x, b.ref(m.weight), b.ref(m.bias)])


# -- engine.models ---------------------------------------------------------------------------


@emits(BasicBlock)
def _basic_block(b, m: BasicBlock, path, x):
    """As BasicBlock.forward: relu(bn1(conv1)), bn2(conv2), the shortcut, add, relu."""
    out = b.call(m.relu, _join(path, "relu"), b.call(m.bn1, _join(path, "bn1"),
                 b.call(m.conv1, _join(path, "conv1"), x)))  # fmt: skip
    out = b.call(m.bn2, _join(path, "bn2"), b.call(m.conv2, _join(path, "conv2"), out))
    identity = x if m.downsample is None else b.call(m.downsample, _join(path, "downsample"), x)
    out = b.node(_join(path, "add"), "add", [out, identity])
    return b.call(m.relu, _join(path, "relu"), out)


@emits(ResNet)
def _resnet(b, m: ResNet, path, x):
    """As ResNet.forward: the stem, the four stages, the pooled features, fc."""
    for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4",
                 "avgpool"):  # fmt: skip
        x = b.call(m._modules[name], _join(path, name), x)
    x = b.node(_join(path, "flatten"), "flatten", [x, 1])
    return b.call(m.fc, _join(path, "fc"), x)
