"""What a commit will write, worked out before any write so that caps hold first.

Both backends apply a commit in the same two steps: plan against the version just read
(here, pure), then write the plan in one transaction that re-checks the version.
"""

from dataclasses import dataclass

import numpy as np

from service.store.errors import QuotaExceeded
from service.store.protocol import StoreLimits
from service.store.records import (
    BUFFER,
    GRAD,
    JOURNAL,
    PARAM,
    STATE,
    ArrayInfo,
    ArrayKey,
    Changes,
    SessionHeader,
    SessionMeta,
    SessionRecord,
    dumps,
    encode_array,
)


@dataclass
class Plan:
    header: SessionHeader  # the new header; version and timestamps are set by the backend
    arrays: dict[ArrayKey, ArrayInfo]  # the whole new index
    writes: dict[ArrayKey, tuple[ArrayInfo, bytes]]
    deletes: set[ArrayKey]  # existing keys that go away (and are not rewritten)


def stored_bytes(program: object, optimizer: object, arrays: dict[ArrayKey, ArrayInfo]) -> int:
    json_bytes = len(dumps(program).encode()) + len(dumps(optimizer).encode())
    return json_bytes + sum(info.nbytes for info in arrays.values())


def _check_session_bytes(value: int, limits: StoreLimits) -> None:
    if value > limits.max_session_bytes:
        raise QuotaExceeded("max_session_bytes", limits.max_session_bytes, value)


def plan_create(record: SessionRecord, limits: StoreLimits) -> Plan:
    unknown = record.requires_grad.keys() - record.parameters.keys()
    if unknown:
        raise ValueError(f"requires_grad for unknown parameters: {sorted(unknown)}")
    writes = {key: encode_array(array) for key, array in record.flat_arrays().items()}
    arrays = {key: info for key, (info, _) in writes.items()}
    requires_grad = {name: record.requires_grad.get(name, True) for name in record.parameters}
    header = SessionHeader(
        id=record.id,
        token_hash=record.token_hash,
        program=record.program,
        optimizer=record.optimizer,
        requires_grad=requires_grad,
        step_count=record.step_count,
        stored_bytes=stored_bytes(record.program, record.optimizer, arrays),
        owner=record.owner,
    )
    _check_session_bytes(header.stored_bytes, limits)
    return Plan(header, arrays, writes, set())


def plan_commit(meta: SessionMeta, changes: Changes, limits: StoreLimits) -> Plan:
    arrays = dict(meta.arrays)
    requires_grad = dict(meta.requires_grad)
    writes: dict[ArrayKey, tuple[ArrayInfo, bytes]] = {}

    def put(key: ArrayKey, array: np.ndarray) -> None:
        writes[key] = encode_array(array)
        arrays[key] = writes[key][0]

    def drop(key: ArrayKey) -> None:
        arrays.pop(key, None)
        writes.pop(key, None)

    def drop_slots(name: str) -> None:
        for key in [k for k in arrays if k[0] == STATE and k[1] == name]:
            drop(key)

    for name, array in changes.parameters.items():
        if array is None:  # a parameter takes its gradient and optimizer state with it
            drop((PARAM, name, ""))
            drop((GRAD, name, ""))
            drop_slots(name)
            requires_grad.pop(name, None)
        else:
            put((PARAM, name, ""), array)
            requires_grad.setdefault(name, True)
    unknown = changes.requires_grad.keys() - requires_grad.keys()
    if unknown:
        raise ValueError(f"requires_grad for unknown parameters: {sorted(unknown)}")
    requires_grad.update(changes.requires_grad)
    for kind, group in (
        (GRAD, changes.grads),
        (BUFFER, changes.buffers),
        (JOURNAL, changes.journal),
    ):
        for name, array in group.items():
            if array is None:
                drop((kind, name, ""))
            else:
                put((kind, name, ""), array)
    for name, slots in changes.optimizer_state.items():
        drop_slots(name)
        for slot, array in (slots or {}).items():
            put((STATE, name, slot), array)

    program = meta.program if changes.program is None else changes.program
    optimizer = meta.optimizer if changes.optimizer is None else changes.optimizer
    header = SessionHeader(
        id=meta.id,
        token_hash=meta.token_hash,
        program=program,
        optimizer=optimizer,
        requires_grad=requires_grad,
        version=meta.version + 1,
        step_count=meta.step_count + changes.steps,
        created_at=meta.created_at,
        stored_bytes=stored_bytes(program, optimizer, arrays),
        owner=meta.owner,
    )
    _check_session_bytes(header.stored_bytes, limits)
    return Plan(header, arrays, writes, set(meta.arrays) - set(arrays))
