"""Cases for the core arithmetic written with the engine core."""

from . import Case, T

CASES = [
    Case("seed_q", lambda m, a, b: 3 * a**3 - b**2, [T(2), T(2)]),
    Case("add_broadcast", lambda m, x, y: x + y, [T(3, 1), T(4)]),
    Case("sub_scalar", lambda m, x: x - 2.5, [T(3)]),
    Case("rsub_scalar", lambda m, x: 2.5 - x, [T(3)]),
    Case("mul_broadcast", lambda m, x, y: x * y, [T(2, 3), T(3)]),
    Case("div_broadcast", lambda m, x, y: x / y, [T(2, 3), T(2, 1, domain="nonzero")]),
    Case("rdiv_scalar", lambda m, x: 2.0 / x, [T(4, domain="nonzero")]),
    Case("neg", lambda m, x: -x, [T(3)]),
    Case("pow_scalar", lambda m, x: x**3, [T(3)]),
    Case("pow_frac", lambda m, x: x**0.5, [T(3, domain="positive")]),
    Case("pow_tensor", lambda m, x, y: x**y, [T(3, domain="positive"), T(3)]),
    Case("rpow", lambda m, x: 2.0**x, [T(3)]),
    Case("exp", lambda m, x: m.exp(x), [T(3, 2)]),
    Case("log", lambda m, x: m.log(x), [T(3, domain="positive")]),
    Case("sum_all", lambda m, x: x.sum(), [T(3, 4)]),
    Case("sum_dim", lambda m, x: m.sum(x, dim=1, keepdim=True), [T(3, 4)]),
    Case("mean_dims", lambda m, x: x.mean(dim=(0, 2)), [T(2, 3, 4)]),
]

CASES += [
    Case("abs", lambda m, x: m.abs(x), [T(5, domain="nonzero")]),
    Case("sign", lambda m, x: m.sign(x) * x, [T(5, domain="nonzero")]),
    Case("sqrt", lambda m, x: m.sqrt(x), [T(4, domain="positive")]),
    Case("rsqrt", lambda m, x: m.rsqrt(x), [T(4, domain="positive")]),
    Case("sin_cos", lambda m, x: m.sin(x) + m.cos(x), [T(4)]),
    Case("tanh", lambda m, x: m.tanh(x), [T(4)]),
    Case("sigmoid", lambda m, x: m.sigmoid(x), [T(4)]),
    Case("relu", lambda m, x: m.relu(x), [T(6, domain="nonzero")]),
    Case("leaky_relu", lambda m, x: m.nn.functional.leaky_relu(x, 0.2), [T(6, domain="nonzero")]),
    Case("view", lambda m, x: x.view(4, -1), [T(2, 6)]),
    Case("reshape_copy", lambda m, x: x.t().reshape(12), [T(3, 4)]),
    Case("clone", lambda m, x: x.clone(), [T(3)]),
    Case("expand", lambda m, x: x.expand(3, 4), [T(3, 1)]),
    Case("sum_to_size", lambda m, x: x.sum_to_size(3, 1), [T(3, 4)], check_graph=False),
    Case("unsqueeze", lambda m, x: x.unsqueeze(1), [T(3, 4)]),
    Case("permute", lambda m, x: x.permute(2, 0, 1), [T(2, 3, 4)]),
    Case("T", lambda m, x: x.T, [T(3, 4)]),
    Case("transpose", lambda m, x: x.transpose(0, 2), [T(2, 3, 4)]),
    Case("t", lambda m, x: x.t(), [T(3, 4)]),
    Case("to_float32", lambda m, x: x.to(m.float32) * 2, [T(3)], float32=False, gradcheck=False),
]
