"""OpenAPI examples of the session operations: a small classifier trained step by step, and the
seed tutorial's finetuning (freeze everything, replace the head, train)."""

from typing import Any

_MLP = "h = relu(linear(x, W1, b1))\nlogits = linear(h, W2, b2)\nloss = cross_entropy(logits, y)"

_BATCH = {
    "x": [[0.5, -1.0, 2.0, 0.0], [1.5, 0.25, -0.5, 1.0]],
    "y": {"data": [2, 0], "dtype": "int64"},
}

CREATE: dict[str, dict[str, Any]] = {
    "mlp-init-specs": {
        "summary": "An MLP built on the server (nn.Linear's init), SGD with momentum",
        "description": "kaiming_uniform with a = √5 is nn.Linear's weight init "
        "(bound 1/√fan_in); the biases are drawn from U(−1/√fan_in, 1/√fan_in) as nn.Linear "
        "does. The seeds make the values reproducible.",
        "value": {
            "parameters": {
                "W1": {"init": "kaiming_uniform", "shape": [16, 4], "a": 5**0.5, "seed": 1},
                "b1": {"init": "uniform", "shape": [16], "a": -0.5, "b": 0.5, "seed": 2},
                "W2": {"init": "kaiming_uniform", "shape": [3, 16], "a": 5**0.5, "seed": 3},
                "b2": {"init": "uniform", "shape": [3], "a": -0.25, "b": 0.25, "seed": 4},
            },
            "optimizer": {"type": "sgd", "lr": 0.1, "momentum": 0.9},
            "expr": _MLP,
            "loss": "loss",
        },
    },
    "linear-regression-adam": {
        "summary": "Uploaded tensors, mean squared error, Adam",
        "value": {
            "parameters": {"w": [[0.1], [-0.2]], "b": [0.0]},
            "optimizer": {"type": "adam", "lr": 0.01},
            "expr": "pred = x @ w + b\nloss = mse_loss(pred, y)",
            "loss": "loss",
        },
    },
    "nodes-adamw": {
        "summary": "The program as nodes, AdamW with AMSGrad",
        "value": {
            "parameters": {"w": {"init": "xavier_uniform", "shape": [3, 2], "seed": 7}},
            "optimizer": {"type": "adamw", "lr": 0.001, "weight_decay": 0.01, "amsgrad": True},
            "nodes": [
                {"id": "z", "op": "matmul", "inputs": ["x", "w"]},
                {"id": "loss", "op": "mse_loss", "inputs": ["z", "y"]},
            ],
            "outputs": ["z", "loss"],
            "loss": "loss",
        },
    },
}

FORWARD: dict[str, dict[str, Any]] = {
    "predict": {
        "summary": "Logits and class probabilities for a batch",
        "description": "The request's program extends the session's: it uses `logits`.",
        "value": {
            "inputs": {"x": _BATCH["x"]},
            "expr": "p = softmax(logits, dim=1)",
            "outputs": ["logits", "p"],
        },
    },
}

BACKWARD: dict[str, dict[str, Any]] = {
    "accumulate": {
        "summary": "One micro-batch of gradient accumulation",
        "description": "Call it several times, then `step`: the gradients add up.",
        "value": {"inputs": _BATCH},
    },
    "with-grads": {
        "summary": "The loss and every gradient in full",
        "value": {"inputs": _BATCH, "include": ["grads"], "outputs": ["logits"]},
    },
}

STEP: dict[str, dict[str, Any]] = {
    "step": {"summary": "Apply the update", "value": {}},
    "dry-run": {"summary": "Only show Δθ", "value": {"dry_run": True}},
}

TRAIN: dict[str, dict[str, Any]] = {
    "one-batch": {
        "summary": "One iteration: zero_grad, forward, backward, step",
        "value": {"inputs": _BATCH},
    },
    "batches": {
        "summary": "Several iterations in one call",
        "value": {"batches": [{"inputs": _BATCH}, {"inputs": _BATCH}]},
    },
    "per-step-program": {
        "summary": "This step with its own loss (L2 penalty added)",
        "description": "The request's program extends the session's; `loss` names its "
        "output to minimise.",
        "value": {
            "inputs": _BATCH,
            "expr": "reg = loss + 0.001 * (W1 ** 2).sum()",
            "loss": "reg",
        },
    },
}

PUT_PARAMETER: dict[str, dict[str, Any]] = {
    "new-head": {
        "summary": "The tutorial's new classifier head, nn.Linear(512, 10)'s weight",
        "value": {"init": "kaiming_uniform", "shape": [10, 512], "a": 5**0.5, "seed": 0},
    },
    "tensor": {
        "summary": "Explicit values",
        "value": {"data": [[0.1, 0.2], [0.3, 0.4]], "requires_grad": True},
    },
}

PATCH_PARAMETER: dict[str, dict[str, Any]] = {
    "freeze": {"summary": "Freeze it", "value": {"requires_grad": False}},
    "unfreeze": {"summary": "Unfreeze it", "value": {"requires_grad": True}},
}
