"""What a session store holds: the session record, its cheap metadata, a commit's changes.

Only numpy arrays and JSON values appear here, never engine objects, so a store can be read
and tested without the engine. Arrays are kept as raw little-endian bytes plus dtype name and
shape: exact for every dtype, portable between machines, and safe to load (never pickle).
"""

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

PARAM, GRAD, BUFFER, STATE = "param", "grad", "buffer", "state"
# A journal entry (named by the version it made, zero-padded): the request that made that
# version, to be replayed on the arrays above it instead of storing all of them each step.
JOURNAL = "journal"
KINDS = (PARAM, GRAD, BUFFER, STATE, JOURNAL)

ArrayKey = tuple[str, str, str]
"""(kind, name, slot): slot names an optimizer-state buffer (`exp_avg`, ...), else ""."""

# Booleans, integers, floats and complex numbers have one unambiguous byte layout each;
# object, string and structured dtypes do not, so they are refused rather than pickled.
_STORABLE_KINDS = frozenset("biufc")


@dataclass(frozen=True)
class ArrayInfo:
    dtype: str  # numpy name, e.g. "float32"; the bytes are always little-endian
    shape: tuple[int, ...]
    nbytes: int


def array_info(array: np.ndarray) -> ArrayInfo:
    if array.dtype.kind not in _STORABLE_KINDS:
        raise TypeError(f"cannot store arrays of dtype {array.dtype}")
    return ArrayInfo(_name(array.dtype), tuple(int(n) for n in array.shape), int(array.nbytes))


_NAMES: dict[np.dtype, str] = {}


def _name(dtype: np.dtype) -> str:
    """`dtype.name`, which numpy works out anew (a few µs) on every call."""
    name = _NAMES.get(dtype)
    if name is None:
        name = _NAMES[dtype] = dtype.name
    return name


def encode_array(array: np.ndarray) -> tuple[ArrayInfo, memoryview]:
    """The array's bytes as the store writes them: a view, not a copy, when the array is
    already contiguous little-endian (`tobytes` of a 40 MB parameter held the GIL 70 ms, and
    the event loop with it). The drivers write it before the session can change again."""
    info = array_info(array)
    little = array.dtype.newbyteorder("<")
    return info, memoryview(np.ascontiguousarray(array, dtype=little).reshape(-1)).cast("B")


def decode_array(info: ArrayInfo, data: bytes) -> np.ndarray:
    dtype = np.dtype(info.dtype).newbyteorder("<")
    if len(data) != info.nbytes:
        raise ValueError(f"stored array has {len(data)} bytes, expected {info.nbytes}")
    # frombuffer views the (immutable) bytes; copy so callers may update in place.
    return np.frombuffer(data, dtype=dtype).reshape(info.shape).astype(dtype.newbyteorder("="))


def info_to_json(info: ArrayInfo) -> list[Any]:
    return [info.dtype, list(info.shape), info.nbytes]


def info_from_json(value: list[Any]) -> ArrayInfo:
    return ArrayInfo(value[0], tuple(value[1]), value[2])


