"""Programs valid in PyTorch once the `torch.`/`F.` prefix is dropped, evaluated over HTTP by
the real server, equal torch's outputs and gradients (values, dtypes, shapes).

Each program's text is also run by Python's `exec` against torch (and `torch.nn.functional`)
here in the test, on the same inputs: one text, two implementations. The coverage test makes
sure every function of the registry appears in some program, so an op cannot land without
being checked over HTTP too."""

# ruff: noqa: E501 - the programs are a table, one per line

import zlib
from dataclasses import dataclass, field

import httpx
import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from engine.program import parse_expr, to_python
from engine.program.names import OPERATORS
from engine.registry import FUNCTIONS
from service.wire import decode_tensor, encode_tensor, jsonio
from tests.float_ref import assert_float32_close


@dataclass(frozen=True)
class In:
    """An input: shape, value domain, dtype and whether it requires grad."""

    shape: tuple
    domain: str = "real"
    dtype: str = "float32"
    grad: bool = True

    def make(self, rng: np.random.Generator) -> np.ndarray:
        if self.domain.startswith("int:"):
            _, lo, hi = self.domain.split(":")
            return rng.integers(int(lo), int(hi), size=self.shape).astype(np.int64)
        if self.domain == "bool":
            return rng.random(self.shape) > 0.5
        if self.domain == "positive":
            x = rng.uniform(0.5, 2.0, self.shape)
        elif self.domain == "unit":
            x = rng.uniform(0.05, 0.95, self.shape)
        elif self.domain == "distinct":
            n = int(np.prod(self.shape))
            x = (rng.permutation(n).reshape(self.shape) - n / 2) * 0.37 + 0.01
        elif self.domain == "nonzero":
            x = rng.uniform(0.5, 2.0, self.shape) * rng.choice([-1.0, 1.0], self.shape)
        else:
            x = rng.standard_normal(self.shape)
        return x.astype(self.dtype)

    @property
    def requires_grad(self) -> bool:
        return self.grad and self.dtype.startswith("float")


def I(*shape, domain="real", dtype="float32", grad=True):  # noqa: E743, N802
    return In(tuple(shape), domain, dtype, grad)


def INT(*shape, lo=0, hi=4):  # noqa: N802
    return In(tuple(shape), f"int:{lo}:{hi}", "int64", False)


def BOOL(*shape):  # noqa: N802
    return In(tuple(shape), "bool", "bool", False)


@dataclass(frozen=True)
class Prog:
    expr: str
    inputs: dict = field(default_factory=dict)
    backward: str | None = "y"  # the output backward starts from (None: forward only)
    rtol: float = 1e-10  # float64 results; float32 ones are judged by torch's float64 run


