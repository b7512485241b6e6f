"""engine.nn's Module API and layers against torch.nn 2.13: the same code builds a model in
both libraries (`m` is torch or engine), and names, iteration orders, state_dict keys, reprs,
modes, error messages, initialisation bounds and forward/backward values must agree."""

from __future__ import annotations

import copy
import math
import re
from collections import OrderedDict

import numpy as np
import pytest
import torch

import engine
from engine import nn
from engine.errors import EngineError
from tests.float_ref import assert_float32_close

LIBS = pytest.mark.parametrize("m", [torch, engine], ids=["torch", "engine"])
needs = lambda *ops: pytest.mark.skipif(  # noqa: E731
    any(op not in engine.FUNCTIONS for op in ops), reason=f"ops {ops} not registered yet"
)


def _net(m):
    """A small model with nesting, a buffer, a non-persistent buffer and a parameter-less
    layer, written once for both libraries."""

    class Block(m.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = m.nn.Linear(4, 3)
            self.act = m.nn.Tanh()
            self.register_buffer("scale", m.ones(3))
            self.register_buffer("cache", m.zeros(2), persistent=False)

        def forward(self, x):
            return self.act(self.fc(x)) * self.scale

    class Net(m.nn.Module):
        def __init__(self):
            super().__init__()
            self.block = Block()
            self.head = m.nn.Sequential(m.nn.Linear(3, 5), m.nn.ReLU(), m.nn.Linear(5, 2))
            self.extra = m.nn.Parameter(m.zeros(2))

        def forward(self, x):
            return self.head(self.block(x)) + self.extra

    return Net()


def _torch_state_as_numpy(tm):
    return {k: v.detach().numpy().copy() for k, v in tm.state_dict().items()}


def _pair():
    """The same small net in both libraries, with torch's weights copied into ours."""
    torch.manual_seed(0)
    tm, em = _net(torch), _net(engine)
    em.load_state_dict(_torch_state_as_numpy(tm))
    return tm, em


def _torch_msg(msg: str) -> str:
    """torch's message with torch.Size([a, b]) written as our tuples, (a, b)."""
    return re.sub(
        r"torch\.Size\(\[(.*?)\]\)",
        lambda g: str(tuple(int(v) for v in g.group(1).split(", ") if v)),
        msg,
    )


# -- names and iteration ------------------------------------------------------------------


def test_names_and_orders_equal_torchs():
    tm, em = _pair()
    for attr in ("named_parameters", "named_buffers", "named_modules", "named_children"):
        ours = [n for n, _ in getattr(em, attr)()]
        theirs = [n for n, _ in getattr(tm, attr)()]
        assert ours == theirs, attr
    assert list(em.state_dict()) == list(tm.state_dict())
    assert [n for n, _ in em.named_parameters(prefix="net", recurse=True)] == [
        n for n, _ in tm.named_parameters(prefix="net")
    ]
    assert [n for n, _ in em.named_parameters(recurse=False)] == ["extra"]
    assert len(list(em.parameters())) == len(list(tm.parameters())) == 7
    assert len(list(em.buffers())) == 2  # the non-persistent one too
    assert "block.cache" not in em.state_dict()
    assert [type(c).__name__ for c in em.children()] == ["Block", "Sequential"]
    assert [type(c).__name__ for c in em.modules()] == [type(c).__name__ for c in tm.modules()]


def test_parameters_are_engine_parameters_and_attributes_resolve():
    _, em = _pair()
    assert isinstance(em.block.fc.weight, nn.Parameter) and nn.Parameter is engine.Parameter
    assert em.block.fc.weight.requires_grad
    assert em.get_submodule("head.2") is em.head[2]
    assert em.block.scale.shape == (3,)
    with pytest.raises(AttributeError, match="'Net' object has no attribute 'nope'"):
        _ = em.nope


@LIBS
def test_shared_parameters_are_listed_once(m):
    lin = m.nn.Linear(2, 2)
    seq = m.nn.Sequential(lin, m.nn.ReLU(), lin)
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias"]
    assert len(list(seq.named_parameters(remove_duplicate=False))) == 4
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert len(list(seq.modules())) == 3


# -- registration by assignment -------------------------------------------------------------


@LIBS
def test_assignment_registers_and_reassignment_moves(m):
    net = m.nn.Module()
    net.w = m.nn.Parameter(m.ones(2))
    net.sub = m.nn.Linear(1, 1)
    net.plain = 3
    assert [n for n, _ in net.named_parameters()] == ["w", "sub.weight", "sub.bias"]
    net.w = None  # a registered parameter may be set to None
    assert [n for n, _ in net.named_parameters()] == ["sub.weight", "sub.bias"]
    del net.sub
    assert list(net.children()) == []
    net.register_buffer("b", m.zeros(1))
    net.b = m.ones(1)  # a buffer takes a new tensor
    assert float(net.b[0]) == 1.0
    assert net.plain == 3


@pytest.mark.parametrize(
    "action, exc",
    [
        (lambda m, net: setattr(net, "fc", m.ones(2)), TypeError),  # replace a submodule
        (lambda m, net: net.fc.__setattr__("weight", m.ones(2)), TypeError),
        (lambda m, net: net.register_buffer("a.b", m.ones(1)), KeyError),
        (lambda m, net: net.register_buffer("fc", m.ones(1)), KeyError),
        (lambda m, net: net.register_parameter("", None), KeyError),
        (lambda m, net: net.register_parameter("q", m.ones(2)), TypeError),
        (lambda m, net: net.register_buffer("q", 3), TypeError),
        (lambda m, net: net.add_module("q", 3), TypeError),
        (lambda m, net: net.add_module("x.y", m.nn.ReLU()), KeyError),
        (lambda m, net: net.train("yes"), ValueError),
    ],
)
def test_registration_errors_as_torchs(action, exc):
    for m in (torch, engine):
        net = m.nn.Module()
        net.fc = m.nn.Linear(2, 2)
        with pytest.raises(exc):
            action(m, net)


def test_module_before_init_is_refused():
    class Early(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(engine.ones(1))

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Early()


# -- modes, gradients, apply ---------------------------------------------------------------


@LIBS
def test_train_eval_propagate(m):
    net = _net(m)
    assert net.training and net.head[1].training
    assert net.eval() is net
    assert not any(mod.training for mod in net.modules())
    net.train()
    assert all(mod.training for mod in net.modules())
    net.block.train(False)
    assert [mod.training for mod in net.modules()] == [True, False, False, False, True] + [True] * 3


@pytest.mark.parametrize("set_to_none", [True, False])
def test_zero_grad_and_requires_grad(set_to_none):
    tm, em = _pair()
    x = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    for m, net in ((torch, tm), (engine, em)):
        net(m.tensor(x)).sum().backward()
        net.zero_grad(set_to_none=set_to_none)
        grads = [p.grad for p in net.parameters()]
        if set_to_none:
            assert all(g is None for g in grads)
        else:
            assert all(float(abs(g).sum()) == 0 for g in grads)
        assert net.requires_grad_(False) is net
        assert not any(p.requires_grad for p in net.parameters())
        net.requires_grad_()
        assert all(p.requires_grad for p in net.parameters())


@LIBS
def test_apply_visits_children_first(m):
    net = _net(m)
    seen = []
    assert net.apply(lambda mod: seen.append(type(mod).__name__)) is net
    assert seen == ["Linear", "Tanh", "Block", "Linear", "ReLU", "Linear", "Sequential", "Net"]


def test_forward_and_gradients_equal_torchs():
    tm, em = _pair()
    wide = copy.deepcopy(tm).double()  # the float64 reference (tests/float_ref.py)
    x = np.random.default_rng(1).standard_normal((6, 4)).astype(np.float32)
    out_t, out_e = tm(torch.tensor(x)), em(engine.tensor(x))
    out_w = wide(torch.tensor(x.astype(np.float64)))
    assert_float32_close(out_e, out_t, out_w, "output")
    for out in (out_t, out_e, out_w):
        (out**2).sum().backward()
    params = zip(em.named_parameters(), tm.parameters(), wide.parameters(), strict=True)
    for (name, pe), pt, pw in params:
        assert_float32_close(pe.grad, pt.grad, pw.grad, f"gradient of {name}")


def test_double_casts_floating_parameters_and_buffers():
    _, em = _pair()
    em.double()
    assert all(p.dtype == np.float64 for p in em.parameters())
    assert em.block.scale.dtype == np.float64
    out = em(engine.randn(2, 4, dtype=engine.float64))
    assert out.dtype == np.float64


def test_to_keeps_parameter_objects_and_accepts_cpu():
    lin = nn.Linear(3, 2)
    w = lin.weight
    assert lin.to("cpu") is lin and lin.to(engine.float64).weight is w and w.dtype == np.float64
    lin.to("cpu", dtype=engine.float32)
    assert w.dtype == np.float32
    with pytest.raises(ValueError, match="CPU only"):
        lin.to("cuda:0")
    bn = nn.BatchNorm2d(2).double()
    assert bn.running_mean.dtype == np.float64 and bn.num_batches_tracked.dtype == np.int64


def test_deepcopy_gives_independent_parameters():
    _, em = _pair()
    twin = copy.deepcopy(em)
    twin.head[0].weight.data = twin.head[0].weight * 0
    assert float(abs(em.head[0].weight).sum()) > 0
    assert list(twin.state_dict()) == list(em.state_dict())


# -- state_dict / load_state_dict ---------------------------------------------------------


def test_state_dict_shares_memory_and_load_copies_in_place():
    _, em = _pair()
    sd = em.state_dict()
    w = em.block.fc.weight
    assert sd["block.fc.weight"]._a is w._a and not sd["block.fc.weight"].requires_grad
    assert em.state_dict(keep_vars=True)["block.fc.weight"] is w
    new = {k: np.full(v.shape, 0.5, v.dtype) for k, v in sd.items()}
    assert repr(em.load_state_dict(new)) == "<All keys matched successfully>"
    assert em.block.fc.weight is w and float(w[0, 0]) == 0.5  # same Parameter, new values
    engine_sd = {k: engine.tensor(v) * 2 for k, v in new.items()}  # engine Tensors load too
    em.load_state_dict(engine_sd)
    assert float(w[0, 0]) == 1.0


def _load_both(edit, strict=True):
    """Apply `edit` to torch's state_dict, load it into torch's and our net: (ours, torch's)
    results or error messages."""
    tm, em = _pair()
    sd = OrderedDict((k, v.clone()) for k, v in tm.state_dict().items())
    edit(sd)
    outcomes = []
    for net, data in ((em, {k: v.numpy() for k, v in sd.items()}), (tm, sd)):
        try:
            outcomes.append(net.load_state_dict(data, strict=strict))
        except RuntimeError as e:
            outcomes.append(e)
    return outcomes


def _drop(*keys):
    return lambda sd: [sd.pop(k) for k in keys]


def _reshape(key, shape):
    return lambda sd: sd.__setitem__(key, torch.zeros(shape))


@pytest.mark.parametrize(
    "edit",
    [
        _drop("block.fc.weight", "head.2.bias"),
        lambda sd: sd.__setitem__("head.3.weight", torch.zeros(1)),
        lambda sd: sd.__setitem__("block.nope", torch.zeros(1)),
        _reshape("head.0.weight", (4, 3)),
        lambda sd: (
            _drop("extra")(sd),
            _reshape("block.scale", (2,))(sd),
            sd.update(x=sd["head.0.bias"]),
        ),
    ],
    ids=["missing", "unexpected-submodule", "unexpected-leaf", "size-mismatch", "all-three"],
)
def test_load_state_dict_errors_equal_torchs(edit):
    ours, theirs = _load_both(edit)
    assert isinstance(ours, nn.StateDictError) and isinstance(ours, RuntimeError)
    assert str(ours) == _torch_msg(str(theirs))


def test_load_state_dict_non_strict_reports_keys_but_still_raises_on_shapes():
    ours, theirs = _load_both(
        lambda sd: (_drop("extra")(sd), sd.update(x=sd["head.0.bias"])), False
    )
    assert tuple(ours) == tuple(theirs) == (["extra"], ["x"])
    assert ours.missing_keys == ["extra"] and ours.unexpected_keys == ["x"]
    ours, theirs = _load_both(_reshape("head.0.weight", (4, 3)), strict=False)
    assert str(ours) == _torch_msg(str(theirs))
    assert ours.mismatched == [("head.0.weight", (4, 3), (5, 3))]


def test_load_state_dict_error_lists_keys_for_callers():
    ours, _ = _load_both(lambda sd: (_drop("extra")(sd), sd.update(x=sd["head.0.bias"])))
    assert ours.missing_keys == ["extra"] and ours.unexpected_keys == ["x"]
    with pytest.raises(TypeError, match="dict-like"):
        nn.Linear(1, 1).load_state_dict([1, 2])


# -- reprs ---------------------------------------------------------------------------------


def _layers(m):
    return m.nn.Sequential(
        m.nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False),
        m.nn.Conv2d(8, 8, (3, 1), dilation=2, groups=4),
        m.nn.Conv2d(8, 8, 3, padding="same"),
        m.nn.BatchNorm2d(8),
        m.nn.BatchNorm2d(8, momentum=None, affine=False, track_running_stats=False),
        m.nn.ReLU(inplace=True),
        m.nn.ReLU(),
        m.nn.MaxPool2d(3, 2, 1),
        m.nn.MaxPool2d((2, 3), ceil_mode=True),
        m.nn.AvgPool2d(2),
        m.nn.AdaptiveAvgPool2d((1, 1)),
        m.nn.Flatten(),
        m.nn.Dropout(0.25),
        m.nn.Linear(8, 4, bias=False),
        m.nn.Identity(),
        m.nn.LeakyReLU(0.2),
        m.nn.GELU(approximate="tanh"),
        m.nn.Softplus(),
        m.nn.Sigmoid(),
        m.nn.Tanh(),
        m.nn.Softmax(dim=1),
        m.nn.ModuleList([m.nn.ReLU(), m.nn.ReLU(), m.nn.Tanh(), m.nn.ReLU()]),
        m.nn.ModuleList(),
    )


def test_reprs_equal_torchs():
    assert repr(_layers(engine)) == repr(_layers(torch))
    assert repr(_net(engine)) == repr(_net(torch))


def test_layer_state_dict_keys_equal_torchs():
    for a, b in zip(_layers(engine), _layers(torch), strict=True):
        assert list(a.state_dict()) == list(b.state_dict()), type(a).__name__
        assert [tuple(v.shape) for v in a.state_dict().values()] == [
            tuple(v.shape) for v in b.state_dict().values()
        ]
    bn = nn.BatchNorm2d(5).state_dict()
    assert bn["num_batches_tracked"].dtype == np.int64 and bn["num_batches_tracked"].shape == ()
    assert float(bn["running_var"].sum()) == 5 and float(bn["running_mean"].sum()) == 0


# -- containers ----------------------------------------------------------------------------


@LIBS
def test_sequential_indexing(m):
    seq = m.nn.Sequential(m.nn.Linear(1, 2), m.nn.ReLU(), m.nn.Linear(2, 3))
    assert len(seq) == 3 and isinstance(seq[-1], m.nn.Linear)
    assert isinstance(seq[1:], m.nn.Sequential) and len(seq[1:]) == 2
    assert list(seq[1:].state_dict()) == ["2.weight", "2.bias"]  # slices keep the keys
    seq.append(m.nn.Tanh())
    assert len(seq) == 4 and isinstance(seq[3], m.nn.Tanh)
    seq[1] = m.nn.Sigmoid()
    del seq[0]
    assert [type(x).__name__ for x in seq] == ["Sigmoid", "Linear", "Tanh"]
    assert list(seq.state_dict()) == ["1.weight", "1.bias"]
    seq.insert(0, m.nn.Identity())
    assert [type(x).__name__ for x in seq][:2] == ["Identity", "Sigmoid"]
    with pytest.raises(IndexError, match="index 7 is out of range"):
        seq[7]
    named = m.nn.Sequential(OrderedDict([("conv", m.nn.Linear(1, 1)), ("act", m.nn.ReLU())]))
    assert list(named.state_dict()) == ["conv.weight", "conv.bias"] and named.act is named[1]
    assert len(seq + named) == 6


@LIBS
def test_module_list_and_dict(m):
    ml = m.nn.ModuleList([m.nn.Linear(1, 1) for _ in range(3)])
    ml.append(m.nn.ReLU())
    ml.extend([m.nn.Tanh()])
    assert len(ml) == 5 and isinstance(ml[-1], m.nn.Tanh) and len(ml[1:3]) == 2
    del ml[0]
    assert list(ml.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    md = m.nn.ModuleDict({"a": m.nn.Linear(1, 2), "b": m.nn.ReLU()})
    assert list(md.keys()) == ["a", "b"] and "a" in md and len(md) == 2
    assert list(md.state_dict()) == ["a.weight", "a.bias"]


# -- initialisation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("linear",),
        ("conv2d",),
        ("sigmoid",),
        ("tanh",),
        ("relu",),
        ("leaky_relu",),
        ("leaky_relu", 0.2),
        ("leaky_relu", math.sqrt(5)),
        ("selu",),
    ],
)
def test_calculate_gain_equals_torchs(args):
    assert nn.init.calculate_gain(*args) == pytest.approx(torch.nn.init.calculate_gain(*args))


