"""The Tensor API and the factories, behaving as PyTorch's (checked against torch 2.13.0
where torch defines the behaviour): .data, requires_grad, .grad accumulation, leaves,
detach, conversions, graph introspection, reflected operators, grad modes, factories."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

import engine
from engine.registry import FUNCTIONS

LIBS = pytest.mark.parametrize("m", [engine, torch], ids=["engine", "torch"])


def _np(t):
    return None if t is None else t.detach().numpy()


def walk(fn):
    """The grad_fn graph as nested (name, [(child, index), ...]); None where no gradient."""
    if fn is None:
        return None
    return (type(fn).__name__, [(walk(f), i) for f, i in fn.next_functions])


# ---------------------------------------------------------------------------------------
# Attributes


@LIBS
def test_data_shares_storage_and_is_cut_from_the_graph(m):
    x = m.tensor([1.0, 2.0, 3.0], requires_grad=True)
    d = x.data
    assert not d.requires_grad and d.grad_fn is None and d.is_leaf
    d.numpy()[0] = 10.0  # the same storage
    assert x.detach().numpy().tolist() == [10.0, 2.0, 3.0]
    y = x * 2
    assert not y.data.requires_grad
    assert np.shares_memory(y.data.numpy(), y.detach().numpy())


@LIBS
def test_data_setter_replaces_the_values(m):
    x = m.tensor([1.0, 2.0], requires_grad=True)
    x.data = m.tensor([5.0, 6.0])
    assert x.detach().numpy().tolist() == [5.0, 6.0] and x.requires_grad
    (x * x).sum().backward()
    assert x.grad.tolist() == [10.0, 12.0]


@LIBS
def test_shape_dtype_and_size(m):
    x = m.zeros(2, 3)
    assert tuple(x.shape) == (2, 3) and x.ndim == 2 and x.dim() == 2
    assert tuple(x.size()) == (2, 3) and x.size(1) == 3 and x.numel() == 6 and len(x) == 2
    assert str(x.dtype).endswith("float32")


def test_requires_grad_settable_on_leaves_only_with_torchs_messages():
    for m in (engine, torch):
        x = m.tensor([1.0, 2.0])
        x.requires_grad = True
        assert x.requires_grad and x.is_leaf
        x.requires_grad_(False)
        assert not x.requires_grad
        x.requires_grad_()
        y = x * 2
        assert y.requires_grad_() is y  # a no-op on a non-leaf
    y = engine.tensor([1.0], requires_grad=True) * 2
    with pytest.raises(engine.GradError) as on:
        y.requires_grad = True
    assert str(on.value) == "you can only change requires_grad flags of leaf variables."
    with pytest.raises(engine.GradError) as off:
        y.requires_grad = False
    assert str(off.value) == (
        "you can only change requires_grad flags of leaf variables. If you want to use a "
        "computed variable in a subgraph that doesn't require differentiation use "
        "var_no_grad = var.detach()."
    )
    with pytest.raises(engine.GradError, match="var_no_grad = var.detach()"):
        y.requires_grad_(False)


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(engine.DTypeError, match="only Tensors of floating point dtype"):
        engine.tensor([1, 2], requires_grad=True)
    with pytest.raises(engine.DTypeError, match="only Tensors of floating point dtype"):
        engine.arange(3).requires_grad_()
    with pytest.raises(engine.DTypeError, match="only Tensors of floating point dtype"):
        engine.tensor([True]).requires_grad = True


@LIBS
def test_grad_accumulates_across_backward_calls_on_leaves(m):
    x = m.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    first = x.grad
    (x * x).sum().backward()
    assert x.grad.tolist() == [5.0, 7.0]
    assert x.grad is first  # accumulated into the same tensor, as torch
    assert x.grad.grad_fn is None and not x.grad.requires_grad
    x.grad = None
    (x * 3).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


def test_grad_has_the_leafs_dtype_and_shape():
    for m in (engine, torch):
        x = m.tensor(np.ones((2, 3)), requires_grad=True)  # float64
        b = m.tensor([1.0, 2.0, 3.0], requires_grad=True)  # float32, broadcast
        (x * b).sum().backward()
        assert str(x.grad.dtype).endswith("float64") and tuple(x.grad.shape) == (2, 3)
        assert str(b.grad.dtype).endswith("float32") and tuple(b.grad.shape) == (3,)
        assert b.grad.tolist() == [2.0, 2.0, 2.0]


@LIBS
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf")
def test_non_leaf_grad_is_none_unless_retain_grad(m):
    x = m.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    z = y * 2
    z.retain_grad()
    assert z.retains_grad and not y.retains_grad and not x.retains_grad
    z.sum().backward()
    assert y.grad is None
    assert z.grad.tolist() == [1.0, 1.0]
    assert x.grad.tolist() == [4.0, 8.0]


def test_retain_grad_needs_requires_grad():
    with pytest.raises(engine.GradError, match="can't retain_grad on Tensor that has"):
        engine.ones(2).retain_grad()
    x = engine.tensor([1.0], requires_grad=True)
    x.retain_grad()  # a no-op on a leaf, as torch
    assert not x.retains_grad


def test_is_leaf_matches_torch():
    def leaves(m):
        a = m.tensor([1.0, 2.0], requires_grad=True)
        b = m.tensor([1.0, 2.0])
        c = a * 2
        d = b * 2
        e = c.detach()
        with m.no_grad():
            f = a * 2
        return [t.is_leaf for t in (a, b, c, d, e, f)] + [
            t.requires_grad for t in (a, b, c, d, e, f)
        ]

    assert leaves(engine) == leaves(torch)


@LIBS
def test_detach_shares_storage_and_leaves_the_graph(m):
    x = m.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    d = y.detach()
    assert d.is_leaf and not d.requires_grad and d.grad_fn is None
    assert np.shares_memory(d.numpy(), y.detach().numpy())
    assert y.grad_fn is not None  # y itself unchanged
    y.detach_()
    assert y.is_leaf and not y.requires_grad


@LIBS
def test_item_numpy_tolist(m):
    x = m.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert x.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert isinstance(x.numpy(), np.ndarray) and x.numpy().dtype == np.float32
    assert x.sum().item() == 10.0 and isinstance(x.sum().item(), float)
    assert m.tensor([7]).item() == 7 and isinstance(m.tensor([7]).item(), int)
    assert m.tensor(True).item() is True
    assert float(m.tensor(2.5)) == 2.5 and int(m.tensor(3)) == 3
    assert m.tensor(3.0).tolist() == 3.0


def test_numpy_and_item_errors_as_torch():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(engine.GradError) as err:
        x.numpy()
    assert str(err.value) == (
        "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead."
    )
    with pytest.raises(engine.EngineError, match="a Tensor with 2 elements cannot be converted"):
        x.item()


@pytest.mark.skipif("gt" not in FUNCTIONS, reason="comparison ops (gt/eq/...) not registered yet")
def test_comparisons_give_bool_tensors_without_gradient():
    for m in (engine, torch):
        x = m.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = m.tensor([3.0, 2.0, 1.0])
        results = [x > y, x < 2, x >= y, x <= 2.0, x == y, x != y, 2 < x]  # noqa: SIM300
        for r in results:
            assert str(r.dtype).endswith("bool") and not r.requires_grad and r.grad_fn is None
        if m is engine:
            ours = [r.tolist() for r in results]
        else:
            theirs = [r.tolist() for r in results]
    assert ours == theirs


# ---------------------------------------------------------------------------------------
# The graph


def test_next_functions_shapes_and_names_match_torch():
    def graph(m):
        a = m.tensor([2.0, 3.0], requires_grad=True)
        b = m.tensor([6.0, 4.0], requires_grad=True)
        c = m.tensor([1.0, 1.0])  # no gradient flows here: (None, 0)
        q = 3 * a**3 - b**2 + c * a / (b + c)
        return walk(q.grad_fn), q

    ours, q = graph(engine)
    theirs, _ = graph(torch)
    assert ours == theirs
    for _node, idx in q.grad_fn.next_functions:
        assert isinstance(idx, int)
    assert isinstance(q.grad_fn.next_functions, tuple)


def test_accumulate_grad_holds_the_leaf():
    a = engine.tensor([2.0, 3.0], requires_grad=True)
    b = engine.tensor([6.0, 4.0], requires_grad=True)
    q = a * b
    (na, ia), (nb, ib) = q.grad_fn.next_functions
    assert type(na).__name__ == "AccumulateGrad" and na.next_functions == ()
    assert na.variable is a and nb.variable is b and ia == ib == 0
    # One AccumulateGrad per leaf, shared by every edge into it (as torch).
    r = a * a
    assert r.grad_fn.next_functions[0][0] is r.grad_fn.next_functions[1][0]


def test_grad_fn_of_multiple_uses_matches_torch():
    def graph(m):
        x = m.tensor([0.5, 1.5], requires_grad=True)
        y = m.exp(x) * m.sin(x) - x.sum() / x.mean()
        return walk(y.grad_fn)

    assert graph(engine) == graph(torch)


REFLECTED = {
    "radd": lambda x: 2 + x,
    "rsub": lambda x: 2 - x,
    "rmul": lambda x: 2 * x,
    "rtruediv": lambda x: 2 / x,
    "rpow": lambda x: 2**x,
    "neg": lambda x: -x,
    "pos": lambda x: +x * 1,
    "abs": lambda x: abs(x),
    "float_rsub": lambda x: 0.5 - x * 3,
    "chain": lambda x: 1 / (1 + 2 ** (-x)) - 3 * x,
}


@pytest.mark.parametrize("name", list(REFLECTED))
def test_reflected_operators_match_torch(name):
    f = REFLECTED[name]
    res = []
    for m in (engine, torch):
        x = m.tensor([0.5, -1.5, 2.0], requires_grad=True)
        y = f(x)
        y.backward(m.tensor([1.0, 2.0, 3.0]))
        res.append((_np(y), _np(x.grad), walk(y.grad_fn), str(y.dtype).split(".")[-1]))
    (y, g, gr, dt), (ty, tg, tgr, tdt) = res
    np.testing.assert_allclose(y, ty, rtol=1e-6)
    np.testing.assert_allclose(g, tg, rtol=1e-6)
    assert gr == tgr
    assert dt == tdt


def test_operators_with_numpy_arrays_and_ints():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    y = np.array([3.0, 4.0], dtype=np.float32) * x  # ndarray defers to the Tensor
    assert isinstance(y, engine.Tensor) and y.tolist() == [3.0, 8.0] and y.requires_grad
    i = engine.tensor([1, 2])
    assert (i * 2).dtype == engine.int64 and (i / 2).dtype == engine.float32
    assert (i + 0.5).dtype == engine.float32 and (x + i).dtype == engine.float32


# ---------------------------------------------------------------------------------------
# Grad modes


@LIBS
def test_no_grad_and_enable_grad_as_context_managers(m):
    x = m.tensor([1.0], requires_grad=True)
    with m.no_grad():
        y = x * 2
        assert not m.is_grad_enabled()
        with m.enable_grad():
            z = x * 2
            assert m.is_grad_enabled()
        assert not m.is_grad_enabled()
    assert m.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad and z.grad_fn is not None


@LIBS
def test_grad_modes_as_decorators(m):
    @m.no_grad()
    def off():
        return m.is_grad_enabled()

    @m.no_grad
    def off_bare():
        return m.is_grad_enabled()

    @m.enable_grad()
    def on():
        return m.is_grad_enabled()

    @m.set_grad_enabled(False)
    def set_off():
        return m.is_grad_enabled()

    assert m.is_grad_enabled()  # decorating changed nothing
    assert off() is False and off_bare() is False and set_off() is False
    assert off.__name__ == "off"
    with m.no_grad():
        assert on() is True
    assert m.is_grad_enabled()


@LIBS
def test_grad_mode_decorates_generator_functions_step_by_step(m):
    @m.no_grad()
    def steps(n):
        for _ in range(n):
            got = yield m.is_grad_enabled()
            assert got in (None, "sent")
        return "done"

    g = steps(3)
    assert next(g) is False and m.is_grad_enabled()  # off inside each step, on between
    assert g.send("sent") is False and m.is_grad_enabled()
    assert list(g) == [False]
    g = steps(2)
    next(g)
    g.close()
    assert m.is_grad_enabled()


@LIBS
def test_set_grad_enabled_as_function_and_context(m):
    x = m.tensor([1.0], requires_grad=True)
    with m.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert m.is_grad_enabled()
    m.set_grad_enabled(False)
    try:
        assert not m.is_grad_enabled() and not (x * 2).requires_grad
    finally:
        m.set_grad_enabled(True)
    assert (x * 2).requires_grad


def test_grad_mode_restored_after_exception():
    with pytest.raises(ValueError), engine.no_grad():
        raise ValueError("boom")
    assert engine.is_grad_enabled()


def test_grad_mode_is_thread_local():
    seen = {}
    entered = threading.Event()
    release = threading.Event()

    def worker():
        with engine.no_grad():
            entered.set()
            release.wait(5)
            seen["worker"] = engine.is_grad_enabled()

    def fresh():
        seen["fresh"] = engine.is_grad_enabled()  # a new thread starts with grad enabled

    t = threading.Thread(target=worker)
    t.start()
    entered.wait(5)
    seen["main"] = engine.is_grad_enabled()  # the worker's no_grad does not leak here
    x = engine.tensor([1.0], requires_grad=True)
    assert (x * 2).requires_grad
    release.set()
    t.join()
    with engine.no_grad():
        t2 = threading.Thread(target=fresh)
        t2.start()
        t2.join()
    assert seen == {"worker": False, "main": True, "fresh": True}


def test_frozen_parameters_get_no_grad_and_no_node():
    for m in (engine, torch):
        w = m.tensor([1.0, 2.0], requires_grad=True)
        frozen = m.tensor([3.0, 4.0], requires_grad=True)
        frozen.requires_grad = False
        x = m.tensor([0.5, 0.5])
        only_frozen = frozen * x
        assert not only_frozen.requires_grad and only_frozen.grad_fn is None
        out = (w * x + frozen * x).sum()
        out.backward()
        assert frozen.grad is None
        assert w.grad.tolist() == [0.5, 0.5]
    p = engine.Parameter(engine.tensor([1.0, 2.0]))
    assert p.requires_grad and p.is_leaf
    p.requires_grad_(False)
    assert (p * 2).grad_fn is None


@LIBS
def test_requires_grad_propagates_from_any_input(m):
    a = m.tensor([1.0], requires_grad=True)
    b = m.tensor([2.0])
    assert (a + b).requires_grad and (b + a).requires_grad
    assert not (b + b).requires_grad
    assert m.exp(a).requires_grad and not m.exp(b).requires_grad


# ---------------------------------------------------------------------------------------
# Factories


INFER = [
    [1.0, 2.0],
    [1, 2],
    [True, False],
    [1, 2.5],
    [True, 2],
    [True, 2.5],
    3,
    3.5,
    True,
    [[1, 2], [3, 4]],
    [],
    np.array([1.0, 2.0]),
    np.array([1.0], dtype=np.float32),
    np.array([1, 2]),
    np.array([True]),
    np.float64(2.0),
    np.float32(2.0),
]


@pytest.mark.parametrize("data", INFER, ids=[repr(d) for d in INFER])
def test_tensor_dtype_inference_matches_torch(data):
    ours = engine.tensor(data)
    theirs = torch.tensor(data)
    assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch.")
    assert tuple(ours.shape) == tuple(theirs.shape)
    assert ours.tolist() == theirs.tolist()
    assert ours.is_leaf and not ours.requires_grad


def test_tensor_copies_its_data_and_takes_dtype():
    a = np.array([1.0, 2.0])
    t = engine.tensor(a)
    a[0] = 9.0
    assert t.tolist() == [1.0, 2.0]
    assert engine.tensor([1, 2], dtype=engine.float64).dtype == engine.float64
    assert engine.tensor([1.5, 2.5], dtype=engine.int64).tolist() == [1, 2]
    assert engine.tensor([1.0], dtype=engine.float).dtype == engine.float32
    t = engine.tensor([1.0, 2.0], requires_grad=True)
    assert t.requires_grad and t.is_leaf
    shared = engine.from_numpy(a)
    a[1] = 7.0
    assert shared.tolist() == [9.0, 7.0]


SHAPED = {
    "zeros": lambda m: m.zeros(2, 3),
    "zeros_tuple": lambda m: m.zeros((2, 3)),
    "zeros_list": lambda m: m.zeros([2, 3]),
    "zeros_int": lambda m: m.zeros(2, dtype=m.int64),
    "ones": lambda m: m.ones(3),
    "ones_f64": lambda m: m.ones(2, 2, dtype=m.float64),
    "full_float": lambda m: m.full((2, 2), 2.5),
    "full_int": lambda m: m.full((2,), 7),
    "full_bool": lambda m: m.full((2,), True),
    "arange": lambda m: m.arange(5),
    "arange_start": lambda m: m.arange(1, 4),
    "arange_step": lambda m: m.arange(0, 5, 2),
    "arange_float": lambda m: m.arange(1.0, 2.0, 0.25),
    "arange_dtype": lambda m: m.arange(5, dtype=m.float32),
    "linspace": lambda m: m.linspace(0, 1, 5),
    "eye": lambda m: m.eye(2, 3),
    "zeros_like": lambda m: m.zeros_like(m.tensor([1, 2])),
    "ones_like_dtype": lambda m: m.ones_like(m.tensor([1.0, 2.0]), dtype=m.float64),
    "full_like": lambda m: m.full_like(m.tensor([1, 2]), 7),
    "empty_shape": lambda m: m.zeros(0, 3),
    "scalar": lambda m: m.ones(()),
}


@pytest.mark.parametrize("name", list(SHAPED))
def test_factories_match_torch(name):
    ours, theirs = SHAPED[name](engine), SHAPED[name](torch)
    assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch.")
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-7)


def test_random_factories_shapes_ranges_and_requires_grad():
    r = engine.rand(1000)
    assert r.dtype == engine.float32 and r.numpy().min() >= 0.0 and r.numpy().max() < 1.0
    n = engine.randn(4000, dtype=engine.float64)
    assert n.dtype == engine.float64 and abs(float(n.numpy().mean())) < 0.1
    assert abs(float(n.numpy().std()) - 1.0) < 0.1
    z = engine.rand((5, 5), requires_grad=True)
    assert tuple(z.shape) == (5, 5) and z.requires_grad and z.is_leaf
    x = engine.ones(2, 3, dtype=engine.float64)
    for like in (engine.rand_like, engine.randn_like, engine.zeros_like, engine.ones_like):
        y = like(x)
        assert tuple(y.shape) == (2, 3) and y.dtype == engine.float64
    i = engine.randint(0, 10, (50,))
    assert i.dtype == engine.int64 and i.numpy().min() >= 0 and i.numpy().max() < 10


def test_manual_seed_makes_random_factories_reproducible():
    engine.manual_seed(0)
    a = (engine.rand(3), engine.randn(2, 2), engine.randint(0, 100, (4,)))
    engine.manual_seed(0)
    b = (engine.rand(3), engine.randn(2, 2), engine.randint(0, 100, (4,)))
    engine.manual_seed(1)
    c = engine.rand(3)
    for x, y in zip(a, b, strict=True):
        assert x.tolist() == y.tolist()
    assert a[0].tolist() != c.tolist()


REPRS = [
    [True, True],
    [True, False],
    True,
    [1.0, 2.0],
    [-12.0, -8.0],
    3.5,
    [0.5, 1.25],
    [0.1234567, 2.0],
    [[1.5, 2.0], [3.0, 4.0]],
    [1, 2],
    [],
    [float("inf"), 0.5],
    [1e-5, 1.0],
]


@pytest.mark.parametrize("data", REPRS, ids=[repr(d) for d in REPRS])
def test_repr_prints_as_torch(data):
    assert repr(engine.tensor(data)) == repr(torch.tensor(data))


def test_repr_shows_grad_fn_requires_grad_and_dtype():
    for m in (engine, torch):
        x = m.tensor([1.5, 2.0], requires_grad=True)
        got = [repr(x), repr(x * 2), repr(m.tensor([1.5], dtype=m.float64))]
        if m is engine:
            ours = got
        else:
            theirs = [r.replace("torch.", "engine.") for r in got]
    assert ours == theirs


@pytest.mark.skipif("matmul" not in FUNCTIONS, reason="the matmul op is not registered yet")
def test_matmul_operator_matches_torch():
    rng = np.random.default_rng(5)
    av, bv, vv = rng.standard_normal((2, 3)), rng.standard_normal((3, 4)), rng.standard_normal(3)
    res = []
    for m in (engine, torch):
        a, b = m.tensor(av, requires_grad=True), m.tensor(bv, requires_grad=True)
        v = m.tensor(vv, requires_grad=True)
        y = (a @ b).sum() + (a @ v).sum() + (v @ b).sum()
        y.backward()
        res.append((_np(y), _np(a.grad), _np(b.grad), _np(v.grad), walk(y.grad_fn)))
    for ours, theirs in zip(*res, strict=True):
        if isinstance(ours, np.ndarray):
            np.testing.assert_allclose(ours, theirs, rtol=1e-10)
        else:
            assert ours == theirs
