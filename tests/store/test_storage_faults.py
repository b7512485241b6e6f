"""A store whose storage fails says so, with the real failure and no mock: a full SQLite file
(SQLite's own SQLITE_FULL, from `PRAGMA max_page_count`), an I/O error (SQLITE_IOERR_WRITE,
from a file-size limit), scribbled pages at run time. Each write that fails is a
StorageFault that leaves the session exactly as it was; the readiness probe reports it until
a write succeeds again. Once a full disk answered 503 "not answering, retry shortly" while
/readyz stayed ready, and scribbled pages answered every call 500 (#12)."""

from __future__ import annotations

import os
import resource
import signal
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.metrics import TimedStore
from service.sessions.live import LiveStore
from service.settings import Settings
from service.store import Changes, StorageFault, StoreUnavailable
from service.store.factory import SQLITE_FILENAME, limits_from, sqlite_path
from service.store.sqlite_store import PAGE_SIZE, SQLiteStore
from tests.store.test_store import record, same

FULL = "full: database or disk is full"
SQLITE_MAX_PAGES = 4294967294  # SQLite's own default cap: far beyond any test


class CappedStore(SQLiteStore):
    """A SQLite store whose file can be kept from growing: `PRAGMA max_page_count` on every
    connection (SQLite scopes it to one), so that a write needing a new page fails with
    SQLITE_FULL, as on a full disk, while pages freed by a delete can be used again."""

    max_pages = SQLITE_MAX_PAGES

    def _connect(self):
        conn = super()._connect()
        conn.execute(f"PRAGMA max_page_count={self.max_pages}")
        return conn

    def cap(self, pages: int | None = None) -> None:
        """No page beyond `pages` (default: those the file has now); None lifts the cap."""
        if pages is None:
            pages = self._conn().execute("PRAGMA page_count").fetchone()[0]
        self.max_pages = pages
        for conn in list(self._connections):
            conn.execute(f"PRAGMA max_page_count={pages}")

    def uncap(self) -> None:
        self.cap(SQLITE_MAX_PAGES)


