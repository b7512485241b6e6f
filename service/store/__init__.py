"""Session storage behind one interface (`SessionStore`), chosen by AUTOGRAD_STORE."""

from service.store.base import Clock, Limits, SessionStore
from service.store.errors import (
    KeyReused,
    QuotaExceeded,
    SessionExists,
    SessionNotFound,
    StoreError,
    VersionConflict,
)
from service.store.factory import make_store
from service.store.hashing import (
    hash_token,
    new_session_id,
    new_token,
    request_fingerprint,
    verify_token,
)
from service.store.records import (
    ArrayInfo,
    Changes,
    SessionMeta,
    SessionRecord,
    StoredResponse,
)

__all__ = [
    "ArrayInfo",
    "Changes",
    "Clock",
    "KeyReused",
    "Limits",
    "QuotaExceeded",
    "SessionExists",
    "SessionMeta",
    "SessionNotFound",
    "SessionRecord",
    "SessionStore",
    "StoreError",
    "StoredResponse",
    "VersionConflict",
    "hash_token",
    "make_store",
    "new_session_id",
    "new_token",
    "request_fingerprint",
    "verify_token",
]