@pytest.mark.parametrize("shape", [(6, 4), (8, 3, 5, 5), (2, 7, 3)])
def test_fans_equal_torchs(shape):
    ours = nn.init._fan_in_and_fan_out(engine.zeros(*shape))
    assert ours == torch.nn.init._calculate_fan_in_and_fan_out(torch.zeros(shape))


def test_fan_errors():
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        nn.init.kaiming_uniform_(engine.zeros(3))
    with pytest.raises(ValueError, match="Mode fan_mid not supported"):
        nn.init.kaiming_normal_(engine.zeros(3, 3), mode="fan_mid")
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        nn.init.calculate_gain("swish")


def _bound(a):
    return float(np.abs(a).max())


@pytest.mark.parametrize(
    "fn, kwargs, expected_bound",
    [
        ("kaiming_uniform_", {"a": math.sqrt(5)}, 1 / math.sqrt(64 * 9)),
        ("kaiming_uniform_", {"nonlinearity": "relu"}, math.sqrt(6 / (64 * 9))),
        ("kaiming_uniform_", {"mode": "fan_out", "nonlinearity": "relu"}, math.sqrt(6 / (32 * 9))),
        ("xavier_uniform_", {"gain": 2.0}, 2 * math.sqrt(6 / (64 * 9 + 32 * 9))),
        ("uniform_", {"a": -0.3, "b": 0.3}, 0.3),
    ],
)
def test_uniform_initialisers_fill_torchs_range(fn, kwargs, expected_bound):
    """Drawn from the same distribution as torch: the largest |value| of 18k draws is within
    0.5% of the bound, never beyond; the mean is ~0 and the std that of U(-b, b)."""
    w = engine.empty(32, 64, 3, 3)
    assert getattr(nn.init, fn)(w, **kwargs) is w
    a = w.numpy()
    assert expected_bound * 0.995 < _bound(a) <= expected_bound
    assert abs(a.mean()) < 0.02 * expected_bound
    assert a.std() == pytest.approx(expected_bound / math.sqrt(3), rel=0.02)


