"""Storage faults, whichever driver: recognising one in the driver's error, keeping it for the
readiness probe, and checking whether it still holds.

A write that fails because the disk (or Redis's memory) is full, or on an I/O error, is a
`StorageFault`: answered 507 or 503 instead of "retry shortly", and `/readyz` answers 503
with its reason until a write succeeds again. The probe finds out by trying a small write
itself, since a replica that is not ready gets no traffic that could clear it.
"""

import errno
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from service.store.errors import StorageFault, StoreUnavailable

# SQLite's primary result codes (the low byte of an extended one such as SQLITE_IOERR_WRITE).
_SQLITE_KINDS = {13: "full", 10: "io", 11: "damaged", 26: "damaged"}  # FULL IOERR CORRUPT NOTADB
_OS_KINDS = {errno.ENOSPC: "full", errno.EDQUOT: "full", errno.EIO: "io"}

PROBE_BYTES = 1 << 20
"""The room the readiness probe asks for after a write failed: a commit's journal entry or
checkpoint needs about as much or more, so room for this is taken as room for writes."""
MIN_FREE_BYTES = 1 << 20
"""Less free space than this on the SQLite file's filesystem is `full` for every worker,
whether or not it met the failed write itself: one commit's WAL frames need about that."""


def store_error(exc: Exception) -> Exception:
    """What a SQLite store raises for a sqlite3 or OS error: a StorageFault (full, I/O,
    damaged), StoreUnavailable for any other OperationalError (locked, busy: the file did
    not answer), else the error itself (a defect, such as a constraint violated)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None and code & 0xFF in _SQLITE_KINDS:
        return StorageFault(_SQLITE_KINDS[code & 0xFF], exc)
    if isinstance(exc, OSError) and exc.errno in _OS_KINDS:
        return StorageFault(_OS_KINDS[exc.errno], exc)
    if isinstance(exc, sqlite3.OperationalError):
        return StoreUnavailable(exc)
    return exc


def redis_memory_full(memory: dict) -> str | None:
    """Why Redis (its INFO memory section) will refuse writes: less than PROBE_BYTES left
    below `maxmemory` under noeviction; None when it has room or says nothing."""
    limit = memory.get("maxmemory", 0)
    used = memory.get("used_memory", 0) - memory.get("mem_not_counted_for_evict", 0)
    if limit and memory.get("maxmemory_policy") == "noeviction" and used + PROBE_BYTES > limit:
        return f"full: {used} bytes used of maxmemory {limit}"
    return None


def low_space(directory: Path) -> str | None:
    """`full: ...` when the filesystem holding `directory` has less than MIN_FREE_BYTES free
    (for an unprivileged user), else None."""
    try:
        stat = os.statvfs(directory)
    except OSError:  # a missing data directory is the readiness probe's `data_dir` check
        return None
    free = stat.f_bavail * stat.f_frsize
    if free >= MIN_FREE_BYTES:
        return None
    return f"full: {free} bytes free on the filesystem of {directory}"


class Faults:
    """The storage fault a store object last met, kept until a write succeeds (a `damaged`
    file: until the process restarts, when `serve` checks the file before serving it).

    One per store object, so per worker process: another worker learns of a full disk from
    the free space (SQLite) or from its own probe write (Redis), not from this."""

    def __init__(self) -> None:
        self._kept: StorageFault | None = None
        self._lock = threading.Lock()

    def note(self, fault: StorageFault) -> StorageFault:
        with self._lock:
            if self._kept is None or self._kept.kind != "damaged":
                self._kept = fault
        return fault

    def clear(self) -> None:
        """A write succeeded: the storage takes writes again (a damaged file stays so)."""
        with self._lock:
            if self._kept is not None and self._kept.kind != "damaged":
                self._kept = None

    def check(self, probe: Callable[[], None]) -> str | None:
        """The reason of the fault kept, if `probe` (a small write) still fails; None if no
        fault is kept or the probe succeeded (which clears it)."""
        kept = self._kept
        if kept is None or kept.kind == "damaged":
            return None if kept is None else kept.reason
        try:
            probe()
        except StorageFault as exc:
            return exc.reason
        self.clear()
        return None