M34, V4 = I(3, 4), I(4)
PROGRAMS = [
    # -- elementwise, unary -------------------------------------------------------------------
    Prog("y = abs(x)", {"x": I(3, 4, domain="nonzero")}),
    Prog("y = cos(x) + sin(x)", {"x": M34}),
    Prog("y = tanh(x).exp()", {"x": M34}),
    Prog("y = sigmoid(x) * relu(x)", {"x": M34}),
    Prog("y = erf(x) + expm1(x) + log1p(x)", {"x": I(3, 4, domain="positive")}),
    Prog("y = log(x) + log2(x) + log10(x)", {"x": I(3, 4, domain="positive")}),
    Prog("y = sqrt(x) + rsqrt(x) + reciprocal(x)", {"x": I(3, 4, domain="positive")}),
    Prog("y = sign(x) * x + square(x)", {"x": I(3, 4, domain="nonzero")}),
    Prog("y = neg(x) - x.neg()", {"x": M34}),
    Prog("y = gelu(x) + gelu(x, approximate='tanh')", {"x": M34}),
    Prog("y = softplus(x, beta=2.0) + leaky_relu(x, 0.2)", {"x": M34}),
    Prog("y = clamp(x, min=-0.5, max=0.5) + x.clip(-0.3, 0.3)", {"x": M34}),
    # -- elementwise, binary, with broadcasting --------------------------------------------------
    Prog("y = x + z", {"x": I(3, 1), "z": V4}),
    Prog("y = add(x, z, alpha=2) - sub(x, z, alpha=0.5)", {"x": M34, "z": V4}),
    Prog("y = subtract(x, z) * multiply(x, 3)", {"x": M34, "z": I(1, 4)}),
    Prog("y = mul(x, z) / div(x, w)", {"x": M34, "z": V4, "w": I(3, 1, domain="nonzero")}),
    Prog("y = true_divide(x, z) + divide(z, 2)", {"x": M34, "z": I(4, domain="nonzero")}),
    Prog("y = x ** 2 + 2 ** x + pow(x, 3)", {"x": M34}),
    Prog("y = pow(x, z)", {"x": I(3, 4, domain="positive"), "z": V4}),
    Prog("y = maximum(x, z) + minimum(x, z)", {"x": I(3, 4, domain="distinct"), "z": V4}),
    Prog("y = 3 * x ** 3 - z ** 2", {"x": I(2), "z": I(2)}),
    Prog("y = x / 2 - 1 / x + 0.5 * x", {"x": I(5, domain="nonzero")}),
    Prog("y = (x - x.mean()) / x.std()", {"x": I(6, dtype="float64")}),
    # -- comparisons and selection ----------------------------------------------------------------
    Prog(
        "m = logical_or(eq(i, j), ne(i, j))\nk = logical_and(ge(i, j), le(i, j))\n"
        "n = logical_xor(lt(x, z), gt(x, z))\ny = where(x > z, x, z * 2)",
        {"i": INT(3, 4), "j": INT(3, 4), "x": I(3, 4, domain="distinct"), "z": V4},
    ),
    Prog(
        "a = logical_and(p, q)\nb = logical_or(p, q)\nc = logical_xor(p, q)\nd = logical_not(p)\n"
        "y = where(c, x, -x)",
        {"p": BOOL(3, 4), "q": BOOL(3, 4), "x": M34},
    ),
    Prog("y = x.masked_fill(m, 0.0) + x[x > 0].sum()", {"x": M34, "m": BOOL(3, 4)}),
    Prog("y = where(x > 0, x, 0.0)", {"x": M34}),
    # -- reductions ------------------------------------------------------------------------------
    Prog("y = sum(x, dim=1, keepdim=True)", {"x": M34}),
    Prog("y = x.sum() + x.sum(0).sum()", {"x": M34}),
    Prog("y = mean(x) + x.mean(dim=(0, 1))", {"x": I(2, 3, 4)}),
    Prog("y = prod(x, dim=1)", {"x": I(3, 4, domain="nonzero")}),
    Prog("y = var(x, dim=1) + std(x, unbiased=False)", {"x": M34}),
    Prog("y = x.var(dim=0, correction=0)", {"x": M34}),
    Prog("y = logsumexp(x, dim=1)", {"x": M34}),
    Prog("y = norm(x) + x.norm(dim=1).sum() + norm(x, p=1)", {"x": I(3, 4, domain="nonzero")}),
    Prog("y = amax(x, dim=1) + x.amin(dim=0).sum()", {"x": I(3, 4, domain="distinct")}),
    Prog("y = max(x) + min(x)", {"x": I(3, 4, domain="distinct")}),
    Prog(
        "v, i = max(x, dim=1)\nw, j = min(x, dim=0)\ny = v.sum() + w.sum()",
        {"x": I(3, 4, domain="distinct")},
    ),
    Prog("y = max(x, z) - min(x, z)", {"x": I(3, 4, domain="distinct"), "z": V4}),
    Prog("i = argmax(x, dim=1)\nj = x.argmin()\ny = x[0, i[0]]", {"x": I(3, 4, domain="distinct")}),
    # -- shapes and views -------------------------------------------------------------------------
    Prog("y = x.reshape(4, 3) * 2", {"x": M34}),
    Prog("y = x.view(2, -1) + z.view_as(x).reshape(2, 6)", {"x": M34, "z": I(12)}),
    Prog("y = x.reshape_as(z) * z", {"x": M34, "z": I(4, 3)}),
    Prog("y = flatten(x, start_dim=1)", {"x": I(2, 3, 4)}),
    Prog("y = unflatten(x, 1, (2, 2))", {"x": M34}),
    Prog("y = x.unsqueeze(1).squeeze(1) + x.unsqueeze(0).squeeze()", {"x": M34}),
    Prog("y = x.expand(3, 4) + z.expand_as(w) * w", {"x": I(1, 4), "z": I(3, 1), "w": M34}),
    Prog("y = x.permute(2, 0, 1) * 2", {"x": I(2, 3, 4)}),
    Prog("y = transpose(x, 0, 1) @ x + x.t() @ x + x.T @ x", {"x": M34}),
    Prog("y = movedim(x, 0, 2)", {"x": I(2, 3, 4)}),
    Prog("y = x.repeat(2, 1)", {"x": M34}),
    Prog("y = x.sum_to_size(1, 4)", {"x": M34}),
    Prog("y = x.t().contiguous().clone()", {"x": M34}),
    Prog("y = x.to(float64) * 2", {"x": M34}),
    Prog("y = narrow(x, 1, 1, 2)", {"x": M34}),
    Prog("y = select(x, 1, 2)", {"x": M34}),
    # -- joining and splitting ------------------------------------------------------------------
    Prog("y = cat([x, z], dim=0)", {"x": M34, "z": I(2, 4)}),
    Prog("y = stack([x, z], dim=1)", {"x": M34, "z": M34}),
    Prog("p, q = chunk(x, 2, dim=1)\ny = p * q", {"x": M34}),
    Prog("p, q = split(x, [1, 3], dim=1)\ny = p.sum() + q.sum() * 2", {"x": M34}),
    Prog("r0, r1, r2 = unbind(x, dim=0)\ny = r0 * r1 + r2", {"x": M34}),
    # -- indexing ----------------------------------------------------------------------------------
    Prog("y = x[:, 1:3] * 2", {"x": M34}),
    Prog("y = x[1:, ::2] + x[0, -1]", {"x": M34}),
    Prog("y = x[..., 1] + x[:, None, 0].squeeze(1)", {"x": M34}),
    Prog("y = x[[0, 2, 0]]", {"x": M34}),
    Prog("y = x[i] * 2", {"x": M34, "i": INT(5, lo=0, hi=3)}),
    Prog("y = index_put(x, (i,), v)", {"x": M34, "i": INT(2, lo=0, hi=3), "v": V4}),
    Prog("y = select_scatter(x, v, 0, 1)", {"x": M34, "v": V4}),
    Prog("y = slice_scatter(x, v, dim=1, start=0, end=2)", {"x": M34, "v": I(3, 2)}),
    # -- linear algebra -----------------------------------------------------------------------------
    Prog("y = x @ w", {"x": M34, "w": I(4, 5)}),
    Prog("y = matmul(x, w)", {"x": I(2, 3, 4), "w": I(4, 2)}),
    Prog("y = x @ v", {"x": M34, "v": V4}),
    Prog("y = mm(x, w) + addmm(b, x, w)", {"x": M34, "w": I(4, 2), "b": I(2)}),
    Prog("y = bmm(x, w)", {"x": I(2, 3, 4), "w": I(2, 4, 5)}),
    Prog("y = mv(x, v) + dot(v, v)", {"x": M34, "v": V4}),
    Prog("y = linear(x, w, b)", {"x": M34, "w": I(2, 4), "b": I(2)}),
    Prog("y = linear(x, w)", {"x": I(2, 3, 4), "w": I(5, 4)}),
    # -- neural-network functions and losses -------------------------------------------------------
    Prog("y = softmax(x, dim=-1)", {"x": M34}),
    Prog("y = log_softmax(x, dim=1)", {"x": M34}),
    Prog("y = cross_entropy(x, t)", {"x": M34, "t": INT(3, lo=0, hi=4)}),
    Prog("y = cross_entropy(x, t, reduction='sum', label_smoothing=0.1)", {"x": M34, "t": INT(3)}),
    Prog("y = nll_loss(log_softmax(x, dim=1), t)", {"x": M34, "t": INT(3)}),
    Prog(
        "y = mse_loss(x, z) + l1_loss(x, z, reduction='sum')", {"x": M34, "z": I(3, 4, grad=False)}
    ),
    Prog(
        "y = binary_cross_entropy_with_logits(x, t)",
        {"x": M34, "t": I(3, 4, domain="unit", grad=False)},
    ),
    Prog("y = dropout(x, p=0.5, training=False)", {"x": M34}),
    Prog(
        "h = relu(x @ W.T + b)\ny = cross_entropy(h, t)",
        {"x": I(2, 3), "W": I(4, 3), "b": I(4), "t": INT(2)},
    ),
    Prog("y = (x @ w.T + b).relu()[:, 0]", {"x": I(2, 3), "w": I(4, 3), "b": I(4)}),
    Prog("y = x.exp().sum(dim=0).log()", {"x": M34}),
    # -- convolution, pooling, batch norm ----------------------------------------------------
    Prog(
        "y = conv2d(x, w, b, stride=2, padding=1)",
        {"x": I(1, 3, 8, 8, grad=False), "w": I(4, 3, 3, 3), "b": I(4)},
    ),
    Prog(
        "y = max_pool2d(x, 3, 2, 1) + avg_pool2d(x, 3, 2, 1)",
        {"x": I(2, 3, 8, 8, domain="distinct")},
    ),
    Prog("y = adaptive_avg_pool2d(x, (3, 2)) * 2", {"x": I(2, 3, 7, 5)}),
    Prog(
        "y = batch_norm(x, m, v, g, b, training=True, momentum=0.2)",
        {
            "x": I(4, 3, 3, 3),
            "m": I(3, grad=False),
            "v": I(3, domain="positive", grad=False),
            "g": I(3),
            "b": I(3),
        },
    ),
    Prog(
        "y = relu(batch_norm(conv2d(x, w, padding='same'), m, v)).sum(dim=(2, 3))",
        {
            "x": I(2, 2, 5, 5),
            "w": I(3, 2, 3, 3),
            "m": I(3, grad=False),
            "v": I(3, domain="positive", grad=False),
        },
    ),
]


