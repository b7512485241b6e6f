"""A SQLite store's turn to write: first among its threads (a thread lock), then among the
processes sharing the file (`flock` on `<file>.writer`, released by the kernel if a process
dies). SQLite's busy handler would otherwise poll with sleeps growing to 100 ms, and under a
few concurrent writers a commit waited hundreds of ms for a lock that had long been free."""

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class WriterTurn:
    def __init__(self, path: str | None) -> None:
        """`path`: the database file, or None (an in-memory database: threads only)."""
        self._lock = threading.Lock()
        flags = os.O_RDWR | os.O_CREAT
        self._file = None if path is None else os.open(path + ".writer", flags, 0o600)

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._lock:
            if self._file is None:
                yield
                return
            fcntl.flock(self._file, fcntl.LOCK_EX)  # wakes as soon as it is released
            try:
                yield
            finally:
                fcntl.flock(self._file, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._file is not None:
            os.close(self._file)
            self._file = None
