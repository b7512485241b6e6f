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


def _problem(type_: str, title: str, status: int, detail: str, instance: str, **more: Any):
    return {
        "type": f"/problems/{type_}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        **more,
    }


def _at(pointer: str, detail: str) -> list[dict[str, str]]:
    return [{"pointer": pointer, "detail": detail}]


_SHAPE = (
    "operator +: the size of tensor a (2) must match the size of tensor b (3) at "
    "non-singleton dimension 1; shapes [(1, 2), (3,)] do not broadcast"
)
_UNDEFINED = "'c' is not defined: not assigned before this use and not an input"
_DUNDER = "attribute '__class__': private and dunder attributes are not allowed"
_GRADIENT = (
    "'Q' has shape [2]: backward from a non-scalar output needs \"gradient\", a tensor of "
    "that shape (grad can be implicitly created only for scalar outputs)"
)
_BIG = "y: a tensor of shape (100000, 100000) has 10000000000 elements, over the limit of 10000000"
_RAGGED = "ragged nested list: sublists at one depth differ in length or mix lists and numbers"
_CYCLE = "the nodes form a cycle: 'p' -> 'q' -> 'p'"
_NAN = (
    "Malformed JSON at line 1, column 36: unexpected character, expected a JSON value; write "
    'non-finite numbers as the strings "NaN", "Infinity", "-Infinity"'
)


def program_problems(instance: str) -> dict[int, dict[str, dict[str, Any]]]:
    """Examples of what any operation taking a program answers, by status."""
    return {
        400: {
            "bare-nan": {
                "summary": "A bare NaN token is not JSON",
                "value": _problem(
                    "invalid-json",
                    "Malformed JSON",
                    400,
                    _NAN,
                    instance,
                    line=1,
                    column=36,
                    position=35,
                ),
            }
        },
        413: {
            "too-large": {
                "summary": "Body over AUTOGRAD_MAX_BODY_BYTES",
                "value": _problem(
                    "body-too-large",
                    "Request body too large",
                    413,
                    "The request body declares 20000000 bytes; the limit is 16777216.",
                    instance,
                    limit="max_body_bytes",
                    value=20000000,
                    maximum=16777216,
                ),
            }
        },
        415: {
            "not-json": {
                "summary": "The body must be JSON",
                "value": _problem(
                    "unsupported-media-type",
                    "Unsupported media type",
                    415,
                    "Content-Type text/plain is not JSON; send application/json.",
                    instance,
                    content_type="text/plain",
                ),
            }
        },
        422: {
            "shape-mismatch": {
                "summary": "Shapes that do not broadcast, found before running",
                "value": _problem(
                    "shape-mismatch",
                    "Shape mismatch",
                    422,
                    f"line 2, column 7: {_SHAPE}",
                    instance,
                    errors=_at("/expr", _SHAPE),
                    kind="shape",
                    line=2,
                    column=7,
                    op="operator +",
                    shapes=[[1, 2], [3]],
                ),
            },
            "unknown-name": {
                "summary": "A name neither assigned nor given",
                "value": _problem(
                    "unknown-name",
                    "Unknown name",
                    422,
                    f"line 1, column 11: {_UNDEFINED}",
                    instance,
                    errors=_at("/expr", _UNDEFINED),
                    kind="undefined",
                    line=1,
                    column=11,
                ),
            },
            "forbidden-construct": {
                "summary": "Python outside the language",
                "value": _problem(
                    "forbidden-construct",
                    "Construct not allowed",
                    422,
                    f"line 1, column 5: {_DUNDER}",
                    instance,
                    errors=_at("/expr", _DUNDER),
                    kind="forbidden",
                    line=1,
                    column=5,
                ),
            },
            "invalid-graph": {
                "summary": "Nodes that form a cycle",
                "value": _problem(
                    "invalid-graph",
                    "Invalid graph",
                    422,
                    f"node 'p': {_CYCLE}",
                    instance,
                    errors=_at("/nodes/0", _CYCLE),
                    kind="cycle",
                    node="p",
                ),
            },
            "limit-exceeded": {
                "summary": "A tensor of 10¹⁰ elements, refused before allocating it",
                "value": _problem(
                    "limit-exceeded",
                    "Limit exceeded",
                    422,
                    f"line 1, column 7: {_BIG}",
                    instance,
                    errors=_at("/expr", _BIG),
                    kind="limit",
                    line=1,
                    column=7,
                    shapes=[[100000, 100000]],
                    limit="max_tensor_elements",
                    value=10000000000,
                    maximum=10000000,
                ),
            },
            "invalid-tensor": {
                "summary": "A ragged nested list",
                "value": _problem(
                    "invalid-tensor",
                    "Invalid tensor",
                    422,
                    f"{_RAGGED} (at /inputs/a)",
                    instance,
                    errors=_at("/inputs/a", _RAGGED),
                ),
            },
            "validation-error": {
                "summary": "A field of the wrong type",
                "value": _problem(
                    "validation-error",
                    "Request validation failed",
                    422,
                    "/expr: Input should be a valid string",
                    instance,
                    errors=_at("/expr", "Input should be a valid string"),
                ),
            },
        },
        500: {
            "unexpected": {
                "summary": "A defect of the service (logged)",
                "value": {
                    "type": "about:blank",
                    "title": "Internal Server Error",
                    "status": 500,
                    "detail": "An unexpected error occurred; it has been logged.",
                    "instance": instance,
                },
            }
        },
        501: {
            "no-rule": {
                "summary": "A function the service cannot check before running",
                "value": _problem(
                    "unsupported-function",
                    "Function cannot be checked",
                    501,
                    "line 1, column 5: 'frobnicate' has no shape rule",
                    instance,
                    kind="no_rule",
                    line=1,
                    column=5,
                    op="frobnicate",
                ),
            }
        },
        503: {
            "memory": {
                "summary": "Out of memory although within the limits",
                "value": _problem(
                    "insufficient-memory",
                    "Insufficient memory",
                    503,
                    "The server could not hold this computation (out of memory); lower the "
                    "tensor sizes or the program's size.",
                    instance,
                ),
            }
        },
    }