@pytest.mark.parametrize(
    "fn, kwargs, expected_std",
    [
        ("kaiming_normal_", {"mode": "fan_out", "nonlinearity": "relu"}, math.sqrt(2 / (32 * 9))),
        ("kaiming_normal_", {}, math.sqrt(2 / (1 + 0.0)) / math.sqrt(64 * 9)),
        ("xavier_normal_", {}, math.sqrt(2 / (64 * 9 + 32 * 9))),
        ("normal_", {"mean": 0.0, "std": 0.02}, 0.02),
    ],
)
def test_normal_initialisers_match_torchs_std(fn, kwargs, expected_std):
    w = engine.empty(32, 64, 3, 3)
    getattr(nn.init, fn)(w, **kwargs)
    tw = getattr(torch.nn.init, fn)(torch.empty(32, 64, 3, 3), **kwargs)
    assert w.numpy().std() == pytest.approx(expected_std, rel=0.02)
    assert w.numpy().std() == pytest.approx(float(tw.std()), rel=0.03)


def test_constant_initialisers():
    w = engine.empty(3, 4)
    assert float(nn.init.ones_(w).sum()) == 12
    assert float(nn.init.zeros_(w).sum()) == 0
    assert float(nn.init.constant_(w, 0.5).sum()) == 6
    np.testing.assert_array_equal(nn.init.eye_(w).numpy(), np.eye(3, 4))


