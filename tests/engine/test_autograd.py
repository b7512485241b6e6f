"""engine.autograd against torch.autograd: the functional transforms (vjp, jvp, jacobian,
hessian, hvp, vhp), higher-order gradients, and autograd.grad / backward options.

Every function here is written once as `fn(m, ...)` and run with m = engine and m = torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.autograd.functional as TF

import engine
import engine.autograd.functional as EF

RNG = np.random.default_rng(1234)
W1 = RNG.standard_normal((3, 4))
B1 = RNG.standard_normal(3)
X4 = RNG.standard_normal(4)
X3 = RNG.standard_normal((3, 1))
Y4 = RNG.standard_normal(4)


def _np(x):
    if x is None:
        return None
    if isinstance(x, engine.Tensor):
        return x.detach().numpy()
    return x.detach().numpy()


def assert_same(ours, theirs, rtol=1e-10, atol=1e-12, grad_state=True):
    """Equal nested structure (tuple/tensor), shapes, dtypes and values; with grad_state,
    also the same requires_grad (so create_graph behaves as torch's)."""
    if isinstance(theirs, tuple):
        assert isinstance(ours, tuple), f"expected a tuple, got {type(ours).__name__}"
        assert len(ours) == len(theirs)
        for o, t in zip(ours, theirs, strict=True):
            assert_same(o, t, rtol, atol, grad_state)
        return
    assert isinstance(ours, engine.Tensor), f"expected a Tensor, got {type(ours).__name__}"
    assert tuple(ours.shape) == tuple(theirs.shape)
    assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch.")
    np.testing.assert_allclose(_np(ours), _np(theirs), rtol=rtol, atol=atol)
    if grad_state:
        assert ours.requires_grad == theirs.requires_grad


# Three non-trivial functions, each written once for both libraries.
def mlp_layer(m):
    """tanh(W x + b): a tanh MLP layer (3 outputs of 4 inputs)."""
    w, b = m.tensor(W1), m.tensor(B1)
    return lambda x: m.tanh((w * x).sum(dim=1) + b)


def softmax_weighted(m):
    """softmax(x) * x, the softmax written out (exp / sum) so only core ops run."""

    def f(x):
        e = m.exp(x - 0.5)
        return e / e.sum() * x

    return f


def two_inputs(m):
    """A function of two inputs that broadcast: (3, 1) and (4,) -> (3, 4)."""
    return lambda x, y: x * m.sin(y) + x**2 / (1 + y * y)


def two_outputs(m):
    """Two inputs, two outputs of different shapes (tuple in, tuple out)."""
    return lambda x, y: (m.exp(x * y).sum(dim=0), (x - y) ** 3)


def scalar_of(fn):
    """A scalar function (for hessian / hvp / vhp) built from a vector function."""
    return lambda m: lambda *xs: (fn(m)(*xs) ** 2).sum()


VECTOR_FUNCS = {
    "mlp_layer": (mlp_layer, (X4,)),
    "softmax_weighted": (softmax_weighted, (X4,)),
    "two_inputs": (two_inputs, (X3, Y4)),
}


def _inputs(m, arrays, single):
    ts = tuple(m.tensor(a) for a in arrays)
    return ts[0] if single and len(ts) == 1 else ts


def _both(name, build, single=True):
    fn_maker, arrays = VECTOR_FUNCS[name]
    return [(m, build(fn_maker)(m), _inputs(m, arrays, single)) for m in (engine, torch)]


@pytest.mark.parametrize("create_graph", [False, True], ids=["plain", "create_graph"])
@pytest.mark.parametrize("single", [True, False], ids=["tensor", "tuple"])
@pytest.mark.parametrize("name", list(VECTOR_FUNCS))
def test_jacobian_matches_torch(name, single, create_graph):
    (_, f, x), (_, tf, tx) = _both(name, lambda mk: mk, single)
    ours = EF.jacobian(f, x, create_graph=create_graph)
    theirs = TF.jacobian(tf, tx, create_graph=create_graph)
    assert_same(ours, theirs)


@pytest.mark.parametrize("create_graph", [False, True], ids=["plain", "create_graph"])
@pytest.mark.parametrize("single", [True, False], ids=["tensor", "tuple"])
@pytest.mark.parametrize("name", list(VECTOR_FUNCS))
def test_hessian_matches_torch(name, single, create_graph):
    (_, f, x), (_, tf, tx) = _both(name, scalar_of, single)
    ours = EF.hessian(f, x, create_graph=create_graph)
    theirs = TF.hessian(tf, tx, create_graph=create_graph)
    assert_same(ours, theirs)


def _v_like(m, ref, seed):
    rng = np.random.default_rng(seed)
    if isinstance(ref, tuple):
        return tuple(_v_like(m, r, seed + i) for i, r in enumerate(ref))
    return m.tensor(rng.standard_normal(tuple(ref.shape)))


@pytest.mark.parametrize("create_graph", [False, True], ids=["plain", "create_graph"])
@pytest.mark.parametrize("name", list(VECTOR_FUNCS))
def test_vjp_and_jvp_match_torch(name, create_graph):
    (_, f, x), (_, tf, tx) = _both(name, lambda mk: mk, single=True)
    out = tf(*tx) if isinstance(tx, tuple) else tf(tx)
    v_out, tv_out = _v_like(engine, out, 7), _v_like(torch, out, 7)
    assert_same(
        EF.vjp(f, x, v_out, create_graph=create_graph),
        TF.vjp(tf, tx, tv_out, create_graph=create_graph),
    )
    v_in, tv_in = _v_like(engine, tx, 8), _v_like(torch, tx, 8)
    assert_same(
        EF.jvp(f, x, v_in, create_graph=create_graph),
        TF.jvp(tf, tx, tv_in, create_graph=create_graph),
    )


@pytest.mark.parametrize("name", list(VECTOR_FUNCS))
def test_hvp_and_vhp_match_torch(name):
    (_, f, x), (_, tf, tx) = _both(name, scalar_of, single=True)
    v, tv = _v_like(engine, tx, 9), _v_like(torch, tx, 9)
    assert_same(EF.hvp(f, x, v), TF.hvp(tf, tx, tv))
    assert_same(EF.vhp(f, x, v), TF.vhp(tf, tx, tv))


def test_tuple_outputs_match_torch():
    xs = (RNG.standard_normal((2, 3)), RNG.standard_normal(3))
    ours_in = tuple(engine.tensor(a) for a in xs)
    torch_in = tuple(torch.tensor(a) for a in xs)
    f, tf = two_outputs(engine), two_outputs(torch)
    assert_same(EF.jacobian(f, ours_in), TF.jacobian(tf, torch_in))
    out = tf(*torch_in)
    assert_same(
        EF.vjp(f, ours_in, _v_like(engine, out, 3)), TF.vjp(tf, torch_in, _v_like(torch, out, 3))
    )
    assert_same(
        EF.jvp(f, ours_in, _v_like(engine, torch_in, 4)),
        TF.jvp(tf, torch_in, _v_like(torch, torch_in, 4)),
    )


def test_vectorize_flag_gives_the_same_jacobian():
    f = mlp_layer(engine)
    x = engine.tensor(X4)
    np.testing.assert_array_equal(
        EF.jacobian(f, x, vectorize=True).numpy(), EF.jacobian(f, x).numpy()
    )


def test_the_tutorials_vector_jacobian_product():
    """The seed's J^T·v: for Q = 3a^3 - b^2, v = [1, 1] gives dQ/da = 9a^2, dQ/db = -2b."""

    def q(a, b):
        return 3 * a**3 - b**2

    a = engine.tensor([2.0, 3.0])
    b = engine.tensor([6.0, 4.0])
    external_grad = engine.tensor([1.0, 1.0])
    out, (ga, gb) = EF.vjp(q, (a, b), external_grad)
    assert out.tolist() == [-12.0, 65.0]
    assert ga.tolist() == [36.0, 81.0]
    assert gb.tolist() == [-12.0, -8.0]
    ja, jb = EF.jacobian(q, (a, b))
    assert ja.tolist() == [[36.0, 0.0], [0.0, 81.0]]
    assert jb.tolist() == [[-12.0, 0.0], [0.0, -8.0]]
    # J^T · v by hand equals the vjp.
    np.testing.assert_array_equal(ja.numpy().T @ external_grad.numpy(), ga.numpy())
    # The same through torch.
    tout, (tga, tgb) = TF.vjp(
        q, (torch.tensor([2.0, 3.0]), torch.tensor([6.0, 4.0])), torch.tensor([1.0, 1.0])
    )
    assert_same((out, ga, gb), (tout, tga, tgb))


def test_inputs_are_not_modified_or_attached():
    x = engine.tensor(X4)
    EF.jacobian(mlp_layer(engine), x)
    assert x.grad is None and not x.requires_grad and x.is_leaf


def test_create_graph_differentiates_through_callers_graph():
    """With create_graph=True and an input that requires grad, results stay connected."""
    for m, F in ((engine, EF), (torch, TF)):
        x = m.tensor(X4, requires_grad=True)
        jac = F.jacobian(mlp_layer(m), x, create_graph=True)
        (g,) = m.autograd.grad((jac * jac).sum(), x)
        if m is engine:
            ours = g
        else:
            theirs = g
    assert_same(ours, theirs)


def test_zeros_for_unused_inputs_and_strict_errors():
    def f(x, y):
        return x * 2

    x, y = engine.tensor([1.0, 2.0]), engine.tensor([3.0, 4.0])
    _, (gx, gy) = EF.vjp(f, (x, y), engine.tensor([1.0, 1.0]))
    assert gx.tolist() == [2.0, 2.0] and gy.tolist() == [0.0, 0.0]
    jx, jy = EF.jacobian(f, (x, y))
    assert jy.tolist() == [[0.0, 0.0], [0.0, 0.0]]
    with pytest.raises(engine.GradError, match="independent of input 1"):
        EF.vjp(f, (x, y), engine.tensor([1.0, 1.0]), strict=True)
    with pytest.raises(
        engine.GradError, match="Output 0 of the user-provided function is independent of input 1"
    ):
        EF.jacobian(f, (x, y), strict=True)
    with pytest.raises(engine.GradError, match="does not require gradients"):
        EF.vjp(lambda x: engine.tensor([1.0]), x, engine.tensor([1.0]), strict=True)
    with pytest.raises(engine.GradError, match="jacobian of the user-provided function"):
        EF.hessian(lambda x: (x * 2).sum(), x, strict=True)


def test_v_is_validated_as_torch_does():
    x = engine.tensor([1.0, 2.0])
    with pytest.raises(
        engine.GradError, match=r"v has invalid size: should be \(2,\) but got \(3,\)"
    ):
        EF.vjp(lambda x: x * 2, x, engine.tensor([1.0, 2.0, 3.0]))
    with pytest.raises(engine.GradError, match="The vector v can only be None"):
        EF.vjp(lambda x: x * 2, x)
    with pytest.raises(engine.GradError, match="The vector v can only be None"):
        EF.jvp(lambda x: x * 2, x)
    with pytest.raises(engine.GradError, match="v is a tuple of invalid length"):
        EF.vjp(lambda x: (x, x), x, (engine.tensor([1.0, 1.0]),))
    with pytest.raises(TypeError, match="must be either a Tensor or a tuple of Tensors"):
        EF.vjp(lambda x: x, [1.0, 2.0], x)
    with pytest.raises(engine.GradError, match="should contain a single element"):
        EF.hessian(lambda x: x * x, x)
    # A single-element output needs no v.
    out, g = EF.vjp(lambda x: (x * x).sum(), x)
    assert out.item() == 5.0 and g.tolist() == [2.0, 4.0]


# ---------------------------------------------------------------------------------------
# Higher order


def test_second_derivative_of_cube_is_6x_and_third_is_6():
    x = engine.tensor([-1.5, 0.0, 2.0, 3.0], requires_grad=True)
    (d1,) = engine.autograd.grad((x**3).sum(), x, create_graph=True)
    (d2,) = engine.autograd.grad(d1.sum(), x, create_graph=True)
    (d3,) = engine.autograd.grad(d2.sum(), x)
    assert d1.tolist() == (3 * x.detach().numpy() ** 2).tolist()
    assert d2.tolist() == (6 * x.detach().numpy()).tolist()
    assert d3.tolist() == [6.0, 6.0, 6.0, 6.0]
    assert d1.requires_grad and d2.requires_grad and not d3.requires_grad


def test_hessian_of_cube_is_diag_6x():
    x = engine.tensor([1.0, 2.0, 3.0])
    h = EF.hessian(lambda x: (x**3).sum(), x)
    np.testing.assert_array_equal(h.numpy(), np.diag([6.0, 12.0, 18.0]))


HIGHER = {
    "exp": lambda m, x: m.exp(x),
    "sin_mul": lambda m, x: m.sin(x) * x,
    "cos": lambda m, x: m.cos(x * x),
    "tanh": lambda m, x: m.tanh(x) ** 2,
    "sigmoid": lambda m, x: m.sigmoid(x * 3),
    "log": lambda m, x: m.log(x * x + 1),
    "sqrt": lambda m, x: m.sqrt(x * x + 1),
    "rsqrt": lambda m, x: m.rsqrt(x * x + 1),
    "div": lambda m, x: x / (x * x + 2),
    "rdiv": lambda m, x: 2 / (x * x + 1),
    "pow_int": lambda m, x: x**4,
    "pow_float": lambda m, x: (x * x + 1) ** 1.5,
    "pow_tensor": lambda m, x: (x * x + 1) ** (x * 0.5),
    "rpow": lambda m, x: 2**x,
    "sum": lambda m, x: x.sum(dim=0) * x,
    "sum_all": lambda m, x: x.sum() * x,
    "mean": lambda m, x: x.mean(dim=1, keepdim=True) * x,
    "mean_all": lambda m, x: m.exp(x.mean()) * x,
    "reshape": lambda m, x: x.reshape(3, 2) ** 3,
    "view": lambda m, x: m.sin(x.view(6)),
    "transpose": lambda m, x: (x.transpose(0, 1) * x.t()).exp(),
    "permute": lambda m, x: x.permute(1, 0) ** 3,
    "expand": lambda m, x: m.exp(x.sum(dim=1, keepdim=True).expand(2, 3) * x),
    "unsqueeze": lambda m, x: x.unsqueeze(0) ** 3,
    "rsub_neg": lambda m, x: (1 - x) ** 3 + (-x) ** 3,
    "sub": lambda m, x: (x - x * x) ** 2,
    "broadcast": lambda m, x: m.exp(x * x.sum(dim=0)),
    "matmul": lambda m, x: m.tanh(x @ x.t()),
    "getitem": lambda m, x: m.exp(x[0, 1:]) * x[:, 1:] ** 2 + x[..., None, -1],
    "getitem_indices": lambda m, x: m.sin(x[:, [0, 2, 2]]) * x[1],
}


@pytest.mark.parametrize("name", list(HIGHER))
def test_grad_of_grad_matches_torch(name):
    """d/dx of (w · d/dx sum f(x)), and one order more: equal to torch's (a derivative that
    torch leaves connected but is constant is compared as values)."""
    f = HIGHER[name]
    xv = np.random.default_rng(0).standard_normal((2, 3))
    wv = np.random.default_rng(1).standard_normal((2, 3))
    results = []
    for m in (engine, torch):
        x = m.tensor(xv, requires_grad=True)
        (g,) = m.autograd.grad(f(m, x).sum(), x, create_graph=True)
        (h,) = m.autograd.grad((g * m.tensor(wv)).sum(), x, create_graph=True)
        third = None
        if h.requires_grad:
            (third,) = m.autograd.grad((h * h).sum(), x, allow_unused=True)
        results.append((_np(g), _np(h), None if third is None else _np(third)))
    (g, h, t), (tg, th, tt) = results
    np.testing.assert_allclose(g, tg, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h, th, rtol=1e-10, atol=1e-12)
    if t is not None or tt is not None:
        zeros = np.zeros_like(xv)
        np.testing.assert_allclose(
            zeros if t is None else t, zeros if tt is None else tt, rtol=1e-9, atol=1e-12
        )


def test_gradcheck_of_a_gradient():
    """The gradient computed with create_graph is itself correctly differentiable."""

    def grad_of(x):
        (g,) = engine.autograd.grad((engine.sin(x) * x * x).sum(), x, create_graph=True)
        return g

    x = engine.tensor(np.random.default_rng(3).standard_normal(4), requires_grad=True)
    assert engine.autograd.gradcheck(grad_of, (x,))


# ---------------------------------------------------------------------------------------
# autograd.grad and backward options


def test_grad_with_grad_outputs_and_multiple_outputs():
    for m in (engine, torch):
        x = m.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = m.tensor([0.5, -1.0, 2.0], requires_grad=True)
        o1, o2 = x * y, m.exp(x).sum()
        gx, gy = m.autograd.grad(
            (o1, o2), (x, y), grad_outputs=(m.tensor([1.0, 2.0, 3.0]), m.tensor(0.5))
        )
        if m is engine:
            ours = (gx, gy)
        else:
            theirs = (gx, gy)
    assert_same(ours, theirs, rtol=1e-6)
    assert ours[0].grad_fn is None and not ours[0].requires_grad


def test_grad_leaves_dot_grad_alone_and_allow_unused():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    z = engine.tensor([1.0, 2.0], requires_grad=True)
    (gx,) = engine.autograd.grad((x * x).sum(), x)
    assert gx.tolist() == [2.0, 4.0] and x.grad is None
    gx, gz = engine.autograd.grad((x * x).sum(), (x, z), allow_unused=True)
    assert gz is None
    with pytest.raises(engine.GradError, match="appears to not have been used in the graph"):
        engine.autograd.grad((x * x).sum(), (x, z))


def test_grad_with_respect_to_non_leaf():
    for m in (engine, torch):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        y = x * 3
        z = (m.exp(y) * y).sum()
        gy, gx = m.autograd.grad(z, (y, x))
        if m is engine:
            ours = (gy, gx)
        else:
            theirs = (gy, gx)
    assert_same(ours, theirs, rtol=1e-6)


def test_create_graph_grad_has_grad_fn_and_backward_fills_grad():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    (g,) = engine.autograd.grad((x**3).sum(), x, create_graph=True)
    assert g.grad_fn is not None and g.requires_grad
    g.sum().backward()
    assert x.grad.tolist() == [6.0, 12.0]


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True")
def test_backward_create_graph_gives_differentiable_grad():
    for m in (engine, torch):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        (x**3).sum().backward(create_graph=True)
        g = x.grad
        assert g.requires_grad
        (h,) = m.autograd.grad(g.sum(), x)
        if m is engine:
            ours = h
        else:
            theirs = h
    assert_same(ours, theirs)


def test_retain_graph_allows_second_backward_and_grads_accumulate():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    y = (engine.exp(x) * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first)
    with pytest.raises(engine.GradError, match="Trying to backward through the graph a second"):
        y.backward()


def test_grad_retain_graph():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    y = (x**3).sum()
    (g1,) = engine.autograd.grad(y, x, retain_graph=True)
    (g2,) = engine.autograd.grad(y, x)
    assert g1.tolist() == g2.tolist() == [3.0, 12.0]
    with pytest.raises(engine.GradError, match="Trying to backward through the graph a second"):
        engine.autograd.grad(y, x)


def test_backward_inputs_restricts_accumulation():
    for m in (engine, torch):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        w = m.tensor([3.0, 4.0], requires_grad=True)
        y = x * w
        loss = (y * y).sum()
        loss.backward(inputs=[w, y])
        res = (x.grad, _np(w.grad), _np(y.grad), y.retains_grad)
        if m is engine:
            ours = res
        else:
            theirs = res
    assert ours[0] is None and theirs[0] is None
    np.testing.assert_array_equal(ours[1], theirs[1])
    np.testing.assert_array_equal(ours[2], theirs[2])
    assert ours[3] == theirs[3]


def test_backward_inputs_single_tensor_and_errors():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    w = engine.tensor([3.0, 4.0], requires_grad=True)
    (x * w).sum().backward(inputs=x)
    assert x.grad.tolist() == [3.0, 4.0] and w.grad is None
    with pytest.raises(engine.GradError, match="cannot be empty"):
        (x * w).sum().backward(inputs=[])
    with pytest.raises(engine.GradError, match="requires_grad=False"):
        (x * w).sum().backward(inputs=[engine.ones(2)])


def test_autograd_backward_function():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    y1, y2 = x * 2, x * x
    engine.autograd.backward([y1, y2], [engine.tensor([1.0, 1.0]), engine.tensor([1.0, 0.5])])
    assert x.grad.tolist() == [4.0, 4.0]


def test_retain_grad_on_non_leaf():
    for m in (engine, torch):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        y = x * x
        y.retain_grad()
        z = y * 3
        (z * z).sum().backward()
        res = (_np(y.grad), z.grad if m is engine else None, y.retains_grad, z.retains_grad)
        if m is engine:
            ours = res
        else:
            theirs = res
    np.testing.assert_array_equal(ours[0], theirs[0])
    assert ours[1] is None
    assert ours[2:] == theirs[2:]


def test_shared_subexpression_and_multiple_paths():
    """A node reached by several paths gets the sum of their gradients before it runs."""
    for m in (engine, torch):
        x = m.tensor([0.3, -1.2, 2.0], requires_grad=True)
        a = m.exp(x)
        b = a * a + m.sin(a) - a / (1 + x * x)
        (b.sum() + a.mean()).backward()
        if m is engine:
            ours = x.grad
        else:
            theirs = x.grad
    assert_same(ours, theirs, rtol=1e-6, grad_state=False)


def test_chain_of_100000_ops_backpropagates():
    x = engine.tensor([1.0, -2.0], requires_grad=True)
    z = x
    for i in range(100_000):
        z = z * 1.0 if i % 2 else z + 0.0
    z.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]