def evaluate_problems() -> dict[int, dict[str, dict[str, Any]]]:
    problems = program_problems("/v1/evaluate")
    problems[422] = {
        **dict(list(problems[422].items())[:1]),
        "gradient-required": {
            "summary": "Backward from a non-scalar output without `gradient`",
            "value": _problem(
                "gradient-required",
                "Gradient required",
                422,
                _GRADIENT,
                "/v1/evaluate",
                errors=_at("/backward/gradient", _GRADIENT),
                output="Q",
                shape=[2],
            ),
        },
        **dict(list(problems[422].items())[1:]),
    }
    problems[406] = {
        "not-acceptable": {
            "summary": "An Accept header naming neither JSON nor SVG",
            "value": _problem(
                "not-acceptable",
                "Not acceptable",
                406,
                "Accept: text/html matches none of application/json, image/svg+xml.",
                "/v1/evaluate",
                available=["application/json", "image/svg+xml"],
            ),
        }
    }
    graphviz = {
        "summary": "SVG asked for, Graphviz not installed",
        "value": _problem(
            "graphviz-missing",
            "Graphviz not installed",
            501,
            "Drawing the DAG as SVG needs Graphviz's `dot`, which is not installed on this "
            "server (Debian/Ubuntu package `graphviz`). Ask for application/json: `dag.dot` "
            "is the same picture as DOT text.",
            "/v1/evaluate",
            package="graphviz",
        ),
    }
    problems[501] = {"graphviz-missing": graphviz, **problems[501]}
    return problems


_NOT_SCALAR = (
    "the Hessian needs a scalar output; 'Q' has shape [2] (reduce it first, e.g. sum(...))"
)


def derivative_problems(instance: str) -> dict[int, dict[str, dict[str, Any]]]:
    problems = program_problems(instance)
    unknown = "'z' is not an input; the inputs are a, b"
    first = {
        "unknown-wrt": {
            "summary": "`wrt` names something that is not an input",
            "value": _problem(
                "unknown-name",
                "Unknown name",
                422,
                unknown,
                instance,
                errors=_at("/wrt/0", unknown),
            ),
        }
    }
    if instance == "/v1/hessian":
        first = {
            "not-scalar": {
                "summary": "The Hessian of a non-scalar output",
                "value": _problem(
                    "invalid-arguments",
                    "Invalid arguments",
                    422,
                    _NOT_SCALAR,
                    instance,
                    errors=_at("/output", _NOT_SCALAR),
                    shape=[2],
                ),
            },
            **first,
        }
    problems[422] = {**first, **problems[422]}
    return problems


def _t(data: Any, shape: list[int], dtype: str = "float32", **more: Any) -> dict[str, Any]:
    return {"data": data, "shape": shape, "dtype": dtype, **more}