def test_initialisation_is_seeded():
    engine.manual_seed(123)
    a = nn.Linear(5, 7).weight.detach().numpy().copy()
    engine.manual_seed(123)
    b = nn.Linear(5, 7).weight.detach().numpy().copy()
    np.testing.assert_array_equal(a, b)
    g1, g2 = np.random.default_rng(9), np.random.default_rng(9)
    w1, w2 = engine.empty(4, 4), engine.empty(4, 4)
    nn.init.kaiming_uniform_(w1, generator=g1)
    nn.init.kaiming_uniform_(w2, generator=g2)
    np.testing.assert_array_equal(w1.numpy(), w2.numpy())


@pytest.mark.parametrize(
    "make",
    [
        lambda m: m.nn.Linear(40, 30),
        lambda m: m.nn.Conv2d(6, 16, 5),
        lambda m: m.nn.Conv2d(8, 8, 3, groups=4),
    ],
    ids=["Linear", "Conv2d", "Conv2d-groups"],
)
def test_default_layer_initialisation_ranges_equal_torchs(make):
    """torch's default: weight and bias within ±1/√fan_in, which both fill."""
    ours, theirs = make(engine), make(torch)
    bound = 1 / math.sqrt(theirs.weight[0].numel())
    for name in ("weight", "bias"):
        e = getattr(ours, name).detach().numpy()
        t = getattr(theirs, name).detach().numpy()
        assert e.shape == t.shape and e.dtype == t.dtype == np.float32
        assert _bound(e) <= bound and _bound(t) <= bound
        assert _bound(e) > 0.8 * bound


