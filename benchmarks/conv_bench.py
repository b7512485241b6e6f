"""conv2d forward + backward, engine vs torch, one thread each, in one process.

    python benchmarks/conv_bench.py

Two shapes: ResNet-18's first layer (1x3x64x64 input, 64x3x7x7 weight, stride 2, padding 3;
the image needs no gradient, as in the model) and a 3x3 64 -> 64 convolution on 8x64x16x16
(padding 1, every gradient). Runs alternate between the libraries and the minimum and
median of each are printed, since other processes on the machine add noise."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import engine  # noqa: E402

torch.set_num_threads(1)

CASES = [
    ("resnet18 conv1: 1x3x64x64 * 64x3x7x7, s2 p3", (1, 3, 64, 64), (64, 3, 7, 7), 2, 3, False),
    ("3x3 64->64: 8x64x16x16 * 64x64x3x3, p1", (8, 64, 16, 16), (64, 64, 3, 3), 1, 1, True),
]


def _step(lib, x, w, g, stride, padding):
    y = lib.nn.functional.conv2d(x, w, stride=stride, padding=padding)
    y.backward(g)
    x.grad = w.grad = None


def main(repeats=60):
    rng = np.random.default_rng(0)
    for name, xs, ws, stride, padding, x_grad in CASES:
        x = rng.standard_normal(xs).astype(np.float32)
        w = rng.standard_normal(ws).astype(np.float32)
        out = (xs[0], ws[0], (xs[2] + 2 * padding - ws[2]) // stride + 1)
        g = rng.standard_normal((*out, out[2])).astype(np.float32)
        args = {
            "engine": (
                engine.tensor(x, requires_grad=x_grad),
                engine.tensor(w, requires_grad=True),
                engine.tensor(g),
            ),
            "torch": (
                torch.tensor(x, requires_grad=x_grad),
                torch.tensor(w, requires_grad=True),
                torch.tensor(g),
            ),
        }
        times = {"engine": [], "torch": []}
        for i in range(repeats + 5):
            for lib, mod in (("engine", engine), ("torch", torch)):
                t = time.perf_counter()
                _step(mod, *args[lib], stride, padding)
                if i >= 5:
                    times[lib].append(time.perf_counter() - t)
        e, t = sorted(times["engine"]), sorted(times["torch"])
        print(
            f"{name}: engine min {e[0] * 1e3:.3f} / median {e[len(e) // 2] * 1e3:.3f} ms, "
            f"torch min {t[0] * 1e3:.3f} / median {t[len(t) // 2] * 1e3:.3f} ms, "
            f"engine/torch {e[0] / t[0]:.2f} (min) {e[len(e) // 2] / t[len(t) // 2]:.2f} (median)"
        )


if __name__ == "__main__":
    main()