_SEED_DOT = (
    "digraph autograd {\n"
    '  graph [rankdir=TB, fontname="Helvetica"];\n'
    '  node [shape=box, style="rounded,filled", fillcolor=white, fontname="Helvetica"];\n'
    '  n0 [label="SubBackward0"];\n'
    '  n1 [label="MulBackward0"];\n'
    '  n2 [label="PowBackward0"];\n'
    '  n3 [label="PowBackward0"];\n'
    '  n4 [label="b\\n(2,)", fillcolor=lightblue];\n'
    '  n5 [label="a\\n(2,)", fillcolor=lightblue];\n'
    "  n1 -> n0;\n"
    "  n2 -> n0;\n"
    "  n3 -> n1;\n"
    "  n4 -> n2;\n"
    "  n5 -> n3;\n"
    '  out0 [label="Q\\n(2,)", shape=ellipse, fillcolor=darkseagreen1];\n'
    "  n0 -> out0;\n"
    "}\n"
)


def _node(id_: int, name: str, op: str | None, next_: list, **more: Any) -> dict[str, Any]:
    return {
        "id": id_,
        "name": name,
        "op": op,
        "shape": [2],
        "dtype": "float32",
        "next": next_,
        **more,
    }


# What the server answers to the examples above (a test keeps them true).
EVALUATE_ANSWER = {
    "summary": "The seed's Q with its DAG",
    "value": {
        "outputs": {"Q": _t([-12, 65], [2], requires_grad=True, grad_fn="SubBackward0")},
        "grads": {"a": _t([36, 81], [2]), "b": _t([-12, -8], [2])},
        "dag": {
            "nodes": [
                _node(0, "SubBackward0", "sub", [1, 2]),
                _node(1, "MulBackward0", "mul", [3, None]),
                _node(2, "PowBackward0", "pow", [4]),
                _node(3, "PowBackward0", "pow", [5]),
                _node(4, "AccumulateGrad", None, [], input="b", requires_grad=True),
                _node(5, "AccumulateGrad", None, [], input="a", requires_grad=True),
            ],
            "outputs": {"Q": 0},
            "dot": _SEED_DOT,
        },
    },
}

JACOBIAN_ANSWER = {
    "summary": "dQ/da and dQ/db of the seed's Q",
    "value": {
        "output": "Q",
        "output_shape": [2],
        "wrt": ["a", "b"],
        "jacobian": {
            "a": _t([[36, 0], [0, 81]], [2, 2], matrix_shape=[2, 2]),
            "b": _t([[-12, 0], [0, -8]], [2, 2], matrix_shape=[2, 2]),
        },
        "matrix": _t([[36, 0, -12, 0], [0, 81, 0, -8]], [2, 4]),
    },
}

_ZERO = [[0, 0], [0, 0]]
HESSIAN_ANSWER = {
    "summary": "Second derivatives of sum(Q)",
    "value": {
        "output": "L",
        "wrt": ["a", "b"],
        "hessian": {
            "a": {
                "a": _t([[36, 0], [0, 54]], [2, 2], matrix_shape=[2, 2]),
                "b": _t(_ZERO, [2, 2], matrix_shape=[2, 2]),
            },
            "b": {
                "a": _t(_ZERO, [2, 2], matrix_shape=[2, 2]),
                "b": _t([[-2, 0], [0, -2]], [2, 2], matrix_shape=[2, 2]),
            },
        },
        "matrix": _t([[36, 0, 0, 0], [0, 54, 0, 0], [0, 0, -2, 0], [0, 0, 0, -2]], [4, 4]),
    },
}

GRADCHECK_ANSWER = {
    "summary": "The seed's Q passes",
    "value": {
        "output": "Q",
        "passed": True,
        "max_abs_diff": 1.5762907423777506e-08,
        "eps": 1e-06,
        "atol": 1e-05,
        "rtol": 0.001,
        "worst": {
            "input": "a",
            "output_index": 1,
            "input_index": 1,
            "analytical": 81.0,
            "numerical": 81.00000001576291,
        },
        "checks": {
            "a": {
                "analytical": _t([[36, 0], [0, 81]], [2, 2], "float64"),
                "numerical": _t(
                    [[36.00000000147929, 0], [0, 81.00000001576291]], [2, 2], "float64"
                ),
                "max_abs_diff": 1.5762907423777506e-08,
                "passed": True,
            },
            "b": {
                "analytical": _t([[-12, 0], [0, -8]], [2, 2], "float64"),
                "numerical": _t(
                    [[-12.000000001677336, 0], [0, -8.000000001118224]], [2, 2], "float64"
                ),
                "max_abs_diff": 1.677335603744723e-09,
                "passed": True,
            },
        },
    },
}
