"""Sessions as this worker last saw them, kept in memory between calls, and the choice of
what a commit stores: its journal entry, or the whole state (journal.py says why).

Every call still reads the session's header from the store (one small read, the version
among it): when that is the version kept here, no array is read and nothing is replayed;
when another worker or replica committed since, the entries it missed are read and replayed
on what is kept (the whole session is read only when a checkpoint came between).
A call computes on the kept arrays in place (the optimizer updates parameters in place,
as torch's does) while it holds the session's lock, and the kept copy is dropped if the
call fails or loses its commit, so a half-computed step is never seen.
"""

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.sessions import journal
from service.settings import Settings
from service.store import (
    Changes,
    Clock,
    SessionMeta,
    SessionRecord,
    SessionStore,
    StoredResponse,
    StoreLimits,
)
from service.store.records import (
    BUFFER,
    GRAD,
    JOURNAL,
    PARAM,
    STATE,
    ArrayInfo,
    ArrayKey,
    SessionHeader,
    applied,
    array_info,
)

_STRIPES = 64  # locks shared by hash: bounded however many sessions come and go


@dataclass
class _Kept:
    version: int
    record: SessionRecord  # without a journal: the state as of `version`
    journal: dict[str, int]  # the stored entries above the stored arrays: name -> bytes
    nbytes: int  # of the record's arrays
    replay_seconds: float = 0.0  # what replaying `journal` costs, as measured or estimated


def _nbytes(record: SessionRecord) -> int:
    return sum(a.nbytes for a in record.flat_arrays().values())


