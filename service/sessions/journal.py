"""The session journal: a step stored as the request that made it, replayed when read.

A training step changes every parameter, gradient and momentum buffer: for the MLP of the
benchmarks 3 MB, for ResNet-18 140 MB, against a batch of 0.2 MB and 0.05 MB. So a step that
can be computed again from the version before it (forward in training mode, backward,
step, zero_grad, train) commits only its request, as one journal entry, in the same
compare-and-set transaction as before: the acknowledged step is as durable as ever. Reading
the session replays the entries on the arrays stored last (a checkpoint); a worker that
made the step keeps the result in memory (live.py) and replays nothing.

Replay runs the same engine code on the same stored bytes, so it makes the same numbers
on the same machine and BLAS; replicas on different CPUs may differ in the last bits,
as two runs of torch on them would.
"""

from collections.abc import Callable
from typing import Any

import numpy as np
from pydantic import BaseModel

from engine.deadline import apart
from service.schemas.session_calls import (
    SessionBackwardCreate,
    SessionForwardCreate,
    SessionStepCreate,
    SessionTrainCreate,
    SessionZeroGradCreate,
)
from service.sessions import actions, model_calls
from service.sessions.outcome import Outcome
from service.settings import Settings
from service.store.records import Changes, SessionRecord, applied
from service.wire import jsonio, safetensors

Action = Callable[[SessionRecord, Any, Settings], Outcome]

# The calls whose change is a function of (the session, the request body, the settings).
REPLAYABLE: dict[str, tuple[type[BaseModel], Action]] = {
    "forward": (SessionForwardCreate, model_calls.forward),
    "backward": (SessionBackwardCreate, actions.backward_),
    "step": (SessionStepCreate, actions.step),
    "zero_grad": (SessionZeroGradCreate, lambda record, body, _: actions.zero_grad(record, body)),
    "train": (SessionTrainCreate, actions.train),
}

# A request was checked against the limits when it was accepted; its replay must not fail
# because an operator lowered them since.
_UNLIMITED = {
    "max_ndim": 64,
    "max_nodes": 2**62,
    "max_expr_chars": 2**62,
    "max_tensor_elements": 2**62,
    "max_total_elements": 2**62,
    "max_flops": 2**62,
}


def entry_name(version: int) -> str:
    """Zero-padded, so that names sort as versions do."""
    return f"{version:012d}"


_SAFETENSORS = b" safetensors"  # after the action: the body is a safetensors file


def encode(action: str, body: bytes, safetensors: bool = False) -> bytes:
    """`action[ safetensors]\n<the request body>`."""
    if action not in REPLAYABLE:
        raise ValueError(f"{action!r} cannot be journaled")
    return action.encode() + (_SAFETENSORS if safetensors else b"") + b"\n" + body


def decode(entry: bytes) -> tuple[str, BaseModel]:
    first, _, body = entry.partition(b"\n")
    action, as_file = first.removesuffix(_SAFETENSORS), first.endswith(_SAFETENSORS)
    schema, _ = REPLAYABLE[action.decode()]
    if as_file:
        document = safetensors.document(body)
    else:
        document = jsonio.loads(body) if body.strip() else None
    return action.decode(), schema() if document is None else schema.model_validate(document)


def replay(record: SessionRecord, settings: Settings) -> SessionRecord:
    """The session as of its version: `record`'s arrays with its journal entries applied in
    order. Returns a record without a journal."""
    if not record.journal:
        return record
    current = applied(record, Changes(journal=dict.fromkeys(record.journal)))
    current = apply_entries(current, [record.journal[n] for n in sorted(record.journal)], settings)
    current.step_count = record.step_count  # the header is already the latest version's
    return current


def apply_entries(
    record: SessionRecord, entries: list[np.ndarray], settings: Settings
) -> SessionRecord:
    """`record` after the calls `entries` stored, in order (arrays may change in place).

    The replay is not the request's own work: it runs apart from the request's time limit,
    under its own of twice what the journal policy lets a replay cost (stopped there, the
    request answers 503 and the kept arrays are dropped, as for any failed call)."""
    relaxed = settings.model_copy(update=_UNLIMITED)
    with apart(max(1.0, 2 * settings.journal_max_replay_seconds)):
        return _apply(record, entries, relaxed)


def _apply(record: SessionRecord, entries: list[np.ndarray], relaxed: Settings) -> SessionRecord:
    for entry in entries:
        action, body = decode(entry.tobytes())
        _, run = REPLAYABLE[action]
        outcome = run(record, body, relaxed)
        if outcome.changes is not None:
            record = applied(record, outcome.changes)
    return record


def as_array(entry: bytes) -> np.ndarray:
    return np.frombuffer(entry, dtype=np.uint8)