SECOND_BACKWARD = {
    "add_sum": lambda m, x: (x + 1).sum(),
    "neg_mean": lambda m, x: (-x).mean(),
    "sub_self": lambda m, x: (x - x).sum(),
    "reshape": lambda m, x: x.reshape(2, 1).sum(),
    "transpose": lambda m, x: x.reshape(1, 2).t().sum(),
    "mul_scalar": lambda m, x: (x * 2).sum(),
    "div_scalar": lambda m, x: (x / 2).sum(),
    "exp": lambda m, x: m.exp(x).sum(),
    "pow": lambda m, x: (x**2).sum(),
    "mul_tensor": lambda m, x: (x * x).sum(),
}


@pytest.mark.parametrize("name", list(SECOND_BACKWARD))
def test_second_backward_fails_exactly_when_torch_does(name):
    """Only nodes that saved tensors are freed: a graph of adds and views can run twice,
    one that saved operands cannot, in both libraries."""
    outcome = []
    for m in (engine, torch):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        y = SECOND_BACKWARD[name](m, x)
        y.backward()
        try:
            y.backward()
            outcome.append(("ok", _np(x.grad).tolist()))
        except RuntimeError as exc:
            outcome.append(("raised", str(exc)))
    assert outcome[0] == outcome[1]


def test_grad_of_a_tensor_with_respect_to_itself():
    for m in (engine, torch):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        y = x * 2
        assert m.autograd.grad(y, y, m.tensor([3.0, 4.0]))[0].tolist() == [3.0, 4.0]
        assert m.autograd.grad(x, x, m.tensor([5.0, 6.0]))[0].tolist() == [5.0, 6.0]


def test_backward_under_no_grad_still_computes_gradients():
    for m in (engine, torch):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        y = (x**3).sum()
        with m.no_grad():
            y.backward()
        assert x.grad.tolist() == [3.0, 12.0]
        assert m.is_grad_enabled()


def test_jacobian_create_graph_without_a_stack_op(monkeypatch):
    """functional.jacobian stacks rows with `stack` when registered, else with expand and
    mul; both give torch's values and a graph to differentiate."""
    from engine.registry import FUNCTIONS

    monkeypatch.delitem(FUNCTIONS, "stack", raising=False)
    x = engine.tensor(X4, requires_grad=True)
    jac = EF.jacobian(mlp_layer(engine), x, create_graph=True)
    (g,) = engine.autograd.grad((jac * jac).sum(), x)
    tx = torch.tensor(X4, requires_grad=True)
    tjac = TF.jacobian(mlp_layer(torch), tx, create_graph=True)
    (tg,) = torch.autograd.grad((tjac * tjac).sum(), tx)
    assert_same(jac, tjac, grad_state=True)
    assert_same(g, tg)