def test_layer_argument_errors_as_torchs():
    for make in (
        lambda m: m.nn.Conv2d(3, 4, 3, groups=2),
        lambda m: m.nn.Conv2d(4, 3, 3, groups=2),
        lambda m: m.nn.Conv2d(4, 4, 3, groups=0),
        lambda m: m.nn.Conv2d(4, 4, 3, padding="full"),
        lambda m: m.nn.Conv2d(4, 4, 3, stride=2, padding="same"),
        lambda m: m.nn.Dropout(1.5),
    ):
        with pytest.raises(ValueError) as theirs:
            make(torch)
        with pytest.raises(ValueError) as ours:
            make(engine)
        assert str(ours.value) == str(theirs.value)


# -- layers against torch (values and gradients) ------------------------------------------


def _copy_weights(em, tm):
    em.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})


def _check_layer(make, shape, seed=0, train=True, steps=1):
    """Values, input and parameter gradients and buffers of our float32 layer against torch's,
    judged by torch's float64 twin of the layer (tests/float_ref.py)."""
    torch.manual_seed(seed)
    tm, em = make(torch), make(engine)
    _copy_weights(em, tm)
    wide = copy.deepcopy(tm).double()
    for module in (tm, em, wide):
        module.train(train)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        x = rng.standard_normal(shape).astype(np.float32)
        xt, xe = torch.tensor(x, requires_grad=True), engine.tensor(x, requires_grad=True)
        xw = torch.tensor(x.astype(np.float64), requires_grad=True)
        yt, ye, yw = tm(xt), em(xe), wide(xw)
        assert_float32_close(ye, yt, yw, "output")
        w = rng.standard_normal(yt.shape).astype(np.float32)
        (yt * torch.tensor(w)).sum().backward()
        (ye * engine.tensor(w)).sum().backward()
        (yw * torch.tensor(w.astype(np.float64))).sum().backward()
        assert_float32_close(xe.grad, xt.grad, xw.grad, "input gradient")
    params = zip(em.named_parameters(), tm.parameters(), wide.parameters(), strict=True)
    for (name, pe), pt, pw in params:
        assert_float32_close(pe.grad, pt.grad, pw.grad, f"gradient of {name}")
    buffers = zip(em.named_buffers(), tm.buffers(), wide.buffers(), strict=True)
    for (name, be), bt, bw in buffers:
        if bt.dtype == torch.float32:
            assert_float32_close(be, bt, bw, name)
        else:
            np.testing.assert_array_equal(be.numpy(), bt.numpy(), err_msg=name)


