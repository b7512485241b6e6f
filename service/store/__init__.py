"""Session storage behind one interface: the `SessionStore` Protocol, the records it holds and
the errors it raises. The drivers (`sqlite_store`, `redis_store`) are chosen by AUTOGRAD_STORE in
`factory.make_store`, which only the app imports: nothing here imports a driver."""

from service.store.errors import (
    KeyReused,
    QuotaExceeded,
    SessionExists,
    SessionNotFound,
    StorageFault,
    StoreError,
    StoreUnavailable,
    VersionConflict,
)
from service.store.hashing import (
    hash_token,
    new_session_id,
    new_token,
    request_fingerprint,
    verify_token,
)
from service.store.protocol import ClientCaps, Clock, SessionStore, StoreLimits
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
    "ClientCaps",
    "Clock",
    "KeyReused",
    "QuotaExceeded",
    "SessionExists",
    "SessionMeta",
    "SessionNotFound",
    "SessionRecord",
    "SessionStore",
    "StorageFault",
    "StoreError",
    "StoreLimits",
    "StoreUnavailable",
    "StoredResponse",
    "VersionConflict",
    "hash_token",
    "new_session_id",
    "new_token",
    "request_fingerprint",
    "verify_token",
]
