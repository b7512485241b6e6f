"""The interface the session routes use, whichever backend holds the sessions."""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from service.store.errors import KeyReused, StoreError, VersionConflict
from service.store.records import (
    ArrayInfo,
    ArrayKey,
    Changes,
    SessionHeader,
    SessionMeta,
    SessionRecord,
    StoredResponse,
)

Clock = Callable[[], float]
"""Seconds since the epoch; injected so that tests can move time forward."""

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Caps and expiry times; the field names are the settings' (AUTOGRAD_<NAME>)."""

    max_sessions: int = 1000
    max_session_bytes: int = 256 * MiB
    max_store_bytes: int = 2048 * MiB
    session_ttl_seconds: float = 3600.0
    idempotency_ttl_seconds: float = 86400.0


@runtime_checkable
class SessionStore(Protocol):
    """Sessions with versioned, all-or-nothing commits.

    Guarantees every backend gives: a commit is compare-and-set on `version` and writes all of
    its changes (arrays, header, idempotent answer) or none; an acknowledged commit survives a
    crash of the process that made it; caps are checked before anything is written; a session
    idle for `session_ttl_seconds` and an idempotent answer older than
    `idempotency_ttl_seconds` are gone (reads treat them as absent even before a sweep).
    Several processes may use one store at once, each with its own store object.
    """

    limits: Limits
    clock: Clock

    def create(self, record: SessionRecord) -> int:
        """Store a new session at version 0 and return that version.

        Raises QuotaExceeded (max_sessions, max_session_bytes, max_store_bytes), SessionExists.
        """
        ...

    def get(self, session_id: str) -> SessionRecord | None:
        """The whole session, arrays decoded, as of one version; None if absent or expired."""
        ...

    def get_arrays(
        self, session_id: str, infos: dict[ArrayKey, ArrayInfo]
    ) -> dict[ArrayKey, np.ndarray]:
        """Some of the session's arrays, `infos` taken from its meta; a key the session no
        longer holds (a commit since deleted it) is left out of the answer."""
        ...

    def get_header(self, session_id: str) -> SessionHeader | None:
        """The session's header alone (version, timestamps, ...), without reading its array
        index: what a worker needs to know whether what it kept is current."""
        ...

    def get_meta(self, session_id: str) -> SessionMeta | None:
        """The session without array contents (names, dtypes, shapes, sizes): for auth and
        GET /v1/sessions/{id}. None if absent or expired."""
        ...

    def commit(self, session_id: str, expected_version: int, changes: Changes) -> int:
        """Apply `changes` if the session is still at `expected_version`; return the new one.

        Also marks the session used. Raises VersionConflict, SessionNotFound, QuotaExceeded,
        KeyReused (changes.response's key already answered; nothing written).
        """
        ...

    def touch(self, session_id: str) -> bool:
        """Mark the session used now (restarting its idle time); False if it is gone."""
        ...

    def delete(self, session_id: str) -> bool:
        """Remove the session, its arrays and its idempotent answers; False if it was absent."""
        ...

    def count(self) -> int:
        """Live sessions."""
        ...

    def ids(self) -> list[str]:
        """Ids of the live sessions, least recently used first."""
        ...

    def get_response(self, session_id: str, key: str) -> StoredResponse | None:
        """The answer recorded for this Idempotency-Key, unless it has expired."""
        ...

    def save_response(self, session_id: str, response: StoredResponse) -> StoredResponse:
        """Record an answer that changed nothing (a 4xx, a dry run) for its key; if the key
        already has one, keep and return that. Raises SessionNotFound."""
        ...

    def expire(self) -> int:
        """Delete idle sessions and old idempotent answers now; return sessions removed.
        Backends also do this lazily, so calling it is optional housekeeping."""
        ...

    def close(self) -> None: ...


class MetaCache:
    """The meta a backend's own last commit made, per session: the next commit on top of it
    plans from it instead of reading the session's whole index again (which grows with the
    journal). A session's (id, version) names one content, since every commit bumps the
    version and ids are never reused; the commit's compare-and-set still checks."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._metas: dict[str, SessionMeta] = {}
        self._lock = threading.Lock()

    def get(self, session_id: str, version: int) -> SessionMeta | None:
        meta = self._metas.get(session_id)
        return meta if meta is not None and meta.version == version else None

    def put(self, header: SessionHeader, arrays: dict[ArrayKey, ArrayInfo]) -> None:
        with self._lock:
            if len(self._metas) >= self.size:
                self._metas.clear()
            self._metas[header.id] = SessionMeta(**vars(header), arrays=arrays)

    def drop(self, session_id: str) -> None:
        with self._lock:
            self._metas.pop(session_id, None)


def wall_clock() -> float:
    return time.time()


def stale_error(
    store: SessionStore, meta: SessionMeta, expected_version: int, changes: Changes
) -> StoreError:
    """What a commit against an old version raises: KeyReused if its Idempotency-Key was
    already answered (a retry, to be replayed), else VersionConflict."""
    if changes.response is not None:
        used = store.get_response(meta.id, changes.response.key)
        if used is not None:
            return KeyReused(used)
    return VersionConflict(meta.id, expected_version, meta.version)
