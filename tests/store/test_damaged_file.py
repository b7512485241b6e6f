"""A damaged SQLite file is refused at start, with a clear line and a non-zero exit, however
many workers were asked for: once the server started on scribbled pages, said it was ready,
answered every call 500 "database disk image is malformed", and with --workers 2 a failed
start exited 0, so no restart policy reacted (#12)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from service.store.factory import SQLITE_FILENAME
from service.store.sqlite_schema import damage
from service.store.sqlite_store import PAGE_SIZE, SQLiteStore
from tests.service.conftest import REPO, free_port


def _scribbled(directory: Path) -> Path:
    """A store file whose b-tree pages past the first carry random bytes."""
    path = directory / SQLITE_FILENAME
    SQLiteStore(path).close()
    data = bytearray(path.read_bytes())
    for start in range(PAGE_SIZE, len(data), PAGE_SIZE):
        data[start : start + 200] = os.urandom(200)
    path.write_bytes(bytes(data))
    return path


def test_quick_check_finds_scribbled_pages_and_passes_a_sound_file(tmp_path):
    assert damage(tmp_path / "none.sqlite3") is None  # no file yet: a new store
    sound = tmp_path / "sound"
    sound.mkdir()
    SQLiteStore(sound / SQLITE_FILENAME).close()
    assert damage(sound / SQLITE_FILENAME) is None
    assert "btreeInitPage" in damage(_scribbled(tmp_path))
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"not a database " * 100)
    assert damage(garbage) == "file is not a database"


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_refuses_a_damaged_store_and_exits_non_zero(tmp_path, workers):
    path = _scribbled(tmp_path)
    before = path.read_bytes()
    env = {**os.environ, "AUTOGRAD_DATA_DIR": str(tmp_path), "AUTOGRAD_STORE": "sqlite"}
    command = [sys.executable, "-m", "service", "serve", "--port", str(free_port()),
               "--workers", str(workers)]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr[-2000:]
    assert f"the session store {path} is damaged" in done.stderr
    assert "btreeInitPage" in done.stderr
    assert path.read_bytes() == before  # left as it was, for its owner
