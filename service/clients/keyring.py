"""The keys file as a running server sees it: looked up by key, re-read when it changes.

Every worker keeps its own copy and checks the file's modification stamp at most once a
second, so `autograd-service keys add/remove` applies to every worker within a second without
a restart. A file that becomes unreadable or malformed is logged and the keys read last stay
in use: an operator's typo does not lock every client out (or let everyone in).
"""

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from service.clients.keys import ApiKey, KeyFileError, hash_key, load

log = logging.getLogger(__name__)

CHECK_SECONDS = 1.0


class KeyRing:
    def __init__(self, path: Path, clock: Callable[[], float] = time.monotonic) -> None:
        """Reads the file now: a missing or malformed file raises KeyFileError, so a server
        configured with one does not start open."""
        self.path, self.clock = path, clock
        self._stamp = self._stat()
        self._install(load(path))
        self._checked = clock()

    def _stat(self) -> tuple[int, int, int]:
        st = os.stat(self.path)
        return st.st_mtime_ns, st.st_size, st.st_ino

    def _install(self, keys: list[ApiKey]) -> None:
        # New dicts replace the old whole: readers in other threads see one or the other.
        self._by_hash = {k.sha256: k for k in keys}
        self._by_owner = {k.owner: k for k in keys}

    def _refresh(self) -> None:
        now = self.clock()
        if now - self._checked < CHECK_SECONDS:
            return
        self._checked = now
        try:
            stamp = self._stat()
            if stamp == self._stamp:
                return
            self._install(load(self.path))
            self._stamp = stamp
            log.info("API keys reloaded from %s: %d keys", self.path, len(self._by_hash))
        except (OSError, KeyFileError) as exc:
            log.error("API keys file unusable, keeping the %d keys read before: %s",
                      len(self._by_hash), exc)  # fmt: skip

    def lookup(self, key: str) -> ApiKey | None:
        """The key's entry, or None for a key this server does not know. A dictionary
        lookup by its SHA-256: timing can reveal at most something about a hash, which
        does not help to find a key."""
        self._refresh()
        return self._by_hash.get(hash_key(key))

    def by_owner(self, owner: str) -> ApiKey | None:
        """The key whose sessions are recorded as `owner` (`key:<name>`), if it still exists."""
        self._refresh()
        return self._by_owner.get(owner)

    def __len__(self) -> int:
        return len(self._by_hash)
