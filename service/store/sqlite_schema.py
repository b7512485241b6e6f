"""The SQLite store's tables, and conversions between their rows and the records.

Array data is the last column of `arrays` so that reading only the index (dtype, shape,
size) never touches the blob's overflow pages: `get_meta` stays cheap for large sessions.
"""

import json
import sqlite3
from pathlib import Path
from typing import Any

from service.store.records import ArrayInfo, SessionHeader, SessionMeta, StoredResponse, dumps

SCHEMA_VERSION = 2  # bump with an entry of MIGRATIONS

# Statements that bring a file of schema version v to v + 1. Columns are only ever added at
# the end, with a default, so an old row reads as a new one would (owner "": no owner).
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: ("ALTER TABLE sessions ADD COLUMN owner TEXT NOT NULL DEFAULT ''",),
}

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
    """CREATE TABLE IF NOT EXISTS sessions (
        id TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL,
        version INTEGER NOT NULL,
        step_count INTEGER NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        last_used_at REAL NOT NULL,
        program TEXT NOT NULL,
        optimizer TEXT NOT NULL,
        requires_grad TEXT NOT NULL,
        stored_bytes INTEGER NOT NULL,
        owner TEXT NOT NULL DEFAULT ''
    )""",
    "CREATE INDEX IF NOT EXISTS sessions_by_last_use ON sessions (last_used_at)",
    """CREATE TABLE IF NOT EXISTS arrays (
        session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        slot TEXT NOT NULL,
        dtype TEXT NOT NULL,
        shape TEXT NOT NULL,
        nbytes INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (session_id, kind, name, slot)
    )""",
    """CREATE TABLE IF NOT EXISTS responses (
        session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        status INTEGER NOT NULL,
        headers TEXT NOT NULL,
        body BLOB NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (session_id, key)
    )""",
    "CREATE INDEX IF NOT EXISTS responses_by_age ON responses (created_at)",
    # Written and emptied by the readiness probe after a write failed for lack of room: a
    # file that predates it gains it at start, which older code ignores.
    "CREATE TABLE IF NOT EXISTS write_probe (data BLOB NOT NULL)",
)
# After the migrations: they index columns an old file gains only then.
INDEXES = ("CREATE INDEX IF NOT EXISTS sessions_by_owner ON sessions (owner, last_used_at)",)

SESSION_COLUMNS = (
    "id", "token_hash", "version", "step_count", "created_at", "updated_at", "last_used_at",
    "program", "optimizer", "requires_grad", "stored_bytes", "owner",
)  # fmt: skip
SELECT_SESSION = f"SELECT {', '.join(SESSION_COLUMNS)} FROM sessions"
INSERT_SESSION = (
    f"INSERT INTO sessions ({', '.join(SESSION_COLUMNS)})"
    f" VALUES ({', '.join('?' * len(SESSION_COLUMNS))})"
)
# Not INSERT OR REPLACE: replacing deletes the row, and the cascade would take its arrays.
UPDATE_SESSION = (
    f"UPDATE sessions SET {', '.join(f'{c} = ?' for c in SESSION_COLUMNS[1:])} WHERE id = ?"
)
# An upsert, not INSERT OR REPLACE: with foreign keys on, REPLACE deletes and re-inserts with
# the key checks of both, which made a 0.2 MB journal entry's insert 6x slower (0.13 ms
# against 0.02) and a whole-state write 2x.
INSERT_ARRAY = (
    "INSERT INTO arrays VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (session_id, kind, name, slot)"
    " DO UPDATE SET dtype = excluded.dtype, shape = excluded.shape, nbytes = excluded.nbytes,"
    " data = excluded.data"
)
DELETE_ARRAY = "DELETE FROM arrays WHERE session_id = ? AND kind = ? AND name = ? AND slot = ?"
SELECT_INDEX = "SELECT kind, name, slot, dtype, shape, nbytes FROM arrays WHERE session_id = ?"
SELECT_DATA = "SELECT kind, name, slot, data FROM arrays WHERE session_id = ?"
SELECT_ONE = "SELECT data FROM arrays WHERE session_id = ? AND kind = ? AND name = ? AND slot = ?"
# An upsert: an expired answer for the key may linger until the sweep.
INSERT_RESPONSE = (
    "INSERT INTO responses VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (session_id, key) DO UPDATE"
    " SET fingerprint = excluded.fingerprint, status = excluded.status,"
    " headers = excluded.headers, body = excluded.body, created_at = excluded.created_at"
)
INSERT_PROBE = "INSERT INTO write_probe VALUES (zeroblob(?))"
SELECT_RESPONSE = (
    "SELECT key, fingerprint, status, headers, body, created_at FROM responses"
    " WHERE session_id = ? AND key = ? AND created_at > ?"
)


def session_values(header: SessionHeader, now: float) -> tuple[Any, ...]:
    """Values in SESSION_COLUMNS order; a write is a use, so both timestamps become `now`."""
    return (
        header.id, header.token_hash, header.version, header.step_count, header.created_at,
        now, now, dumps(header.program), dumps(header.optimizer), dumps(header.requires_grad),
        header.stored_bytes, header.owner,
    )  # fmt: skip


def header_from_row(row: sqlite3.Row) -> SessionHeader:
    return SessionHeader(**_header_values(row))


def _header_values(row: sqlite3.Row) -> dict[str, Any]:
    values = dict(zip(SESSION_COLUMNS, row, strict=True))
    for column in ("program", "optimizer", "requires_grad"):
        values[column] = json.loads(values[column])
    return values


def meta_from_rows(row: sqlite3.Row, arrays: list[sqlite3.Row]) -> SessionMeta:
    values = _header_values(row)
    index = {
        (kind, name, slot): ArrayInfo(dtype, _shape(shape), nbytes)
        for kind, name, slot, dtype, shape, nbytes in arrays
    }
    return SessionMeta(**values, arrays=index)


def array_values(session_id: str, key: tuple[str, str, str], info: ArrayInfo, data: bytes):
    return (session_id, *key, info.dtype, ",".join(map(str, info.shape)), info.nbytes, data)


def _shape(text: str) -> tuple[int, ...]:
    return tuple(int(n) for n in text.split(",")) if text else ()


def response_values(session_id: str, response: StoredResponse, now: float) -> tuple[Any, ...]:
    headers = json.dumps([list(pair) for pair in response.headers])
    return (session_id, response.key, response.fingerprint, response.status, headers,
            response.body, now)  # fmt: skip


def response_from_row(row: sqlite3.Row) -> StoredResponse:
    key, fingerprint, status, headers, body, created_at = row
    pairs = [(name, value) for name, value in json.loads(headers)]
    return StoredResponse(
        key=key,
        fingerprint=fingerprint,
        status=status,
        headers=pairs,
        body=bytes(body),
        created_at=created_at,
    )


def damage(path: Path | str) -> str | None:
    """What `PRAGMA quick_check` finds wrong with an existing database file (None: nothing,
    or no file yet). Read-only: a damaged file is left as it is, for its owner to inspect."""
    if not Path(path).exists():
        return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
        try:
            rows = [r[0] for r in conn.execute("PRAGMA quick_check(5)")]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:  # not a database at all, or its header is damaged
        return str(exc)
    return None if rows == ["ok"] else "; ".join(" ".join(str(r).split()) for r in rows)