def dumps(value: Any) -> str:
    """JSON for stored program/optimizer values; stable key order so sizes are reproducible."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@dataclass(kw_only=True)
class SessionHeader:
    """Everything about a session except array contents."""

    id: str
    token_hash: str  # sha256 hex of the bearer token; the token itself is never stored
    program: Any  # the model program as JSON (an `expr` string or a `nodes` document)
    optimizer: dict[str, Any]  # optimizer type and hyperparameters, JSON
    requires_grad: dict[str, bool] = field(default_factory=dict)  # per parameter name
    version: int = 0  # the ETag: 0 when created, +1 per commit
    step_count: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0
    last_used_at: float = 0.0
    stored_bytes: int = 0  # counted against the byte caps: arrays + program + optimizer
    owner: str = ""  # the client it counts against (StoreLimits.caps); "" for none


@dataclass(kw_only=True)
class SessionMeta(SessionHeader):
    """A session without its arrays: what GET /v1/sessions/{id} and auth need, cheap to read."""

    arrays: dict[ArrayKey, ArrayInfo] = field(default_factory=dict)

    def infos(self, kind: str) -> dict[str, ArrayInfo]:
        return {name: info for (k, name, slot), info in self.arrays.items() if k == kind}

    def slots_by_parameter(self) -> dict[str, list[str]]:
        """Each parameter's optimizer-state slots, sorted, in one pass over the arrays (a
        per-name `state_slots` for every parameter would be quadratic in their number)."""
        slots: dict[str, list[str]] = {}
        for kind, name, slot in self.arrays:
            if kind == STATE:
                slots.setdefault(name, []).append(slot)
        for names in slots.values():
            names.sort()
        return slots


@dataclass(kw_only=True)
class SessionRecord(SessionHeader):
    """A whole session. To create one, fill id, token_hash, program, optimizer and arrays; the
    store sets version (0) and the timestamps, and keeps step_count (a fork keeps its count)."""

    parameters: dict[str, np.ndarray] = field(default_factory=dict)
    grads: dict[str, np.ndarray] = field(default_factory=dict)
    buffers: dict[str, np.ndarray] = field(default_factory=dict)
    # per parameter: momentum_buffer / exp_avg / exp_avg_sq / max_exp_avg_sq / step
    optimizer_state: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    journal: dict[str, np.ndarray] = field(default_factory=dict)  # uint8 entries, see JOURNAL

    def _groups(self) -> tuple[tuple[str, dict[str, np.ndarray]], ...]:
        return (
            (PARAM, self.parameters),
            (GRAD, self.grads),
            (BUFFER, self.buffers),
            (JOURNAL, self.journal),
        )

    def flat_arrays(self) -> dict[ArrayKey, np.ndarray]:
        flat: dict[ArrayKey, np.ndarray] = {}
        for kind, group in self._groups():
            flat.update({(kind, name, ""): array for name, array in group.items()})
        for name, slots in self.optimizer_state.items():
            flat.update({(STATE, name, slot): array for slot, array in slots.items()})
        return flat

    def set_flat_arrays(self, flat: dict[ArrayKey, np.ndarray]) -> None:
        groups = dict(self._groups())
        for (kind, name, slot), array in flat.items():
            if kind == STATE:
                self.optimizer_state.setdefault(name, {})[slot] = array
            else:
                groups[kind][name] = array


@dataclass(frozen=True, kw_only=True)
class StoredResponse:
    """The first answer to a request with an Idempotency-Key, replayed to its retries."""

    key: str
    fingerprint: str  # of the request (method, path, body): the same key with another → 422
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    created_at: float = 0.0  # set by the store


@dataclass(kw_only=True)
class Changes:
    """One commit: everything here is applied in one transaction, or nothing is.

    In every mapping, None deletes. Deleting a parameter also deletes its gradient, its
    optimizer state and its requires_grad flag. `optimizer_state[name]` replaces all slots of
    that parameter. `response` records an idempotent answer together with the commit.
    """

    parameters: dict[str, np.ndarray | None] = field(default_factory=dict)
    requires_grad: dict[str, bool] = field(default_factory=dict)
    grads: dict[str, np.ndarray | None] = field(default_factory=dict)
    buffers: dict[str, np.ndarray | None] = field(default_factory=dict)
    optimizer_state: dict[str, dict[str, np.ndarray] | None] = field(default_factory=dict)
    journal: dict[str, np.ndarray | None] = field(default_factory=dict)
    program: Any = None  # None: unchanged
    optimizer: dict[str, Any] | None = None  # None: unchanged
    steps: int = 0  # added to step_count
    response: StoredResponse | None = None
    # How to compute these changes again from the previous version (the request, for the
    # journal), and the seconds computing them took; stores that keep arrays ignore both.
    replay: bytes | None = None
    seconds: float = 0.0


def applied(record: SessionRecord, changes: Changes) -> SessionRecord:
    """The record one commit of `changes` makes (version and timestamps aside), sharing the
    unchanged arrays; the same rules as the stores' plan (plan.py)."""
    new = SessionRecord(
        **{k: v for k, v in vars(record).items() if k not in _ARRAY_FIELDS},
        parameters=dict(record.parameters),
        grads=dict(record.grads),
        buffers=dict(record.buffers),
        optimizer_state=dict(record.optimizer_state),
        journal=dict(record.journal),
    )
    new.requires_grad = dict(record.requires_grad)
    for name, array in changes.parameters.items():
        if array is None:  # a parameter takes its gradient and optimizer state with it
            for group in (new.parameters, new.grads, new.optimizer_state, new.requires_grad):
                group.pop(name, None)
        else:
            new.parameters[name] = array
            new.requires_grad.setdefault(name, True)
    new.requires_grad.update(changes.requires_grad)
    for group, updates in (
        (new.grads, changes.grads),
        (new.buffers, changes.buffers),
        (new.optimizer_state, changes.optimizer_state),
        (new.journal, changes.journal),
    ):
        for name, value in updates.items():
            if value is None:
                group.pop(name, None)
            else:
                group[name] = value  # type: ignore[assignment]
    if changes.program is not None:
        new.program = changes.program
    if changes.optimizer is not None:
        new.optimizer = changes.optimizer
    new.step_count += changes.steps
    return new


_ARRAY_FIELDS = frozenset(
    ("parameters", "grads", "buffers", "optimizer_state", "journal", "requires_grad")
)
