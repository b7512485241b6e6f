"""The SQLite store's caps: the whole store's (sessions, bytes) and each owner's, counted
inside the write transaction that would exceed them, so they hold across every process
sharing the file. Only live sessions count (an expired one waiting for the sweep does not).

A refusal says how long waiting would take: until the earliest of the sessions it counted
expires, unless the write alone is over the cap (then waiting cannot help: None).
"""

import sqlite3

from service.store.base import until_expiry
from service.store.errors import QuotaExceeded
from service.store.protocol import StoreLimits
from service.store.records import SessionHeader

_TOTALS = "SELECT count(*), coalesce(sum(stored_bytes), 0), min(last_used_at) FROM sessions"


def live_totals(conn: sqlite3.Connection, cutoff: float) -> tuple[int, int, float | None]:
    """Live sessions in the store: their number, bytes and the oldest last use."""
    return conn.execute(_TOTALS + " WHERE last_used_at > ?", (cutoff,)).fetchone()


def owner_totals(
    conn: sqlite3.Connection, owner: str, cutoff: float
) -> tuple[int, int, float | None]:
    """The same for one owner's live sessions (the `sessions_by_owner` index)."""
    return conn.execute(
        _TOTALS + " WHERE owner = ? AND last_used_at > ?", (owner, cutoff)
    ).fetchone()


def check_create(
    conn: sqlite3.Connection, limits: StoreLimits, header: SessionHeader, now: float
) -> None:
    """A new session: its owner's caps first (the refusal that names the client), then the
    store's."""
    cutoff = now - limits.session_ttl_seconds
    size = header.stored_bytes
    caps = limits.caps(header.owner)
    if caps is not None:
        count, used, oldest = owner_totals(conn, header.owner, cutoff)
        wait = until_expiry(oldest, limits, now)
        if caps.max_sessions and count + 1 > caps.max_sessions:
            raise QuotaExceeded(
                "max_client_sessions", caps.max_sessions, count + 1, wait, header.owner
            )
        _check_client_bytes(caps.max_bytes, used + size, size, wait, header.owner)
    count, used, oldest = live_totals(conn, cutoff)
    wait = until_expiry(oldest, limits, now)
    if count + 1 > limits.max_sessions:
        raise QuotaExceeded("max_sessions", limits.max_sessions, count + 1, wait)
    _check_store_bytes(limits.max_store_bytes, used + size, size, wait)


def check_growth(
    conn: sqlite3.Connection, limits: StoreLimits, header: SessionHeader, delta: int, now: float
) -> None:
    """A commit that changes the session's size by `delta` to `header.stored_bytes`; only
    growth is refused (shrinking, or rewriting at the same size, always passes)."""
    if delta <= 0:
        return
    cutoff = now - limits.session_ttl_seconds
    size = header.stored_bytes
    caps = limits.caps(header.owner)
    if caps is not None and caps.max_bytes:
        _, used, oldest = owner_totals(conn, header.owner, cutoff)
        wait = until_expiry(oldest, limits, now)
        _check_client_bytes(caps.max_bytes, used + delta, size, wait, header.owner)
    _, used, oldest = live_totals(conn, cutoff)
    _check_store_bytes(
        limits.max_store_bytes, used + delta, size, until_expiry(oldest, limits, now)
    )


def _check_client_bytes(
    maximum: int, total: int, size: int, wait: float | None, owner: str
) -> None:
    if maximum and total > maximum:
        alone = size > maximum  # the session by itself: no wait makes room for it
        raise QuotaExceeded("max_client_bytes", maximum, total, None if alone else wait, owner)


def _check_store_bytes(maximum: int, total: int, size: int, wait: float | None) -> None:
    if total > maximum:
        raise QuotaExceeded("max_store_bytes", maximum, total, None if size > maximum else wait)