def _torch_namespace() -> dict:
    # torch.nn.functional's spelling wins (dropout's `training`, the losses' `reduction`).
    ns = {k: getattr(torch, k) for k in dir(torch) if not k.startswith("_")}
    ns.update({k: getattr(F, k) for k in dir(F) if not k.startswith("_")})
    ns.update(torch=torch, F=F)
    return ns


TORCH_NS = _torch_namespace()


def make_inputs(prog: Prog) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(zlib.crc32(prog.expr.encode()))
    return {name: spec.make(rng) for name, spec in prog.inputs.items()}


def run_torch(prog: Prog, arrays: dict[str, np.ndarray]):
    leaves = {
        name: torch.tensor(a, requires_grad=prog.inputs[name].requires_grad)
        for name, a in arrays.items()
    }
    scope = dict(TORCH_NS, **leaves)
    exec(compile(prog.expr, "<parity>", "exec"), scope)  # noqa: S102 - the test's own text
    outputs = {k: scope[k] for k in parse_expr(prog.expr).output_names}
    return leaves, outputs


@pytest.fixture(scope="module")
def live(live_server):
    with httpx.Client(base_url=live_server, timeout=60) as client:
        yield client


def _np(t):
    return None if t is None else t.detach().numpy()


def _answer(json_tensor):
    fields = {k: v for k, v in json_tensor.items() if k not in ("grad_fn", "requires_grad")}
    array, _ = decode_tensor(fields)
    return array


