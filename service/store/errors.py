"""What a store raises, whichever driver: the drivers translate their own errors (redis,
sqlite3) into these, so the session domain never sees a driver. Each maps to one HTTP answer."""

from service.store.records import StoredResponse


class StoreError(Exception):
    """Base of the store's errors."""


class SessionNotFound(StoreError):
    """No such session, or it expired: answer 404 (the same as a wrong token)."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"no session {session_id!r}")
        self.session_id = session_id


class SessionExists(StoreError):
    """`create` with an id already in use; ids are random, so this is a bug or a retry."""


class VersionConflict(StoreError):
    """The session changed since it was read: 412 with If-Match, else re-read and retry."""

    def __init__(self, session_id: str, expected: int, actual: int) -> None:
        super().__init__(f"session {session_id!r} is at version {actual}, not {expected}")
        self.session_id, self.expected, self.actual = session_id, expected, actual


class KeyReused(StoreError):
    """The Idempotency-Key already has an answer: nothing was written; replay `response`.

    Raised from inside the commit, so two racing requests with one key never both apply.
    """

    def __init__(self, response: StoredResponse) -> None:
        super().__init__(f"idempotency key {response.key!r} was already used")
        self.response = response


class QuotaExceeded(StoreError):
    """A cap would be exceeded; raised before anything is written.

    `limit` names the setting (AUTOGRAD_<LIMIT>), `maximum` is its value and `value` what the
    write would have reached: the members of the `limit-exceeded` problem type. For the caps
    of the whole store and of one owner (`owner`), `retry_after` is the seconds until the
    earliest of the sessions counted expires (room may be made sooner by deleting one); None
    when waiting cannot help, as when the write alone is over the cap.
    """

    STORE = ("max_sessions", "max_store_bytes")
    CLIENT = ("max_client_sessions", "max_client_bytes")

    def __init__(
        self,
        limit: str,
        maximum: int,
        value: int,
        retry_after: float | None = None,
        owner: str = "",
    ) -> None:
        super().__init__(f"{limit}: {value} would exceed the maximum of {maximum}")
        self.limit, self.maximum, self.value = limit, maximum, value
        self.retry_after, self.owner = retry_after, owner


class StoreUnavailable(StoreError):
    """The store's server or file did not answer (a driver's connection, time-out or I/O
    error, kept as `__cause__`): answer 503, the client retries. `reason` names the driver's
    error, for the operators."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"the session store did not answer: {cause!r}")
        self.reason = type(cause).__name__


class StorageFault(StoreUnavailable):
    """The store's storage failed a read or write: it is full (the disk, or Redis's
    `maxmemory`), an I/O error, or a damaged file. Unlike a server that did not answer, this
    lasts until an operator frees space or restores the file, so it is not "retry shortly".
    Nothing was written: every driver's write is all-or-nothing.

    `kind` is "full", "io" or "damaged"; `reason` is `kind: the driver's message`, what the
    readiness probe reports."""

    def __init__(self, kind: str, cause: BaseException, message: str | None = None) -> None:
        message = " ".join((message or str(cause)).split()) or type(cause).__name__
        StoreError.__init__(self, f"the session store's storage failed: {kind}: {message}")
        self.kind = kind
        self.reason = f"{kind}: {message}"
