"""engine/ is numpy only: no web framework, no validation library, no other autograd.

Checked twice: statically (every module under engine/ parsed with ast, every import and
`importlib.import_module("...")` / `__import__("...")` with a literal name), and dynamically
(`import engine` in a fresh interpreter, then sys.modules)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import engine

FORBIDDEN = ("fastapi", "pydantic", "pydantic_settings", "starlette", "torch", "jax", "uvicorn")
ENGINE_DIR = Path(engine.__file__).resolve().parent
MODULES = sorted(ENGINE_DIR.rglob("*.py"))


def _imported_names(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                yield node.lineno, node.module
        elif isinstance(node, ast.Call):
            fn = node.func
            name = getattr(fn, "attr", None) or getattr(fn, "id", None)
            if (
                name in ("import_module", "__import__")
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                yield node.lineno, node.args[0].value


def _forbidden(module: str) -> bool:
    return module.split(".")[0] in FORBIDDEN


def test_engine_has_modules_to_check():
    assert ENGINE_DIR.name == "engine" and len(MODULES) > 10


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(ENGINE_DIR)) for p in MODULES])
def test_no_forbidden_import_in_source(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bad = [f"line {line}: {name}" for line, name in _imported_names(tree) if _forbidden(name)]
    assert not bad, f"{path.relative_to(ENGINE_DIR.parent)} imports {bad}"


def test_the_checker_catches_forbidden_imports():
    src = (
        "import torch\nfrom fastapi import FastAPI\nimport pydantic.v1 as p\n"
        "import importlib\nimportlib.import_module('jax.numpy')\nfrom . import torchish\n"
    )
    found = [name for _, name in _imported_names(ast.parse(src)) if _forbidden(name)]
    assert found == ["torch", "fastapi", "pydantic.v1", "jax.numpy"]


def test_importing_engine_loads_none_of_them():
    code = (
        "import json, sys\n"
        "import engine, engine.autograd.functional, engine.nn.functional\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    root = ENGINE_DIR.parent
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    ).stdout
    loaded = [m for m in json.loads(out) if _forbidden(m)]
    assert not loaded, f"import engine loaded {loaded}"