def _assert_same(
    ours: np.ndarray, theirs: torch.Tensor, what: str, rtol: float, reference=None
) -> None:
    """Equal to torch's result: a float32 one judged against torch's float64 `reference` run
    of the same inputs (tests/float_ref.py), float64 ones to `rtol`, others exactly."""
    theirs_np = theirs.detach().numpy()
    assert str(ours.dtype) == str(theirs_np.dtype), (what, ours.dtype, theirs_np.dtype)
    assert ours.shape == theirs_np.shape, (what, ours.shape, theirs_np.shape)
    if ours.dtype == np.float32 and reference is not None:
        assert_float32_close(ours, theirs_np, reference, what)
    elif ours.dtype.kind == "f":
        np.testing.assert_allclose(ours, theirs_np, rtol=rtol, atol=1e-12, err_msg=what)
    else:
        np.testing.assert_array_equal(ours, theirs_np, err_msg=what)


def test_at_least_sixty_programs():
    assert len(PROGRAMS) >= 60
    assert len({p.expr for p in PROGRAMS}) == len(PROGRAMS)


def test_every_registered_function_appears_in_some_program():
    covered = set()
    for prog in PROGRAMS:
        for eqn in parse_expr(prog.expr).eqns:
            covered.add(OPERATORS[eqn.fn].rule if eqn.fn in OPERATORS else eqn.fn)
    missing = sorted(set(FUNCTIONS) - covered)
    assert not missing, f"registered functions no parity program calls: {missing}"