def test_linear_and_mlp_layers_equal_torchs():
    _check_layer(lambda m: m.nn.Linear(7, 5), (3, 7))
    _check_layer(lambda m: m.nn.Linear(7, 5, bias=False), (2, 3, 7))
    _check_layer(
        lambda m: m.nn.Sequential(
            m.nn.Linear(6, 8),
            m.nn.LeakyReLU(0.1),
            m.nn.Linear(8, 8),
            m.nn.GELU(),
            m.nn.Linear(8, 3),
            m.nn.Softplus(),
            m.nn.Flatten(0),
        ),
        (4, 6),
    )


def test_dropout_layer_modes():
    d = nn.Dropout(0.5)
    x = engine.ones(1000)
    y = d(x).numpy()
    assert set(np.unique(y)) <= {0.0, 2.0} and 300 < (y == 0).sum() < 700
    d.eval()
    assert d(x) is x


@needs("conv2d")
@pytest.mark.parametrize(
    "make",
    [
        lambda m: m.nn.Conv2d(3, 4, 3),
        lambda m: m.nn.Conv2d(4, 6, (3, 2), stride=2, padding=1, dilation=(1, 2), groups=2),
        lambda m: m.nn.Conv2d(3, 4, 3, padding="same", bias=False),
    ],
)
def test_conv2d_layer_equals_torchs(make):
    _check_layer(make, (2, make(torch).in_channels, 9, 8))


