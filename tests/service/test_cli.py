"""The console script's arguments reach uvicorn; `python -m service` is the same program."""

import json
import subprocess
import sys

import pytest
import uvicorn

from service import cli
from service.http import logs
from service.settings import Settings

from .conftest import REPO


@pytest.fixture
def uvicorn_calls(monkeypatch, tmp_path):
    """Record uvicorn.run (or, for several workers, the supervisor run in its place) instead
    of serving: the real server is exercised by test_e2e. The store is checked at start, so
    it is a temporary directory's."""
    calls = []

    def record(*args, **kwargs):
        calls.append((args, kwargs))
        return 0

    monkeypatch.setattr(uvicorn, "run", record)
    monkeypatch.setattr(cli, "run_workers", record)
    monkeypatch.setenv("AUTOGRAD_DATA_DIR", str(tmp_path / "data"))
    return calls


def test_serve_defaults_to_localhost_8000_with_the_factory(uvicorn_calls, monkeypatch):
    for name in ("AUTOGRAD_HOST", "AUTOGRAD_PORT", "AUTOGRAD_WORKERS", "AUTOGRAD_LOG_LEVEL",
                 "AUTOGRAD_LOG_FORMAT"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    assert cli.main(["serve"]) == 0
    assert uvicorn_calls == [
        (
            ("service.app:create_app",),
            {
                "factory": True,
                "host": "127.0.0.1",
                "port": 8000,
                "workers": 1,
                "log_level": "info",
                "log_config": logs.config(Settings()),
                "access_log": False,
            },
        )
    ]


def test_serve_flags_override_the_environment(uvicorn_calls, monkeypatch):
    monkeypatch.setenv("AUTOGRAD_PORT", "9001")
    monkeypatch.setenv("AUTOGRAD_WORKERS", "2")
    cli.main(["serve", "--host", "0.0.0.0"])
    cli.main(["serve", "--port", "9002", "--workers", "4"])
    picked = [(kw["host"], kw["port"], kw["workers"]) for _, kw in uvicorn_calls]
    assert picked == [("0.0.0.0", 9001, 2), ("127.0.0.1", 9002, 4)]


def test_a_command_is_required(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main([])
    assert info.value.code == 2
    assert "serve" in capsys.readouterr().err


def test_python_dash_m_service_prints_the_spec():
    result = subprocess.run(
        [sys.executable, "-m", "service", "openapi", "--output", "-"],
        cwd=REPO,
        capture_output=True,
        check=True,
        text=True,
    )
    spec = json.loads(result.stdout)
    assert spec["info"]["title"] == "Autograd Service"
    assert result.stdout == (REPO / "openapi" / "openapi.json").read_text(encoding="utf-8")
