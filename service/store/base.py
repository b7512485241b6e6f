"""What the drivers share: the meta cache their commits plan from, the wall clock, the time
until a session expires, and the error a stale commit raises."""

import threading
import time

from service.store.errors import KeyReused, StoreError, VersionConflict
from service.store.protocol import SessionStore, StoreLimits
from service.store.records import ArrayInfo, ArrayKey, Changes, SessionHeader, SessionMeta


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


def until_expiry(oldest_use: float | None, limits: StoreLimits, now: float) -> float | None:
    """Seconds until a session last used at `oldest_use` expires (None: no session)."""
    if oldest_use is None:
        return None
    return max(0.0, oldest_use + limits.session_ttl_seconds - now)


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