@needs("max_pool2d", "avg_pool2d", "adaptive_avg_pool2d")
@pytest.mark.parametrize(
    "make",
    [
        lambda m: m.nn.MaxPool2d(3, 2, 1),
        lambda m: m.nn.MaxPool2d(2, ceil_mode=True),
        lambda m: m.nn.AvgPool2d(3, 2, 1),
        lambda m: m.nn.AvgPool2d(2, ceil_mode=True, count_include_pad=False),
        lambda m: m.nn.AdaptiveAvgPool2d((1, 1)),
        lambda m: m.nn.AdaptiveAvgPool2d(3),
    ],
)
def test_pool_layers_equal_torchs(make):
    _check_layer(make, (2, 3, 7, 9))


@needs("batch_norm")
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"momentum": None},
        {"momentum": 0.3, "eps": 1e-3},
        {"affine": False},
        {"track_running_stats": False},
    ],
    ids=["default", "cumulative", "momentum", "no-affine", "untracked"],
)
def test_batchnorm2d_train_then_eval_equal_torchs(kwargs):
    make = lambda m: m.nn.BatchNorm2d(3, **kwargs)  # noqa: E731
    _check_layer(make, (4, 3, 5, 6), steps=3)
    _check_layer(make, (4, 3, 5, 6), train=False)


