"""Expressions valid in PyTorch once the `torch.`/`F.` prefix is dropped give PyTorch's values
and gradients when parsed, checked and run by engine.program; and the checker's inferred
shapes and dtypes are the ones the engine then produces.

The torch side runs the very same text with exec, in a namespace binding the registry's
names to torch's functions (here, in the test, and nowhere else). A final test fails when a
registered public function appears in no expression, so new ops get a parity case."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import engine
from engine.nn import functional as engine_F
from engine.program import check, parse_expr, run, to_python
from engine.program.names import OPERATORS
from engine.registry import FUNCTIONS

TF = torch.nn.functional


def _inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    n = rng.standard_normal
    return {
        "a": np.array([2.0, 3.0]),
        "b": np.array([6.0, 4.0]),
        "x": n((3, 4)),
        "y": n((3, 4)),
        "p": rng.uniform(0.5, 2.0, (3, 4)),
        "v": n(4),
        "w": n(4),
        "M": n((4, 5)),
        "W": n((5, 4)),
        "bias": n(5),
        "A": n((2, 3, 4)),
        "B": n((2, 4, 5)),
        "s": np.array(1.5),
        "I": np.array([0, 2, 1]),
        "c": np.array([3, 0, 1]),
        "m": rng.random((3, 4)) > 0.5,
        "img": n((2, 3, 8, 8)),
        "K": n((4, 3, 3, 3)),
        "kb": n(4),
        "g3": rng.uniform(0.5, 2.0, 3),
    }


# (text, exact): exact=False where a shape depends on computed data (a computed bool mask),
# so the checker's inferred shape is an upper bound, not the shape.
CASES = [
    # the seed, in both notations, and arithmetic with broadcasting
    "Q = 3a³ − b²",
    "Q = 3*a**3 - b**2",
    "z = x + y * 2 - 1",
    "z = x / p + 2 / p - p / 2",
    "z = -x + +y",
    "z = p ** y + 2 ** x + x ** 2 + x ** 3",
    "z = p ** 0.5 + p ** -1.5",
    "z = x + v",
    "z = x * bias[:3, None]",
    "z = A + x - v",
    "z = 2.5x − 3y²",
    "z = x·y × 2 + 2(x − y)",
    "z = p⁻¹ + p⁻² − x³",
    "z = s * x + s ** 2",
    "z = exp(-x ** 2)",
    # matrix products
    "h = x @ W.T + bias; z = relu(h)[:, 0]",
    "z = x @ v",
    "z = v @ w",
    "z = A @ B",
    "z = x @ M",
    "z = matmul(A, M)",
    "z = x @ W.T @ W",
    "z = A.mT @ A + transpose(A, -1, -2) @ A",
    "z = mm(x, M) + addmm(bias, x, W.T) + x.mm(M)",
    "z = bmm(A, B).sum(dim=-1)",
    "z = mv(x, v) + dot(v, w) + x.mv(v)",
    "z = addmm(bias, x, W.T, beta=0.5, alpha=2.0)",
    # nn.functional
    "z = linear(x, W, bias)",
    "z = F.linear(x, W) + torch.nn.functional.linear(x, W, bias)",
    "z = torch.nn.functional.softmax(x, dim=-1)",
    "z = log_softmax(x, 1) + F.log_softmax(x, dim=0)",
    "z = x.softmax(0) * x.log_softmax(dim=1)",
    "loss = cross_entropy(x, c)",
    "loss = F.cross_entropy(x, c, reduction='sum', label_smoothing=0.1)",
    "loss = cross_entropy(x, softmax(y, 1))",
    "loss = nll_loss(log_softmax(x, 1), c, reduction='none')",
    "loss = mse_loss(x, y) + l1_loss(x, y, reduction='sum')",
    "loss = binary_cross_entropy_with_logits(x, sigmoid(y))",
    "z = dropout(x, p=0.0) + dropout(x, 0.5, training=False)",
    "z = gelu(x) + gelu(x, approximate='tanh') + softplus(x, beta=2.0)",
    "z = leaky_relu(x, 0.2) + F.relu(x) + leaky_relu(x)",
    "z = conv2d(img, K, kb, stride=2, padding=1) + F.conv2d(img, K, padding='same')[..., ::2, ::2]",
    "z = max_pool2d(img, 3, 2, 1) + avg_pool2d(img, 2, ceil_mode=True, count_include_pad=False)",
    "vals, idx = F.max_pool2d(img, 2, return_indices=True); z = vals * 2",
    "z = adaptive_avg_pool2d(img, (3, 2)).sum() + F.adaptive_avg_pool2d(img, 1).sum()",
    "z = batch_norm(img, g3.detach() * 0, g3.detach() * 2, g3, kb[:3], training=True)",
    "z = F.batch_norm(conv2d(img, K), kb.detach(), kb.detach().abs() + 1, None, kb)",
    # elementwise functions and methods
    "z = exp(x) + sin(x) * cos(x) + tanh(x) + sigmoid(x)",
    "z = log(p) + sqrt(p) + rsqrt(p) + log1p(p) + log2(p) + log10(p)",
    "z = erf(x) + expm1(x) + abs(x) * sign(x) + reciprocal(p) + square(x)",
    "z = x.exp().log1p() + x.abs().sqrt() + x.sigmoid().tanh() + x.relu()",
    "z = neg(x) + x.neg() + x.square() + x.reciprocal() + p.log().sin().cos()",
    "z = pow(x, 3) + x.pow(2) + pow(2.0, x) + torch.pow(p, y)",
    "z = add(x, y, alpha=2) + sub(x, y, alpha=0.5) + mul(x, 3) + div(x, p)",
    "z = true_divide(x, p) + subtract(x, y) + multiply(x, y) + divide(x, p)",
    "z = div(x, p, rounding_mode='floor') + x.div(2.0, rounding_mode='trunc')",
    "z = x.add(y).mul(2).sub(1).div(p)",
    # reductions
    "z = sum(x, dim=1, keepdim=True) + x.sum(dim=1).unsqueeze(1)",
    "z = x.sum() + x.mean() + mean(x, (0, 1)) + sum(A, dim=(0, 2)).sum()",
    "z = A.mean([0, 2]) + x.sum(-1).mean()",
    "z = prod(p, 1) + p.prod()",
    "z = var(x, 1) + x.std(dim=0, keepdim=True).sum() + x.var(correction=0)",
    "z = logsumexp(x, 1) + x.logsumexp(dim=0).sum()",
    "z = amax(x, 1) + amin(x, dim=0).sum() + x.amax()",
    "z = max(x, 1)[0] + min(x, dim=1)[0] + x.max() + x.min()",
    "vals, idx = max(x, dim=1); z = vals * 2",
    "z = maximum(x, y) + minimum(x, y) + max(x, y) + min(x, y)",
    "i = argmax(x, dim=1) + argmin(x, 1) + x.argmax()",
    "z = norm(x) + x.norm(dim=1).sum() + norm(x, 1) + x.norm(p=2, dim=0, keepdim=True)",
    "z = mean(x, dim=1, keepdim=True) - x",
    # comparisons and selection
    "z = where(logical_and(x > 0, y < 0), x, y)",
    "z = where(x > y, x, 0.0) + where(x >= 0, 1.0, y)",
    "z = eq(x, y).float() + ne(x, x) + lt(x, y).double() + le(x, 0) + gt(x, 0) + ge(x, y)",
    "z = logical_or(m, x > 0).long() + logical_xor(m, x > 0).long() + logical_not(m).long()",
    "z = (x == y).sum() + (x != y).long() + (x < 0.5) * x + (x <= y) * 1.0",
    "z = clamp(x, -0.5, 0.5) + x.clamp(min=0) + clip(x, max=0.1) + clamp(x, y, p)",
    "z = x.clip(-1, 1) + x.clamp(max=0.0)",
    # shapes and views
    "z = x.view(4, 3) + x.reshape(-1, 3) + x.view(2, 6).view(4, 3)",
    "z = x.view_as(y) + x.reshape_as(y) + x.contiguous() + x.clone()",
    "z = A.flatten() + A.flatten(1).sum() + torch.flatten(A, 0, 1).sum()",
    "z = x.expand(2, 3, 4) + v.expand_as(x)",
    "z = A.sum_to_size(3, 4) + A.sum_to_size(1, 3, 1).squeeze(0)",
    "z = x.unsqueeze(0) + x.unsqueeze(-1).squeeze(-1) + x[None].squeeze(0)",
    "z = A.unflatten(2, (2, 2)) + unsqueeze(A, 3).view(2, 3, 2, 2)",
    "z = A.permute(2, 0, 1) + A.transpose(0, 2).permute(0, 2, 1)",
    "z = x.t() + x.T + y.mT + torch.t(x) + transpose(x, 0, 1)",
    "z = movedim(A, 0, -1) + A.movedim(0, 2)",
    "z = x.repeat(2, 1) + x.repeat((2, 1))",
    "z = squeeze(x.view(3, 1, 4), 1) + x.view(1, 3, 4).squeeze()",
    # casts
    "z = x.to(float64) + x.to(torch.float32).double() + x.float().double()",
    "z = x.long() + 1; k = c.float() * 2; n = m.long().sum()",
    "z = c * 2 + c; r = c / 2",
    # indexing
    "z = x[0] + x[-1, :] + x[:, 1:3].sum(1, keepdim=True)",
    "z = x[..., ::2] + x[:, None, 0].expand(3, 2)",
    "z = x[I] + x[[0, 2, 1]]",
    "z = x[m]",
    ("z = x[x > 0]", False),
    "z = x[I, 1:] + x[:, I]",
    "z = A[1, :, 2] + A[..., 0][0]",
    "z = select(x, 1, 2) + x.select(0, 1)[:3]",
    "z = narrow(x, 1, 1, 2) + x.narrow(0, 0, 3)[:, :2]",
    "z = slice_scatter(x, y[:, :2], dim=1, start=0, end=2) + select_scatter(x, v, 0, 1)",
    "z = index_put(x, (I,), y) + x.index_put((I,), y, accumulate=True)",
    "z = masked_fill(x, m, 0.0) + x.masked_fill(x > 0, 1.0)",
    # joining and splitting
    "z = cat([x, y], dim=0) + cat((y, x))",
    "z = stack([x, y], 1) + torch.stack((y, x), dim=1)",
    "z = torch.cat([x, y], 1).sum(0)",
    "a1, a2 = split(x, 2); z = a1.sum() + a2.sum()",
    "z = split(x, [1, 3], dim=1)[1] + chunk(x, 2, dim=1)[0].sum() + x.chunk(3)[2].sum()",
    "u0, u1, u2 = unbind(x); z = u0 + u1 * u2 + x.unbind(1)[2].sum()",
    "z = x.split(1, dim=1)[0]",
    # programs
    "h = x * 2\nh = h + y\nz = h.sum()",
    "h = tanh(x @ M); z = (h * h).mean()",
    "z = (x * y).sum(dim=1, keepdim=True).expand(3, 4) * x",
    "hidden = relu(linear(x, W, bias)); logits = hidden @ W; loss = cross_entropy(logits, c)",
]
CASES = [c if isinstance(c, tuple) else (c, True) for c in CASES]


def _torch_function(name):
    obj = torch
    if "." in name:
        for part in name.split("."):
            obj = getattr(obj, part, None)
        return obj
    if name in engine_F.NAMES and hasattr(TF, name):
        return getattr(TF, name)
    return getattr(torch, name, None) or getattr(TF, name, None)


def _torch_namespace(tensors):
    ns = {"torch": torch, "F": TF, "nn": torch.nn}
    for name in FUNCTIONS:
        fn = _torch_function(name)
        if fn is not None:
            ns[name] = fn
    ns.update(
        float32=torch.float32,
        float=torch.float32,
        float64=torch.float64,
        double=torch.float64,
        int64=torch.int64,
        long=torch.int64,
        bool=torch.bool,
    )
    ns.update(tensors)
    return ns


def _leaves(lib, arrays, names):
    out = {}
    for name in names:
        a = arrays[name].copy()
        t = lib.tensor(a)
        if a.dtype.kind == "f":
            t.requires_grad_(True)
        out[name] = t
    return out


def _np(t):
    return np.asarray(t.detach().numpy())


def _backward(lib, outputs, leaves, seed=3):
    """Gradients of sum(output * random weights) over the outputs that require grad."""
    rng = np.random.default_rng(seed)
    total = None
    for o in outputs.values():
        if not getattr(o, "requires_grad", False):
            continue
        w = lib.tensor(rng.standard_normal(tuple(o.shape)).astype(_np(o).dtype))
        term = (o * w).sum()
        total = term if total is None else total + term
    diff = {n: t for n, t in leaves.items() if t.requires_grad}
    if total is None or not diff:
        return {}
    grads = lib.autograd.grad(total, list(diff.values()), allow_unused=True)
    return dict(zip(diff, grads, strict=True))


@pytest.mark.parametrize(("text", "exact"), CASES, ids=[c[0] for c in CASES])
def test_values_and_gradients_match_torch(text, exact):
    arrays = _inputs()
    prog = parse_expr(text)
    ours_in = _leaves(engine, arrays, prog.inputs)
    checked = check(prog, ours_in, backward=True)
    ours = run(prog, ours_in)

    theirs_in = _leaves(torch, arrays, prog.inputs)
    ns = _torch_namespace(theirs_in)
    # torch imports modules from C while indexing: its globals need the real builtins (our
    # names, in the locals, shadow sum/max/min/abs/pow).
    exec(to_python(text)[0], {}, ns)  # noqa: S102 - the test's own oracle
    theirs = {name: ns[name] for name in ours}

    for name, o in ours.items():
        t = theirs[name]
        assert tuple(o.shape) == tuple(t.shape), name
        assert str(o.dtype) == str(t.dtype).removeprefix("torch."), name
        np.testing.assert_allclose(_np(o), _np(t), rtol=1e-10, atol=1e-12, err_msg=name)
        spec = checked.outputs[name]
        if exact:
            assert spec.shape == tuple(o.shape), f"{name}: inferred {spec} for {tuple(o.shape)}"
        else:
            assert spec.size >= o.numel()
        assert spec.dtype == o.dtype, f"{name}: inferred {spec.dtype}, ran {o.dtype}"
        assert spec.requires_grad == o.requires_grad, name

    our_grads = _backward(engine, ours, ours_in)
    their_grads = _backward(torch, theirs, theirs_in)
    assert our_grads.keys() == their_grads.keys()
    for name, g in our_grads.items():
        h = their_grads[name]
        if h is None:
            assert g is None or not np.any(_np(g)), name
            continue
        assert g is not None, name
        np.testing.assert_allclose(_np(g), _np(h), rtol=1e-9, atol=1e-12, err_msg=f"d/d{name}")


def test_at_least_sixty_expressions():
    assert len(CASES) >= 60


def test_every_public_function_has_a_parity_expression():
    used = set()
    for text, _ in CASES:
        for eqn in parse_expr(text).eqns:
            used.add(OPERATORS[eqn.fn].rule if eqn.fn in OPERATORS else eqn.fn)
    missing = sorted(set(FUNCTIONS) - used)
    assert not missing, f"add an expression using each of: {missing}"
