"""Sessions in one SQLite file: embedded, durable, shared by several worker processes.

Concurrency: WAL mode lets readers run beside the one writer; every commit takes the write
lock up front (BEGIN IMMEDIATE) and re-checks the version inside it, so two processes
committing against one version cannot both win. Each thread has its own connection, and
`busy_timeout` makes a writer wait for the lock instead of failing.

Writers queue on a lock of their own before BEGIN IMMEDIATE (writer_turn.py says why).

Durability: with WAL, a COMMIT has written its frames to the WAL file before it returns.
`synchronous=NORMAL` skips the fsync, so an acknowledged commit survives `kill -9` of the
server (the OS still holds the data) but the last ones may be lost on power failure or an OS
crash; `FULL` fsyncs each commit and survives those too, at a few ms per step.
"""

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Literal

import numpy as np

from service.store.base import MetaCache, stale_error, wall_clock
from service.store.errors import (
    KeyReused,
    SessionExists,
    SessionNotFound,
    StorageFault,
    StoreError,
    VersionConflict,
)
from service.store.faults import PROBE_BYTES, Faults, low_space, store_error
from service.store.plan import Plan, plan_commit, plan_create
from service.store.protocol import Clock, StoreLimits
from service.store.records import (
    ArrayInfo,
    ArrayKey,
    Changes,
    SessionHeader,
    SessionMeta,
    SessionRecord,
    StoredResponse,
    decode_array,
)
from service.store.sqlite_quota import check_create, check_growth, live_totals
from service.store.sqlite_schema import (
    DELETE_ARRAY,
    INDEXES,
    INSERT_ARRAY,
    INSERT_PROBE,
    INSERT_RESPONSE,
    INSERT_SESSION,
    MIGRATIONS,
    SCHEMA,
    SCHEMA_VERSION,
    SELECT_DATA,
    SELECT_INDEX,
    SELECT_ONE,
    SELECT_RESPONSE,
    SELECT_SESSION,
    UPDATE_SESSION,
    array_values,
    header_from_row,
    meta_from_rows,
    response_from_row,
    response_values,
    session_values,
)
from service.store.writer_turn import WriterTurn

BUSY_TIMEOUT_SECONDS = 30.0  # a commit of a large session can hold the write lock a while
# Rows are mostly large blobs: 64 KiB pages make short overflow chains (a 4 MB step is 65
# pages, not 1000). Takes effect only when the file is created.
PAGE_SIZE = 65536
# A checkpoint copies the WAL into the database and fsyncs it; at SQLite's default (1000
# pages) every large step would pay for one. Checkpoint once per ~64 MB of WAL instead.
WAL_CHECKPOINT_BYTES = 64 * 1024 * 1024


