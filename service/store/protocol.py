"""The interface the session domain uses, whichever driver holds the sessions: everything
it calls is declared here (drivers satisfy it structurally; nothing checks for a method at
run time), and what any of it raises is in `service.store.errors`."""

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

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
class ClientCaps:
    """What one client (a session's owner: an API key, or an address) may hold at once; 0 is
    no cap of its own (the whole store's caps still hold)."""

    max_sessions: int
    max_bytes: int


def _no_own_caps(owner: str) -> ClientCaps | None:
    return None


@dataclass(frozen=True)
class StoreLimits:
    """Caps and expiry times; the field names are the settings' (AUTOGRAD_<NAME>)."""

    max_sessions: int = 1000
    max_session_bytes: int = 256 * MiB
    max_store_bytes: int = 2048 * MiB
    session_ttl_seconds: float = 3600.0
    idempotency_ttl_seconds: float = 86400.0
    # Per owner, below the whole store's: one client cannot fill the store for the others.
    max_client_sessions: int = 100
    max_client_bytes: int = 512 * MiB
    # An owner's own caps (an API key's, from the key file), asked at each create and commit
    # so that an edited key file applies to sessions already stored; None: the two above.
    client_caps: Callable[[str], ClientCaps | None] = field(default=_no_own_caps, compare=False)

    def caps(self, owner: str) -> ClientCaps | None:
        """The caps of a session's owner; None for a session without one (made before owners
        were recorded, or by the store's own tests), which only the store's caps hold."""
        if not owner:
            return None
        own = self.client_caps(owner)
        return (
            own if own is not None else ClientCaps(self.max_client_sessions, self.max_client_bytes)
        )


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

    limits: StoreLimits
    clock: Clock

    def create(self, record: SessionRecord) -> int:
        """Store a new session at version 0 and return that version.

        The session counts against its owner's caps (`record.owner`, `limits.caps`).
        Raises QuotaExceeded (max_sessions, max_session_bytes, max_store_bytes,
        max_client_sessions, max_client_bytes), SessionExists.
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

    def commit(
        self,
        session_id: str,
        expected_version: int,
        changes: Changes,
        base: SessionRecord | None = None,
    ) -> int:
        """Apply `changes` if the session is still at `expected_version`; return the new one.

        `base` is the record the changes were computed on: a store that keeps sessions in
        memory (LiveStore) keeps what it became; a driver ignores it. Also marks the session
        used. Raises VersionConflict, SessionNotFound, QuotaExceeded, KeyReused
        (changes.response's key already answered; nothing written).
        """
        ...

    def lock(self, session_id: str) -> AbstractContextManager[object]:
        """Held around a call's read, compute and commit. A store that keeps sessions in
        memory between calls serialises one session's calls in this process with it, since
        they compute on the kept arrays in place; a driver's lock holds nothing."""
        ...

    def forget(self, session_id: str) -> None:
        """Drop what this process keeps of the session: the call that read it failed or
        committed nothing, and may have changed the kept arrays in place. A driver keeps
        nothing."""
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

    def storage_fault(self) -> str | None:
        """Why the store cannot take writes now, as `kind: reason` ("full: database or disk
        is full"), or None. A fault a write met is kept until a write succeeds; while one is
        kept this tries a small write itself, so that it clears once space is freed."""
        ...

    def close(self) -> None: ...

    # Every method can also raise StoreUnavailable: the server or file did not answer; or
    # its subclass StorageFault: the storage is full, failed an I/O or is damaged.