@needs("batch_norm")
def test_batchnorm_counts_batches_and_uses_running_stats_in_eval():
    torch.manual_seed(0)
    tm, em = torch.nn.BatchNorm2d(3, momentum=None), nn.BatchNorm2d(3, momentum=None)
    rng = np.random.default_rng(0)
    for _ in range(4):
        x = rng.standard_normal((5, 3, 4, 4)).astype(np.float32) * 3 + 1
        tm(torch.tensor(x))
        em(engine.tensor(x))
    assert int(em.num_batches_tracked) == 4 and em.state_dict()["num_batches_tracked"].item() == 4
    np.testing.assert_allclose(em.running_var.numpy(), tm.running_var.numpy(), rtol=1e-5)
    em.eval()
    tm.eval()
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(
        em(engine.tensor(x)).detach().numpy(),
        tm(torch.tensor(x)).detach().numpy(),
        rtol=1e-4,
        atol=1e-5,
    )
    assert int(em.num_batches_tracked) == 4


def test_batchnorm_checkpoint_without_num_batches_tracked_loads_as_torch():
    tm, em = torch.nn.BatchNorm2d(2), nn.BatchNorm2d(2)
    sd = {k: v for k, v in tm.state_dict().items() if k != "num_batches_tracked"}
    assert repr(tm.load_state_dict(sd)) == repr(
        em.load_state_dict({k: v.numpy() for k, v in sd.items()})
    )


# -- forward errors name the module --------------------------------------------------------


def test_forward_error_names_the_module_path_and_shapes():
    net = nn.Sequential(nn.Linear(4, 3), nn.Sequential(nn.ReLU(), nn.Linear(5, 2)))
    with pytest.raises(EngineError) as err:
        net(engine.randn(2, 4))
    msg = str(err.value)
    assert msg.startswith("1.1 (Linear): ") and "2x3" in msg and err.value.module_path == "1.1"
    assert isinstance(err.value, ValueError)  # still a ShapeError
    with pytest.raises(EngineError) as err:  # the outermost call is the root of the path
        net[1](engine.randn(2, 4))
    assert str(err.value).startswith("1 (Linear): ")
    with pytest.raises(EngineError) as err:  # a single layer: its own message, unprefixed
        nn.Linear(4, 3)(engine.randn(2, 5))
    assert str(err.value).startswith("mat1 and mat2 shapes cannot be multiplied (2x5 and 4x3)")


def test_forward_error_after_a_failed_call_does_not_leak_state():
    net = nn.Sequential(nn.Linear(4, 3))
    with pytest.raises(EngineError):
        net(engine.randn(2, 5))
    assert net(engine.randn(2, 4)).shape == (2, 3)
    with pytest.raises(EngineError) as err:
        net(engine.randn(2, 6))
    assert str(err.value).startswith("0 (Linear): ")


@needs("batch_norm")
def test_batchnorm_wrong_rank_names_the_layer():
    net = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm2d(4))
    with pytest.raises(
        EngineError, match=r"^1 \(BatchNorm2d\): expected 4D input \(got 2D input\)"
    ):
        net(engine.randn(2, 4))


def test_module_without_forward():
    with pytest.raises(NotImplementedError, match='missing the required "forward"'):
        nn.Module()(engine.ones(1))