def megabytes(n: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(int(n * (1 << 18))).astype(np.float32)


def test_a_full_file_refuses_a_commit_and_leaves_the_session_as_it_was(tmp_path):
    store = CappedStore(tmp_path / SQLITE_FILENAME)
    store.create(record("s1"))
    store.create(record("filler", w=megabytes(4)))
    before = store.get("s1")
    store.cap()
    assert store.storage_fault() is None  # nothing failed yet

    for _ in range(2):  # the failed transaction ended cleanly: the next write fails the same way
        with pytest.raises(StorageFault) as info:
            store.commit("s1", 0, Changes(parameters={"w": megabytes(2)}))
        assert (info.value.kind, info.value.reason) == ("full", FULL)
        assert isinstance(info.value, StoreUnavailable)  # what every caller already handles

    after = store.get("s1")
    assert after.version == 0 and same(after.parameters["w"], before.parameters["w"])
    assert store.storage_fault() == FULL  # the probe's own write finds no room either

    assert store.delete("filler")  # frees 4 MiB of pages inside the capped file
    assert store.storage_fault() is None  # the probe's write fits again
    assert store.commit("s1", 0, Changes(parameters={"w": megabytes(2)})) == 1
    assert same(store.get("s1").parameters["w"], megabytes(2))
    store.close()


@contextmanager
def file_size_limit(nbytes: int):
    """This process may not write past `nbytes` into any file (RLIMIT_FSIZE): the kernel
    answers EFBIG, which SQLite reports as SQLITE_IOERR_WRITE. SIGXFSZ, which would kill
    the process, is ignored meanwhile."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def test_an_io_error_is_a_fault_until_a_write_succeeds(tmp_path):
    path = tmp_path / SQLITE_FILENAME
    store = SQLiteStore(path)
    store.create(record("s1"))
    before = store.get("s1")
    longest = max(os.path.getsize(f"{path}{end}") for end in ("", "-wal"))
    with file_size_limit(longest):
        with pytest.raises(StorageFault) as info:
            store.commit("s1", 0, Changes(parameters={"w": megabytes(1)}))
        fault = store.storage_fault()
    assert (info.value.kind, info.value.reason) == ("io", "io: disk I/O error")
    assert fault == "io: disk I/O error"
    after = store.get("s1")
    assert after.version == 0 and same(after.parameters["w"], before.parameters["w"])
    assert store.storage_fault() is None  # the limit is gone: the probe's write succeeds
    assert store.commit("s1", 0, Changes(parameters={"w": megabytes(1)})) == 1
    store.close()


# -- over HTTP ----------------------------------------------------------------------------------

W_SHAPE = (256, 256)  # 256 KiB: its gradient and Adam's two buffers need 12 new 64 KiB pages


def session_body(w: np.ndarray) -> dict:
    from tests.sessions.helpers import tensor

    return {
        "parameters": {"W": tensor(w)},
        "optimizer": {"type": "adam", "lr": 0.01},
        "expr": "loss = mean(matmul(x, W) * matmul(x, W))",
        "loss": "loss",
    }


def train_body() -> dict:
    from tests.sessions.helpers import tensor

    return {"inputs": {"x": tensor(np.ones((2, W_SHAPE[0]), dtype=np.float32))}}


def create(client: TestClient, w: np.ndarray):
    return client.post("/v1/sessions", json=session_body(w))


def storage_problem(response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "retry-after" not in response.headers  # not a blip: no "retry shortly"
    body = response.json()
    assert (body["type"], body["status"]) == (f"/problems/{slug}", status)
    return body


def test_a_full_store_answers_507_is_not_ready_and_recovers_when_space_is_freed(tmp_path):
    # Every commit stores the whole state (no journal), so a step needs new pages.
    settings = Settings(data_dir=tmp_path / "data", journal_max_entries=0)
    with TestClient(create_app(settings)) as client:
        capped = CappedStore(sqlite_path(settings), limits_from(settings))
        opened, client.app.state.store = (
            client.app.state.store,
            LiveStore(TimedStore(capped), settings),
        )
        opened.close()
        filler = create(client, megabytes(4).reshape(1024, 1024)).json()
        made = create(client, megabytes(0.25, seed=1).reshape(W_SHAPE)).json()
        auth = {"Authorization": f"Bearer {made['token']}"}
        url = f"/v1/sessions/{made['id']}"
        state = client.get(f"{url}/state?format=json", headers=auth).json()
        capped.cap()

        body = storage_problem(client.post(f"{url}/train", json=train_body(), headers=auth),
                               507, "storage-full")  # fmt: skip
        assert body["reason"] == FULL
        assert body["title"] == "Session storage full"
        created = storage_problem(create(client, megabytes(2).reshape(512, 1024)), 507,
                                  "storage-full")  # fmt: skip
        assert created["reason"] == FULL

        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["store"] == FULL
        read = client.get(url, headers=auth)  # the session reads as it was
        assert (read.status_code, read.headers["etag"], read.json()["step_count"]) == (
            200,
            '"0"',
            0,
        )
        assert client.get(f"{url}/state?format=json", headers=auth).json() == state

        gone = client.delete(f"/v1/sessions/{filler['id']}",
                             headers={"Authorization": f"Bearer {filler['token']}"})  # fmt: skip
        assert gone.status_code == 204  # a delete needs no new page: it frees 4 MiB of them
        assert client.get("/readyz").status_code == 200
        trained = client.post(f"{url}/train", json=train_body(), headers=auth)
        assert trained.status_code == 200, trained.text
        assert trained.headers["etag"] == '"1"'


def _break_overflow_chain(path: Path, inside: bytes) -> None:
    """Point the overflow page holding `inside` (part of a stored array) past the end of
    the file, as a scribbled page would: reading that array is then SQLITE_CORRUPT, while
    the schema and the session's row still read, as in a file damaged while served."""
    data = bytearray(path.read_bytes())
    page = data.index(inside) // PAGE_SIZE
    assert page > 1  # an overflow page, not the schema's
    data[page * PAGE_SIZE : page * PAGE_SIZE + 4] = b"\xff\xff\xff\xff"
    path.write_bytes(bytes(data))


def test_pages_damaged_while_serving_are_a_clear_problem_and_not_ready(tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    w = megabytes(0.25).reshape(W_SHAPE)
    with TestClient(create_app(settings)) as client:
        made = create(client, w).json()
    # Closed above, so the WAL is in the file. `serve` would refuse the damaged file at
    # start; a server that was running when the page broke meets it as this app does.
    _break_overflow_chain(sqlite_path(settings), w.tobytes()[100_000:100_064])
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        assert client.get("/readyz").status_code == 200  # nothing has read that page yet
        auth = {"Authorization": f"Bearer {made['token']}"}
        for _ in range(2):
            answer = client.get(f"/v1/sessions/{made['id']}/state", headers=auth)
            body = storage_problem(answer, 503, "storage-failed")
            assert body["reason"] == "damaged: database disk image is malformed"
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["store"] == "damaged: database disk image is malformed"
        assert client.post("/v1/sessions", json=session_body(w)).status_code == 201
        assert client.get("/readyz").status_code == 503  # a damaged file stays not ready
