"""Run benchmarks on an earlier commit and on this checkout side by side, in one sitting.

A refactoring promises "no slower than before"; figures taken on different days, or with
other work on the machine, cannot show that. This script checks the base commit out into a
temporary worktree and runs each benchmark script of each tree, taking turns, with
PYTHONPATH pointing at that tree (so the benchmark, its worker processes and its servers
import that tree's `engine` and `service`), then the checkout again with ENGINE_FAST=0 (the
plain reference path: what the generated fast paths buy).

    python benchmarks/compare_commits.py 5af2564
    python benchmarks/compare_commits.py 5af2564 --benchmarks engine_vs_torch --turns 2 \\
        --args "engine_vs_torch=--rounds 3"

`--args SCRIPT=ARGUMENTS` (repeatable) passes arguments to one script. Each tree runs its
own copy of the script, since scripts follow the modules they import.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ("engine_vs_torch", "http_bench", "session_bench")


def run(tree: Path, script: str, extra: list[str], fast: bool) -> str:
    env = dict(os.environ, PYTHONPATH=str(tree))
    if not fast:
        env["ENGINE_FAST"] = "0"
    done = subprocess.run(
        [sys.executable, str(tree / "benchmarks" / f"{script}.py"), *extra],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    out = done.stdout + (
        f"\n[exit {done.returncode}]\n{done.stderr[-2000:]}" if done.returncode else ""
    )
    return out.rstrip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", help="the commit to compare against (e.g. main's before a change)")
    parser.add_argument("--benchmarks", default=",".join(DEFAULT), help="comma-separated scripts")
    parser.add_argument("--turns", type=int, default=1, help="times each tree takes its turn")
    parser.add_argument(
        "--no-reference", action="store_true", help="skip the ENGINE_FAST=0 runs of the checkout"
    )
    parser.add_argument(
        "--args",
        action="append",
        default=[],
        help='SCRIPT=ARGUMENTS, e.g. "http_bench=--duration 5"',
    )
    args = parser.parse_args()
    extra = {}
    for item in args.args:
        script, _, rest = item.partition("=")
        extra[script] = rest.split()
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="bench-base-") as tmp:
        base = Path(tmp) / "tree"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "-q", str(base), args.base], cwd=ROOT, check=True
        )
        try:
            for script in args.benchmarks.split(","):
                for turn in range(1, args.turns + 1):
                    runs = [(f"base {args.base}", base, True), (f"head {head}", ROOT, True)]
                    if not args.no_reference:
                        runs.append((f"head {head}, ENGINE_FAST=0", ROOT, False))
                    for label, tree, fast in runs:
                        if not (tree / "benchmarks" / f"{script}.py").exists():
                            continue
                        print(f"\n=== {script}, turn {turn}: {label}", flush=True)
                        print(run(tree, script, extra.get(script, []), fast), flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
