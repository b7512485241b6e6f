import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from service.settings import MiB, Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("AUTOGRAD_"):
            monkeypatch.delenv(name)


def test_defaults_serve_locally_with_a_16_mib_body_limit():
    s = Settings()
    assert (s.host, s.port, s.workers) == ("127.0.0.1", 8000, 1)
    assert s.max_body_bytes == 16 * MiB == 16_777_216
    assert s.store == "sqlite"
    assert s.data_dir == Path("data")
    assert s.max_tensor_elements <= s.max_total_elements


def test_every_field_is_read_from_its_autograd_variable(monkeypatch, tmp_path):
    env = {
        "AUTOGRAD_HOST": "0.0.0.0",
        "AUTOGRAD_PORT": "9123",
        "AUTOGRAD_WORKERS": "3",
        "AUTOGRAD_MAX_BODY_BYTES": "1024",
        "AUTOGRAD_MAX_NODES": "7",
        "AUTOGRAD_MAX_TENSOR_ELEMENTS": "100",
        "AUTOGRAD_MAX_TOTAL_ELEMENTS": "1000",
        "AUTOGRAD_MAX_FLOPS": "5000",
        "AUTOGRAD_DATA_DIR": str(tmp_path),
        "AUTOGRAD_STORE": "memory",
        "AUTOGRAD_SESSION_TTL_SECONDS": "2.5",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    s = Settings()
    assert (s.host, s.port, s.workers) == ("0.0.0.0", 9123, 3)
    assert (s.max_body_bytes, s.max_nodes) == (1024, 7)
    assert (s.max_tensor_elements, s.max_total_elements, s.max_flops) == (100, 1000, 5000)
    assert s.data_dir == tmp_path
    assert s.store == "memory"
    assert s.session_ttl_seconds == 2.5


def test_unprefixed_variables_are_ignored(monkeypatch):
    monkeypatch.setenv("PORT", "1")
    assert Settings().port == 8000


@pytest.mark.parametrize(
    ("name", "value"),
    [("AUTOGRAD_PORT", "70000"), ("AUTOGRAD_STORE", "mongo"), ("AUTOGRAD_WORKERS", "0")],
)
def test_invalid_values_fail_at_startup(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as info:
        Settings()
    assert info.value.errors()[0]["loc"] == (name.removeprefix("AUTOGRAD_").lower(),)


def test_every_field_is_documented():
    undocumented = [n for n, f in Settings.model_fields.items() if not f.description]
    assert undocumented == []