class SQLiteStore:
    def __init__(
        self,
        path: Path | str,
        limits: StoreLimits | None = None,
        clock: Clock = wall_clock,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
    ) -> None:
        self.path = str(path)
        self.limits = limits or StoreLimits()
        self.clock = clock
        self._metas = MetaCache()
        self._faults = Faults()
        self._synchronous = synchronous
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        # ":memory:" is one database per connection, so that mode shares one connection
        # between threads and serialises them; a file has a connection per thread.
        self._memory = self.path == ":memory:"
        self._shared = self._connect() if self._memory else None
        self._serial = threading.RLock() if self._memory else nullcontext()
        self._writer = WriterTurn(None if self._memory else self.path)
        self._create_schema()

    # -- connections and transactions --

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: the module opens no implicit transactions; ours are explicit.
        conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
        )
        if not self._memory:
            conn.execute(f"PRAGMA page_size={PAGE_SIZE}")  # before WAL: not changeable after
            conn.execute("PRAGMA journal_mode=WAL")
            pages = WAL_CHECKPOINT_BYTES // conn.execute("PRAGMA page_size").fetchone()[0]
            conn.execute(f"PRAGMA wal_autocheckpoint={pages}")
            conn.execute(f"PRAGMA journal_size_limit={WAL_CHECKPOINT_BYTES}")
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")  # arrays and answers go with their session
        with self._connections_lock:
            self._connections.append(conn)
        return conn

    def _conn(self) -> sqlite3.Connection:
        if self._shared is not None:
            return self._shared
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    @contextmanager
    def _tx(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """Every statement runs in one of these: sqlite3's failures leave it as the store's
        own StorageFault (kept for the readiness probe) or StoreUnavailable."""
        try:
            with self._serial, self._writer.held() if write else nullcontext():
                conn = self._conn()
                # A read transaction sees one snapshot; a write takes the lock before reading.
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield conn
                    conn.execute("COMMIT")  # where a full disk shows: the WAL grows here
                except BaseException:
                    # SQLite has rolled back already after SQLITE_FULL or an I/O error: a
                    # ROLLBACK then fails, and would hide the error that matters.
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
        except (sqlite3.DatabaseError, OSError) as exc:
            error = store_error(exc)
            if isinstance(error, StorageFault):
                self._faults.note(error)
            if error is exc:
                raise
            raise error from exc

    def _create_schema(self) -> None:
        with self._tx(write=True) as conn:
            for statement in SCHEMA:
                conn.execute(statement)
            row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
            if row[0] is None:
                conn.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
            elif row[0] > SCHEMA_VERSION:
                raise StoreError(f"{self.path} has schema {row[0]}, newer than this code's")
            elif row[0] < SCHEMA_VERSION:  # a file an older version wrote: bring it up to date
                for version in range(row[0], SCHEMA_VERSION):
                    for statement in MIGRATIONS[version]:
                        conn.execute(statement)
                conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
            for statement in INDEXES:
                conn.execute(statement)

    def _before_commit(self) -> None:
        """Test seam: runs inside a commit's transaction after its writes, before COMMIT."""

    # -- reads --

    def _cutoff(self, now: float) -> float:
        return now - self.limits.session_ttl_seconds

    def _read_meta(self, conn: sqlite3.Connection, session_id: str) -> SessionMeta | None:
        row = conn.execute(
            SELECT_SESSION + " WHERE id = ? AND last_used_at > ?",
            (session_id, self._cutoff(self.clock())),
        ).fetchone()
        if row is None:
            return None
        return meta_from_rows(row, conn.execute(SELECT_INDEX, (session_id,)).fetchall())

    def get_meta(self, session_id: str) -> SessionMeta | None:
        with self._tx() as conn:
            return self._read_meta(conn, session_id)

    def get_header(self, session_id: str) -> SessionHeader | None:
        with self._tx() as conn:
            row = conn.execute(
                SELECT_SESSION + " WHERE id = ? AND last_used_at > ?",
                (session_id, self._cutoff(self.clock())),
            ).fetchone()
        return None if row is None else header_from_row(row)

    def get(self, session_id: str) -> SessionRecord | None:
        with self._tx() as conn:
            meta = self._read_meta(conn, session_id)
            if meta is None:
                return None
            rows = conn.execute(SELECT_DATA, (session_id,)).fetchall()
        fields = {k: v for k, v in vars(meta).items() if k != "arrays"}
        record = SessionRecord(**fields)
        record.set_flat_arrays(
            {(k, n, s): decode_array(meta.arrays[k, n, s], data) for k, n, s, data in rows}
        )
        return record

    def get_arrays(
        self, session_id: str, infos: dict[ArrayKey, ArrayInfo]
    ) -> dict[ArrayKey, np.ndarray]:
        """Some arrays of the session (`infos` from its meta); absent ones are left out."""
        found = {}
        with self._tx() as conn:
            for key in infos:
                row = conn.execute(SELECT_ONE, (session_id, *key)).fetchone()
                if row is not None and len(row[0]) == infos[key].nbytes:
                    found[key] = decode_array(infos[key], row[0])
        return found

    def count(self) -> int:
        with self._tx() as conn:
            return live_totals(conn, self._cutoff(self.clock()))[0]

    def ids(self) -> list[str]:
        with self._tx() as conn:
            rows = conn.execute(
                "SELECT id FROM sessions WHERE last_used_at > ? ORDER BY last_used_at, id",
                (self._cutoff(self.clock()),),
            ).fetchall()
        return [row[0] for row in rows]

    def get_response(self, session_id: str, key: str) -> StoredResponse | None:
        with self._tx() as conn:
            if self._read_meta(conn, session_id) is None:
                return None
            return self._read_response(conn, session_id, key)

    def _read_response(
        self, conn: sqlite3.Connection, session_id: str, key: str
    ) -> StoredResponse | None:
        row = conn.execute(
            SELECT_RESPONSE,
            (session_id, key, self.clock() - self.limits.idempotency_ttl_seconds),
        ).fetchone()
        return None if row is None else response_from_row(row)

    # -- writes --

    def _write_plan(self, conn: sqlite3.Connection, plan: Plan, now: float, new: bool) -> None:
        session_id = plan.header.id
        values = session_values(plan.header, now)
        if new:  # the session row first: the arrays reference it
            conn.execute(INSERT_SESSION, values)
        else:
            conn.execute(UPDATE_SESSION, (*values[1:], session_id))
        if plan.deletes:  # (an empty executemany still costs a statement's preparation)
            conn.executemany(DELETE_ARRAY, [(session_id, *key) for key in plan.deletes])
        rows = [array_values(session_id, key, *value) for key, value in plan.writes.items()]
        if len(rows) == 1:  # a journal entry
            conn.execute(INSERT_ARRAY, rows[0])
        elif rows:
            conn.executemany(INSERT_ARRAY, rows)

    def create(self, record: SessionRecord) -> int:
        plan = plan_create(record, self.limits)  # encodes the arrays outside the write lock
        now = self.clock()
        with self._tx(write=True) as conn:
            self._sweep(conn, now)
            if conn.execute("SELECT 1 FROM sessions WHERE id = ?", (record.id,)).fetchone():
                raise SessionExists(record.id)
            check_create(conn, self.limits, plan.header, now)  # the store's and the owner's
            plan.header.created_at = now
            self._write_plan(conn, plan, now, new=True)
        self._faults.clear()
        return 0

    def commit(
        self,
        session_id: str,
        expected_version: int,
        changes: Changes,
        base: SessionRecord | None = None,  # what the changes were computed on: not needed
    ) -> int:
        meta = self._metas.get(session_id, expected_version) or self.get_meta(session_id)
        if meta is None:
            raise SessionNotFound(session_id)
        if meta.version != expected_version:  # fail fast, before encoding anything
            raise stale_error(self, meta, expected_version, changes)
        plan = plan_commit(meta, changes, self.limits)
        now = self.clock()
        with self._tx(write=True) as conn:
            row = conn.execute(
                "SELECT version FROM sessions WHERE id = ? AND last_used_at > ?",
                (session_id, self._cutoff(now)),
            ).fetchone()
            if row is None:
                raise SessionNotFound(session_id)
            if changes.response is not None:  # a retry is told so, whatever the version
                used = self._read_response(conn, session_id, changes.response.key)
                if used is not None:
                    raise KeyReused(used)
            if row[0] != expected_version:  # the plan was made against another version
                self._metas.drop(session_id)
                raise VersionConflict(session_id, expected_version, row[0])
            check_growth(
                conn, self.limits, plan.header, plan.header.stored_bytes - meta.stored_bytes, now
            )
            self._write_plan(conn, plan, now, new=False)
            if changes.response is not None:
                conn.execute(INSERT_RESPONSE, response_values(session_id, changes.response, now))
            self._before_commit()
        self._faults.clear()
        self._metas.put(plan.header, plan.arrays)
        return plan.header.version

    def save_response(self, session_id: str, response: StoredResponse) -> StoredResponse:
        now = self.clock()
        with self._tx(write=True) as conn:
            if self._read_meta(conn, session_id) is None:
                raise SessionNotFound(session_id)
            used = self._read_response(conn, session_id, response.key)
            if used is not None:
                return used
            conn.execute(INSERT_RESPONSE, response_values(session_id, response, now))
        return StoredResponse(**{**vars(response), "created_at": now})

    def touch(self, session_id: str) -> bool:
        now = self.clock()
        with self._tx(write=True) as conn:
            cursor = conn.execute(
                "UPDATE sessions SET last_used_at = ? WHERE id = ? AND last_used_at > ?",
                (now, session_id, self._cutoff(now)),
            )
            return cursor.rowcount > 0

    def delete(self, session_id: str) -> bool:
        self._metas.drop(session_id)
        with self._tx(write=True) as conn:
            live = self._read_meta(conn, session_id) is not None
            conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
        return live

    def _sweep(self, conn: sqlite3.Connection, now: float) -> int:
        cursor = conn.execute("DELETE FROM sessions WHERE last_used_at <= ?", (self._cutoff(now),))
        conn.execute(
            "DELETE FROM responses WHERE created_at <= ?",
            (now - self.limits.idempotency_ttl_seconds,),
        )
        return cursor.rowcount

    def expire(self) -> int:
        with self._tx(write=True) as conn:
            return self._sweep(conn, self.clock())

    def storage_fault(self) -> str | None:
        space = None if self._memory else low_space(Path(self.path).parent)
        return self._faults.check(self._probe) or space

    def _probe(self) -> None:
        """Room for PROBE_BYTES more, or the fault: new pages are taken, then freed."""
        with self._tx(write=True) as conn:
            conn.execute(INSERT_PROBE, (PROBE_BYTES,))
            conn.execute("DELETE FROM write_probe")

    def lock(self, session_id: str) -> AbstractContextManager[object]:
        return nullcontext()  # keeps nothing between calls: the commit's version check suffices

    def forget(self, session_id: str) -> None:
        pass  # keeps nothing

    def close(self) -> None:
        with self._connections_lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._writer.close()
