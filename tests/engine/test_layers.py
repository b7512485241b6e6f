"""The engine's modules import one way: the layers written down in engine/__init__.py, checked
by import-linter's contracts (.importlinter), no import cycle, and no import tucked inside a
function to dodge one."""

from __future__ import annotations

import ast
import os
import pathlib
import subprocess
import sys

import grimp

ROOT = pathlib.Path(__file__).resolve().parents[2]
ENGINE = ROOT / "engine"


def test_the_import_contracts_hold():
    """`lint-imports`, with this checkout's engine first on the path."""
    code = (
        "import sys; from importlinter.cli import lint_imports; "
        f"sys.exit(lint_imports(config_filename={str(ROOT / '.importlinter')!r}))"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "BROKEN" not in out and out.count(" KEPT") >= 4, out  # engine x2, service x2


def _cycles(graph, package):
    """The strongly connected components (more than one module) of package's imports."""
    modules = sorted(m for m in graph.modules if m == package or m.startswith(package + "."))
    index, low, stack, on, found = {}, {}, [], set(), []
    for start in modules:
        if start in index:
            continue
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            w = next((w for w in it if w in modules), None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.find_modules_directly_imported_by(w)))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_no_import_cycle_inside_the_engine():
    graph = grimp.build_graph("engine")
    assert _cycles(graph, "engine") == []


def test_the_cycle_finder_finds_one():
    graph = grimp.ImportGraph()
    for m in ("p", "p.a", "p.b", "p.c"):
        graph.add_module(m)
    graph.add_import(importer="p.a", imported="p.b")
    graph.add_import(importer="p.b", imported="p.a")
    graph.add_import(importer="p.c", imported="p.a")
    assert _cycles(graph, "p") == [["p.a", "p.b"]]


def _local_imports(path):
    """Import statements inside a function or class body of the module at path."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for sub in ast.walk(node):
                if isinstance(sub, (ast.Import, ast.ImportFrom)):
                    found.append(f"{path.relative_to(ROOT)}:{sub.lineno}")
    return found


def test_no_function_local_imports_in_the_engine():
    found = [hit for path in sorted(ENGINE.rglob("*.py")) for hit in _local_imports(path)]
    assert found == []


MAX_LINES = 400
DATA_TABLES: set[str] = set()  # modules that are only data, exempt from the budget (none yet)


def test_every_engine_module_fits_the_line_budget():
    long = {
        str(path.relative_to(ROOT)): n
        for path in sorted(ENGINE.rglob("*.py"))
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
        and str(path.relative_to(ROOT)) not in DATA_TABLES
    }
    assert long == {}
