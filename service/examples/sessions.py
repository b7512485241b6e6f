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

CREATE["resnet18-template"] = {
    "summary": "The seed tutorial's ResNet-18, built on the server",
    "description": "`resnet18(num_classes=1000)` with torchvision's initialisation from seed 0 "
    "(load trained weights with `PUT .../state_dict`), SGD(lr=1e-2, momentum=0.9). Requests "
    'add the loss: `"expr": "loss = (output - labels).sum()", "loss": "loss"` with '
    "`input` (N, 3, H, W) and `labels` (N, 1000).",
    "value": {
        "model": {"name": "resnet18", "num_classes": 1000, "seed": 0},
        "optimizer": {"type": "sgd", "lr": 0.01, "momentum": 0.9},
    },
}
CREATE["mlp-template"] = {
    "summary": "An MLP template with its loss",
    "description": "Linear(4, 16), ReLU, Linear(16, 3) with nn.Linear's init; the session's "
    "program runs after the model's and turns `output` into the loss.",
    "value": {
        "model": {"name": "mlp", "sizes": [4, 16, 3], "seed": 0},
        "optimizer": {"type": "sgd", "lr": 0.1, "momentum": 0.9},
        "expr": "loss = cross_entropy(output, y)",
        "loss": "loss",
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

FORWARD["train-mode"] = {
    "summary": "As model.train() under no_grad",
    "description": "For a model session: the batch norms use the batch's statistics and the "
    "updated running statistics are stored (a new version). Other programs: as eval.",
    "value": {"inputs": {"x": _BATCH["x"]}, "mode": "train", "outputs": ["logits"]},
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
        "value": {"inputs": _BATCH, "include": ["grad_norms"]},
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


# -- answers: what the server answers to the examples above, called in this order on one
# session (create mlp-init-specs, forward predict, backward accumulate, step, train
# one-batch); a test keeps them true. Ids, tokens and times are of one run.

_ID = "9da6cfea3841caac44ab89a3625425a9"
_T0, _T1 = "2026-11-29T12:48:42.178515Z", "2026-11-29T12:48:42.196153Z"
_EXPIRES = "2026-11-29T13:48:42.196153Z"
_SGD = {"type": "sgd", "lr": 0.1, "momentum": 0.9, "dampening": 0.0, "weight_decay": 0.0,
        "nesterov": False, "maximize": False}  # fmt: skip
_SHAPES = {"W1": [16, 4], "W2": [3, 16], "b1": [16], "b2": [3]}


def _info(grad: bool) -> dict[str, Any]:
    return {
        name: {
            "shape": shape,
            "dtype": "float32",
            "requires_grad": True,
            "grad": grad,
            "optimizer_state": ["momentum_buffer"] if grad else [],
        }  # fmt: skip
        for name, shape in _SHAPES.items()
    }


def _t(data: Any, shape: list[int]) -> dict[str, Any]:
    return {"data": data, "shape": shape, "dtype": "float32"}


CREATED = {
    "summary": "The MLP of the mlp-init-specs example",
    "value": {
        "id": _ID,
        "token": "NT2wZwbLjQoxZ5YTJ4ziR4CoavGo-eQ-pJJ6GRZHTu4",
        "version": 0,
        "step_count": 0,
        "created_at": _T0,
        "updated_at": _T0,
        "last_used_at": _T0,
        "expires_at": "2026-11-29T13:48:42.178515Z",
        "stored_bytes": 744,
        "parameters": {**_info(False)},
        "buffers": {},
        "optimizer": _SGD,
        "program": {"expr": _MLP},
        "loss": "loss",
    },
}

SESSION = {
    "summary": "After a backward, a step and a train call",
    "value": {
        **{k: v for k, v in CREATED["value"].items() if k != "token"},
        "version": 3,
        "step_count": 2,
        "updated_at": _T1,
        "last_used_at": _T1,
        "expires_at": _EXPIRES,
        "stored_bytes": 975,
        "parameters": _info(True),
    },
}

FORWARDED = {
    "summary": "Logits and probabilities",
    "value": {
        "outputs": {
            "logits": _t(
                [[0.58659995, 0.1006121, 0.13813993], [0.18904714, 0.30429474, 0.59918904]], [2, 3]
            ),
            "p": _t(
                [[0.44371474, 0.27292418, 0.28336105], [0.27554414, 0.30920216, 0.4152537]], [2, 3]
            ),
        },  # fmt: skip
        "version": 0,
    },
}

BACKWARDED = {
    "summary": "The loss and the gradient norms",
    "value": {
        "loss": 1.2750203609466553,
        "outputs": {},
        "grad_norms": {
            "W1": 0.4930577576160431,
            "W2": 0.8482497930526733,
            "b1": 0.19048690795898438,
            "b2": 0.3565528690814972,
        },  # fmt: skip
        "version": 1,
    },
}

STEPPED = {
    "summary": "Every parameter had a gradient, so every one moved",
    "value": {
        "step_count": 1,
        "dry_run": False,
        "updated": ["W1", "W2", "b1", "b2"],
        "update_norms": {
            "W1": 0.04930578172206879,
            "W2": 0.08482497930526733,
            "b1": 0.019048696383833885,
            "b2": 0.03565528616309166,
        },  # fmt: skip
        "version": 2,
    },
}

TRAINED = {
    "summary": "One iteration",
    "value": {
        "step_count": 2,
        "losses": [1.1684423685073853],
        "loss": 1.1684423685073853,
        "outputs": {},
        "grad_norms": {
            "W1": 0.4201563894748688,
            "W2": 0.7689892649650574,
            "b1": 0.16977158188819885,
            "b2": 0.3305342197418213,
        },  # fmt: skip
        "version": 3,
    },
}

PARAMETER = {
    "summary": "b2 with include=grad,optimizer_state, after the train call",
    "value": {
        "name": "b2",
        "shape": [3],
        "dtype": "float32",
        "requires_grad": True,
        "value": _t([0.26224566, -0.07661857, 0.2796866], [3]),
        "grad": _t([-0.14047183, 0.2698034, -0.12933159], [3]),
        "optimizer_state": {"momentum_buffer": _t([-0.26680532, 0.5317603, -0.26495492], [3])},
        "version": 3,
    },
}