@pytest.mark.parametrize("prog", PROGRAMS, ids=[p.expr.replace("\n", "; ") for p in PROGRAMS])
def test_program_over_http_equals_torch(live, prog):
    arrays = make_inputs(prog)
    leaves, expected = run_torch(prog, arrays)
    # torch's float64 run of the same float32 values: what float32 results are judged by.
    wide = {n: a.astype(np.float64) if a.dtype == np.float32 else a for n, a in arrays.items()}
    wide_leaves, wide_expected = run_torch(prog, wide)
    body = {
        "expr": prog.expr,
        "inputs": {
            name: {
                **encode_tensor(a, binary=True),
                "requires_grad": prog.inputs[name].requires_grad,
            }
            for name, a in arrays.items()
        },
        "binary": True,
    }
    target = expected.get(prog.backward) if prog.backward else None
    if target is not None and target.requires_grad:
        gradient = None
        if target.numel() != 1:
            rng = np.random.default_rng(1)
            g = rng.standard_normal(tuple(target.shape)).astype(str(target.dtype)[6:])
            gradient = encode_tensor(g, binary=True)
            target.backward(torch.from_numpy(g))
            wide_expected[prog.backward].backward(torch.from_numpy(g.astype(np.float64)))
        else:
            target.backward()
            wide_expected[prog.backward].backward()
        body["backward"] = {"output": prog.backward}
        if gradient is not None:
            body["backward"]["gradient"] = gradient
    response = live.post(
        "/v1/evaluate", content=jsonio.dumps(body), headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text[:2000]
    out = response.json()
    for name, value in expected.items():
        values = value if isinstance(value, tuple | list) else None
        if values is None:
            got = out["outputs"][name]
            wide_value = _np(wide_expected[name])
            _assert_same(_answer(got), value, f"output {name}", prog.rtol, wide_value)
            assert got["requires_grad"] == value.requires_grad, name
            fn = value.grad_fn
            assert got["grad_fn"] == (None if fn is None else type(fn).__name__), name
        else:
            for k, item in enumerate(values):
                wide_item = _np(wide_expected[name][k])
                got = _answer(out["outputs"][f"{name}[{k}]"])
                _assert_same(got, item, f"{name}[{k}]", prog.rtol, wide_item)
    if "backward" in body:
        for name, leaf in leaves.items():
            if not leaf.requires_grad:
                continue
            ours = out["grads"][name]
            if leaf.grad is None:
                assert ours is None, name
            else:
                wide_grad = _np(wide_leaves[name].grad)
                _assert_same(_answer(ours), leaf.grad, f"grad of {name}", prog.rtol, wide_grad)


# -- the program layer's own parity list (tests/program/test_parity.py), over HTTP ----------------

from tests.program import test_parity as program_parity  # noqa: E402 - the second half's source


@pytest.mark.parametrize(
    ("text", "exact"), program_parity.CASES, ids=[c[0] for c in program_parity.CASES]
)
def test_program_layer_expressions_over_http_equal_torch(live, text, exact):
    arrays = program_parity._inputs()
    prog = parse_expr(text)
    leaves = program_parity._leaves(torch, arrays, prog.inputs)
    scope = program_parity._torch_namespace(leaves)
    exec(to_python(text)[0], {}, scope)  # noqa: S102 - the test's own oracle
    expected = {name: scope[name] for name in prog.output_names}
    # The program layer's backward is d(sum of output * w)/d(leaves), w drawn in output order
    # from seed 3; over HTTP that is one backward entry per output, accumulating.
    rng = np.random.default_rng(3)
    backward = []
    for name, out in expected.items():
        if out.requires_grad:
            w = rng.standard_normal(tuple(out.shape)).astype(str(out.dtype).removeprefix("torch."))
            backward.append({"output": name, "gradient": encode_tensor(w, binary=True)})
    their_grads = program_parity._backward(torch, expected, leaves)
    body = {
        "expr": text,
        "inputs": {
            name: {**encode_tensor(arrays[name], binary=True), "requires_grad": leaf.requires_grad}
            for name, leaf in leaves.items()
        },
        "binary": True,
    }
    if backward:
        body["backward"] = backward
    response = live.post(
        "/v1/evaluate", content=jsonio.dumps(body), headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text[:2000]
    out = response.json()
    for name, value in expected.items():
        _assert_same(_answer(out["outputs"][name]), value, f"output {name}", 1e-10)
    for name, g in their_grads.items():
        ours = out["grads"][name]
        if g is None:
            assert ours is None or not _answer(ours).any(), name
        else:
            _assert_same(_answer(ours), g, f"grad of {name}", 1e-9)
