"""OpenAPI examples: requests that work in Swagger UI with one click, and the problems the
operations answer. The seed's `Q = 3a³ − b²` comes first everywhere, so "Try it out" on any
operation starts from the tutorial's numbers."""

from typing import Any

SEED_INPUTS = {
    "a": {"data": [2, 3], "requires_grad": True},
    "b": {"data": [6, 4], "requires_grad": True},
}

EVALUATE: dict[str, dict[str, Any]] = {
    "seed": {
        "summary": "The seed's Q = 3a³ − b², backward with gradient [1, 1]",
        "description": "As the tutorial: `Q.backward(gradient=torch.tensor([1., 1.]))` gives "
        "a.grad = 9a² = [36, 81] and b.grad = −2b = [−12, −8].",
        "value": {
            "expr": "Q = 3a³ − b²",
            "inputs": SEED_INPUTS,
            "backward": {"output": "Q", "gradient": [1, 1]},
        },
    },
    "python-syntax-with-dag": {
        "summary": "The same in Python syntax, with the backward graph",
        "description": "The DAG of Q: SubBackward0 → MulBackward0 → PowBackward0 → "
        "AccumulateGrad(a), and SubBackward0 → PowBackward0 → AccumulateGrad(b). Ask for "
        "`image/svg+xml` to get it drawn by Graphviz.",
        "value": {
            "expr": "Q = 3*a**3 - b**2",
            "inputs": SEED_INPUTS,
            "backward": {"output": "Q", "gradient": [1, 1]},
            "include": ["dag"],
        },
    },
    "nodes": {
        "summary": "The same graph as a flat list of nodes",
        "description": "For generated graphs: each node names its op and its inputs (node "
        "ids, input names or constants).",
        "value": {
            "nodes": [
                {"id": "a3", "op": "pow", "inputs": ["a", 3]},
                {"id": "t", "op": "mul", "inputs": ["a3", 3]},
                {"id": "b2", "op": "pow", "inputs": ["b", 2]},
                {"id": "Q", "op": "sub", "inputs": ["t", "b2"]},
            ],
            "outputs": ["Q"],
            "inputs": SEED_INPUTS,
            "backward": {"output": "Q", "gradient": [1, 1]},
        },
    },
    "classifier-loss": {
        "summary": "A linear layer, ReLU and cross-entropy: gradients of a scalar loss",
        "description": "Several assignments; `outputs` picks what to answer. A scalar output "
        "needs no `gradient`.",
        "value": {
            "expr": "h = relu(x @ W.T + bias)\nloss = cross_entropy(h, y)",
            "inputs": {
                "x": [[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]],
                "W": {
                    "data": [[0.1, 0.2, 0.3], [-0.4, 0.5, 0.6], [0.7, -0.8, 0.9]],
                    "requires_grad": True,
                },
                "bias": {"data": [0.0, 0.1, -0.1], "requires_grad": True},
                "y": {"data": [2, 0], "dtype": "int64"},
            },
            "outputs": ["loss"],
            "backward": {"output": "loss"},
        },
    },
    "accumulate": {
        "summary": "Two backward calls: gradients add up",
        "description": "As `y.backward(retain_graph=True); z.backward()`: x.grad = "
        "dy/dx + dz/dx = cos(x) + 2x.",
        "value": {
            "expr": "y = sin(x).sum(); z = (x * x).sum()",
            "inputs": {"x": {"data": [0.0, 1.0, 2.0], "requires_grad": True}},
            "backward": [{"output": "y"}, {"output": "z"}],
        },
    },
    "binary": {
        "summary": "Tensors as base64 bytes, answer in base64",
        "description": "The fast form for large tensors: little-endian row-major bytes. "
        "Here a = [2, 3] and b = [6, 4] as float32.",
        "value": {
            "expr": "Q = 3a³ − b²",
            "inputs": {
                "a": {
                    "b64": "AAAAQAAAQEA=",
                    "shape": [2],
                    "dtype": "float32",
                    "requires_grad": True,
                },
                "b": {
                    "b64": "AADAQAAAgEA=",
                    "shape": [2],
                    "dtype": "float32",
                    "requires_grad": True,
                },
            },
            "backward": {"output": "Q", "gradient": [1, 1]},
            "binary": True,
        },
    },
    "non-finite": {
        "summary": "NaN and infinities are results, written as strings",
        "description": 'log(0) = -Infinity, 0/0 = NaN: returned as "-Infinity" and "NaN", '
        "never as null or an error.",
        "value": {"expr": "y = log(x); z = x / x", "inputs": {"x": [0.0, 1.0]}},
    },
}

_SEED_PROGRAM = {"expr": "Q = 3a³ − b²", "inputs": SEED_INPUTS}

JACOBIAN: dict[str, dict[str, Any]] = {
    "seed": {
        "summary": "dQ/da and dQ/db of the seed's Q",
        "description": "Elementwise, so both are diagonal: diag(9a²) = diag(36, 81) and "
        "diag(−2b) = diag(−12, −8).",
        "value": {**_SEED_PROGRAM, "output": "Q", "wrt": ["a", "b"]},
    },
    "softmax": {
        "summary": "The Jacobian of softmax",
        "value": {
            "expr": "p = softmax(z, dim=0)",
            "inputs": {"z": {"data": [1.0, 2.0, 3.0], "requires_grad": True}},
        },
    },
}

HESSIAN: dict[str, dict[str, Any]] = {
    "seed": {
        "summary": "Second derivatives of sum(Q) for the seed's Q",
        "description": "d²/da² = diag(18a) = diag(36, 54); d²/db² = diag(−2, −2); the "
        "mixed blocks are zero.",
        "value": {"expr": "L = sum(3a³ − b²)", "inputs": SEED_INPUTS, "wrt": ["a", "b"]},
    },
    "quadratic-form": {
        "summary": "x·Ax: the Hessian is A + Aᵀ",
        "value": {
            "expr": "f = x @ A @ x",
            "inputs": {
                "x": {"data": [1.0, 2.0], "requires_grad": True},
                "A": [[1.0, 2.0], [3.0, 4.0]],
            },
        },
    },
}

GRADCHECK: dict[str, dict[str, Any]] = {
    "seed": {
        "summary": "Check the seed's Q against finite differences",
        "value": {**_SEED_PROGRAM, "output": "Q"},
    },
    "composite": {
        "summary": "A composite of several ops, in float64",
        "value": {
            "expr": "y = tanh(x) * exp(-x ** 2) + sigmoid(x).log()",
            "inputs": {
                "x": {"data": [-1.5, 0.0, 0.5, 2.0], "dtype": "float64", "requires_grad": True}
            },
            "eps": 1e-6,
            "atol": 1e-5,
            "rtol": 1e-3,
        },
    },
}