class LiveStore:
    """The session store the routes use: the backend (SQLite, Redis) plus this worker's
    kept sessions. Other operations pass through to the backend."""

    def __init__(self, inner: SessionStore, settings: Settings) -> None:
        self.inner = inner
        self.settings = settings
        self.max_bytes = settings.session_cache_bytes
        self.max_entries = settings.journal_max_entries
        self.max_replay_seconds = settings.journal_max_replay_seconds
        self._kept: OrderedDict[str, _Kept] = OrderedDict()
        self._kept_bytes = 0
        self._guard = threading.Lock()
        self._locks = [threading.RLock() for _ in range(_STRIPES)]

    # -- what passes through to the driver --

    @property
    def limits(self) -> StoreLimits:
        return self.inner.limits

    @property
    def clock(self) -> Clock:
        return self.inner.clock  # read each time: tests move the driver's clock

    def create(self, record: SessionRecord) -> int:
        return self.inner.create(record)

    def get_header(self, session_id: str) -> SessionHeader | None:
        return self.inner.get_header(session_id)

    def get_arrays(
        self, session_id: str, infos: dict[ArrayKey, ArrayInfo]
    ) -> dict[ArrayKey, np.ndarray]:
        return self.inner.get_arrays(session_id, infos)

    def touch(self, session_id: str) -> bool:
        return self.inner.touch(session_id)

    def count(self) -> int:
        return self.inner.count()

    def ids(self) -> list[str]:
        return self.inner.ids()

    def get_response(self, session_id: str, key: str) -> StoredResponse | None:
        return self.inner.get_response(session_id, key)

    def save_response(self, session_id: str, response: StoredResponse) -> StoredResponse:
        return self.inner.save_response(session_id, response)

    def expire(self) -> int:
        return self.inner.expire()

    def storage_fault(self) -> str | None:
        return self.inner.storage_fault()

    def close(self) -> None:
        self.inner.close()

    # -- this worker's locks --

    def lock(self, session_id: str) -> threading.RLock:
        """Held by a call for as long as it uses the session's kept arrays."""
        return self._locks[hash(session_id) % _STRIPES]

    # -- the kept sessions --

    def _lookup(self, session_id: str, version: int) -> _Kept | None:
        with self._guard:
            kept = self._kept.get(session_id)
            if kept is None or kept.version != version:
                return None
            self._kept.move_to_end(session_id)
            return kept

    def _keep(self, session_id: str, kept: _Kept) -> None:
        with self._guard:
            self._drop(session_id)
            self._kept[session_id] = kept
            self._kept_bytes += kept.nbytes
            # The newest stays even alone over the budget: a call is computing on it.
            while self._kept_bytes > self.max_bytes and len(self._kept) > 1:
                self._drop(next(iter(self._kept)))

    def _drop(self, session_id: str) -> None:
        old = self._kept.pop(session_id, None)
        if old is not None:
            self._kept_bytes -= old.nbytes

    def forget(self, session_id: str) -> None:
        with self._guard:
            self._drop(session_id)

    # -- reads --

    def get(self, session_id: str) -> SessionRecord | None:
        """The session as of its latest version, replayed; the kept object itself, which
        the caller may change only while it holds `lock(session_id)`."""
        with self.lock(session_id):
            header = self.inner.get_header(session_id)  # not the index: it grows with entries
            if header is None:
                self.forget(session_id)
                return None
            kept = self._lookup(session_id, header.version)
            if kept is None:
                meta = self.inner.get_meta(session_id)
                kept = (meta and self._catch_up(session_id, meta)) or self._load(session_id)
                if kept is None:
                    return None
            record = kept.record
            record.last_used_at, record.updated_at = header.last_used_at, header.updated_at
            record.stored_bytes = header.stored_bytes
            return record

    def _catch_up(self, session_id: str, meta: SessionMeta) -> _Kept | None:
        """The kept session brought to `meta.version` by replaying only the entries other
        workers committed since, when the store still holds all of them."""
        with self._guard:
            old = self._kept.get(session_id)
        if old is None or old.version >= meta.version:
            return None
        stored = {n: info for (k, n, _), info in meta.arrays.items() if k == JOURNAL}
        wanted = [journal.entry_name(v) for v in range(old.version + 1, meta.version + 1)]
        if any(name not in stored for name in wanted):
            return None  # a checkpoint came between: read it all
        keys = {(JOURNAL, name, ""): stored[name] for name in wanted}
        found = self.inner.get_arrays(session_id, keys)
        if len(found) != len(keys):
            return None
        started = time.perf_counter()
        try:
            record = journal.apply_entries(old.record, [found[k] for k in keys], self.settings)
        except BaseException:
            self.forget(session_id)  # the kept arrays were part-way updated in place
            raise
        record.version, record.step_count = meta.version, meta.step_count
        seconds = old.replay_seconds + time.perf_counter() - started
        kept = _Kept(meta.version, record, {n: i.nbytes for n, i in stored.items()},
                     _nbytes(record), seconds)  # fmt: skip
        self._keep(session_id, kept)
        return kept

    def _load(self, session_id: str) -> _Kept | None:
        stored = self.inner.get(session_id)
        if stored is None:
            self.forget(session_id)
            return None
        entries = {name: array.nbytes for name, array in stored.journal.items()}
        started = time.perf_counter()
        record = journal.replay(stored, self.settings)
        seconds = time.perf_counter() - started
        kept = _Kept(stored.version, record, entries, _nbytes(record), seconds)
        self._keep(session_id, kept)
        return kept

    def get_meta(self, session_id: str) -> SessionMeta | None:
        """The session's header, with the array index of its latest version (replayed when
        the store holds journal entries)."""
        meta = self.inner.get_meta(session_id)
        if meta is None or not any(key[0] == JOURNAL for key in meta.arrays):
            return meta
        record = self.get(session_id)
        if record is None:
            return None
        fields = {k: v for k, v in vars(meta).items() if k != "arrays"}
        arrays = {key: array_info(a) for key, a in record.flat_arrays().items()}
        return SessionMeta(**fields, arrays=arrays)

    # -- writes --

    def commit(
        self,
        session_id: str,
        expected_version: int,
        changes: Changes,
        base: SessionRecord | None = None,
    ) -> int:
        """Commit `changes`, computed on `base` (the session as of `expected_version`)."""
        with self.lock(session_id):
            kept = self._lookup(session_id, expected_version)
            try:
                if kept is None:
                    kept = self._recover(session_id, expected_version, base, changes.seconds)
                stored, after = self._stored_changes(session_id, expected_version, changes, kept)
                version = self.inner.commit(session_id, expected_version, stored)
            except BaseException:
                self.forget(session_id)
                raise
            if kept is None:
                self.forget(session_id)
                return version
            record = applied(kept.record, changes)
            record.version = version
            entries, seconds = after
            self._keep(session_id, _Kept(version, record, entries, _nbytes(record), seconds))
            return version

    def _recover(
        self, session_id: str, version: int, base: SessionRecord | None, changes_seconds: float
    ) -> _Kept | None:
        """What `commit` needs when the session is not kept (evicted meanwhile, or the
        changes come from elsewhere): the journal stored, and the state it ends in."""
        meta = self.inner.get_meta(session_id)
        if meta is None:
            return None
        entries = {n: info.nbytes for (k, n, _), info in meta.arrays.items() if k == JOURNAL}
        if base is None or base.version != version:
            if not entries:
                return None  # the changes apply to the stored arrays as they are
            loaded = self._load(session_id)
            return loaded if loaded is not None and loaded.version == version else None
        # Not measured here: as if each entry cost what this call's computation did.
        return _Kept(version, base, entries, _nbytes(base), len(entries) * changes_seconds)

    def _stored_changes(
        self, session_id: str, version: int, changes: Changes, kept: _Kept | None
    ) -> tuple[Changes, tuple[dict[str, int], float]]:
        """What to write for `changes` on top of `version`, and the journal after it (its
        entries and their replay cost).

        An entry while the journal stays cheaper than what it replaces: fewer bytes than
        the state it stands for, and a replay (what a restarted worker does before its
        first answer) within AUTOGRAD_JOURNAL_MAX_REPLAY_SECONDS; else the whole state."""
        if kept is None:  # not computed on a kept session (or lost it): store as is
            return changes, ({}, 0.0)
        entries = kept.journal
        replay = changes.replay
        seconds = kept.replay_seconds + changes.seconds
        if (
            replay is not None
            and len(entries) < self.max_entries
            and sum(entries.values()) + len(replay) <= kept.nbytes
            and seconds <= self.max_replay_seconds
            and not (changes.program or changes.optimizer or changes.requires_grad)
        ):
            name = journal.entry_name(version + 1)
            entry = Changes(
                journal={name: journal.as_array(replay)},
                steps=changes.steps,
                response=changes.response,
            )
            return entry, ({**entries, name: len(replay)}, seconds)
        if not entries:
            return changes, ({}, 0.0)
        # The arrays stored are older than the journal: write the whole new state.
        return checkpoint(self.inner.get_meta(session_id), applied(kept.record, changes),
                          changes), ({}, 0.0)  # fmt: skip

    def delete(self, session_id: str) -> bool:
        self.forget(session_id)
        return self.inner.delete(session_id)


def checkpoint(meta: SessionMeta | None, full: SessionRecord, changes: Changes) -> Changes:
    """Changes that make the stored session `full`, whatever arrays it holds now."""
    stored: dict[str, set[str]] = {kind: set() for kind in (PARAM, GRAD, BUFFER, STATE, JOURNAL)}
    for kind, name, _ in meta.arrays if meta is not None else ():
        stored[kind].add(name)

    def everything(kind: str, now: dict[str, Any]) -> dict[str, Any]:
        return {**dict.fromkeys(stored[kind] - now.keys()), **now}

    return Changes(
        parameters=everything(PARAM, full.parameters),
        requires_grad=dict(full.requires_grad),
        grads=everything(GRAD, full.grads),
        buffers=everything(BUFFER, full.buffers),
        optimizer_state=everything(STATE, full.optimizer_state),
        journal=dict.fromkeys(stored[JOURNAL]),
        program=changes.program,
        optimizer=changes.optimizer,
        steps=changes.steps,
        response=changes.response,
    )
