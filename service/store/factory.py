"""`make_store(settings)`: the backend AUTOGRAD_STORE names, with the caps from the settings."""

from collections.abc import Callable
from pathlib import Path

from service.settings import Settings
from service.store.protocol import ClientCaps, SessionStore, StoreLimits
from service.store.sqlite_store import SQLiteStore

SQLITE_FILENAME = "sessions.sqlite3"


ClientCapsOf = Callable[[str], ClientCaps | None]


def limits_from(settings: Settings, client_caps: ClientCapsOf | None = None) -> StoreLimits:
    """The caps from the settings; `client_caps` gives an owner's own (an API key's)."""
    own = {} if client_caps is None else {"client_caps": client_caps}
    return StoreLimits(
        max_sessions=settings.max_sessions,
        max_session_bytes=settings.max_session_bytes,
        max_store_bytes=settings.max_store_bytes,
        session_ttl_seconds=settings.session_ttl_seconds,
        idempotency_ttl_seconds=settings.idempotency_ttl_seconds,
        max_client_sessions=settings.max_client_sessions,
        max_client_bytes=settings.max_client_bytes,
        **own,
    )


def sqlite_path(settings: Settings) -> Path:
    """The embedded store's file: what `make_store` opens and `serve` checks first."""
    return settings.data_dir / SQLITE_FILENAME


def make_store(settings: Settings, client_caps: ClientCapsOf | None = None) -> SessionStore:
    """Open the store; each worker process calls this for its own connections."""
    limits = limits_from(settings, client_caps)
    if settings.store == "sqlite":
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return SQLiteStore(sqlite_path(settings), limits, synchronous=settings.sqlite_synchronous)
    if settings.store == "memory":
        return SQLiteStore(":memory:", limits)
    from service.store.redis_store import RedisStore  # redis is only imported when used

    return RedisStore.from_url(settings.store, limits)
