"""examples/seed_tutorial.py, the seed tutorial over HTTP with httpx only, runs against a real
server and prints what the notebook prints."""

import subprocess
import sys

from tests.service.conftest import REPO

EXPECTED = [
    "ResNet-18 built on the server: 62 parameters, 11689512 values",
    "prediction: shape [1, 1000], float32",
    "step 1: 62 parameters updated",
    "Q = tensor([-12., 65.], grad_fn=<SubBackward0>)",
    "a.grad = tensor([36., 81.]), b.grad = tensor([-12., -8.])",
    "tensor([True, True])\ntensor([True, True])",  # print(9*a**2 == a.grad); -2*b == b.grad
    "J_a^T·v = tensor([36., 81.]) == a.grad: True",
    "J_b^T·v = tensor([-12., -8.]) == b.grad: True",
    "Does `a` require gradients?: False",
    "Does `b` require gradients?: True",
    "parameters that compute gradients: ['fc.bias', 'fc.weight']; frozen: 60",
    "gradients computed for ['fc.bias', 'fc.weight']",
    "conv1.weight unchanged by the step: True",
    "optimizer state kept for: ['fc.bias', 'fc.weight']",
]


def test_the_seed_tutorial_runs_over_http(server):
    done = subprocess.run(
        [sys.executable, str(REPO / "examples" / "seed_tutorial.py"), server],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for line in EXPECTED:
        assert line in done.stdout, (line, done.stdout)


def test_it_fails_cleanly_without_a_server():
    done = subprocess.run(
        [sys.executable, str(REPO / "examples" / "seed_tutorial.py"), "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1 and done.stderr.startswith("error: "), done.stderr
