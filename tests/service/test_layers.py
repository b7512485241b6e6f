"""The service's folder tree is its architecture: the layers and the pure session domain of
.importlinter (run by tests/engine/test_layers.py and .ci/run), no import cycle, and short
modules named for what they hold."""

from __future__ import annotations

import pathlib

import grimp

from tests.engine.test_layers import MAX_LINES, _cycles

ROOT = pathlib.Path(__file__).resolve().parents[2]
SERVICE = ROOT / "service"
# Modules that are data, not logic, exempt from the line budget.
DATA_TABLES = {
    "service/examples/programs.py",  # the OpenAPI examples of the program endpoints
    "service/problems/catalogue.py",  # one entry per problem type, each a paragraph
}


def test_no_import_cycle_inside_the_service():
    graph = grimp.build_graph("service")
    assert _cycles(graph, "service") == []


def test_every_service_module_fits_the_line_budget():
    long = {
        str(path.relative_to(ROOT)): n
        for path in sorted(SERVICE.rglob("*.py"))
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
        and str(path.relative_to(ROOT)) not in DATA_TABLES
    }
    assert long == {}


def test_the_data_tables_exist_and_are_long():
    """An exemption for a module that has shrunk or moved is a stale one."""
    for name in DATA_TABLES:
        assert len((ROOT / name).read_text(encoding="utf-8").splitlines()) > MAX_LINES, name
