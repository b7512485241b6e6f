"""How the Redis store lays a session out in hashes, and reads it back.

Numbers and timestamps are decimal text (floats via repr, so they round-trip exactly), JSON
values are JSON text, array contents are raw bytes; the array index (dtype, shape, size of
each array) is one JSON field of the meta hash, so `get_meta` is one HGETALL of small values.
"""

import json
from typing import Any

from service.store.records import (
    ArrayKey,
    SessionHeader,
    SessionMeta,
    StoredResponse,
    dumps,
    info_from_json,
    info_to_json,
)

SEP = "\x1f"  # joins kind, name and slot into a hash field; cannot occur in a JSON-ish name


def field_name(key: ArrayKey) -> str:
    return SEP.join(key)


def meta_fields(header: SessionHeader, arrays: dict, now: float) -> dict[str, Any]:
    index = [[*key, *info_to_json(info)] for key, info in arrays.items()]
    return {
        "token_hash": header.token_hash,
        "version": header.version,
        "step_count": header.step_count,
        "created_at": repr(header.created_at),
        "updated_at": repr(now),
        "last_used_at": repr(now),
        "program": dumps(header.program),
        "optimizer": dumps(header.optimizer),
        "requires_grad": dumps(header.requires_grad),
        "stored_bytes": header.stored_bytes,
        "owner": header.owner,
        "index": json.dumps(index),
    }


HEADER_FIELDS = ["token_hash", "version", "step_count", "created_at", "updated_at",
                 "last_used_at", "program", "optimizer", "requires_grad",
                 "stored_bytes", "owner"]  # fmt: skip


def header_from_hash(session_id: str, raw: dict[bytes, bytes]) -> SessionHeader:
    f = {k.decode(): v.decode() for k, v in raw.items()}
    return SessionHeader(
        id=session_id,
        token_hash=f["token_hash"],
        program=json.loads(f["program"]),
        optimizer=json.loads(f["optimizer"]),
        requires_grad=json.loads(f["requires_grad"]),
        version=int(f["version"]),
        step_count=int(f["step_count"]),
        created_at=float(f["created_at"]),
        updated_at=float(f["updated_at"]),
        last_used_at=float(f["last_used_at"]),
        stored_bytes=int(f["stored_bytes"]),
        owner=f.get("owner", ""),  # none on a session stored before owners were
    )


def meta_from_hash(session_id: str, raw: dict[bytes, bytes]) -> SessionMeta:
    index = {
        tuple(item[:3]): info_from_json(item[3:]) for item in json.loads(raw[b"index"].decode())
    }
    return SessionMeta(**vars(header_from_hash(session_id, raw)), arrays=index)


def response_fields(response: StoredResponse, now: float) -> dict[str, Any]:
    return {
        "key": response.key,
        "fingerprint": response.fingerprint,
        "status": response.status,
        "headers": json.dumps([list(pair) for pair in response.headers]),
        "body": response.body,
        "created_at": repr(now),
    }


def response_from_hash(raw: dict[bytes, bytes] | list[bytes]) -> StoredResponse:
    if isinstance(raw, list):  # HGETALL inside a script answers a flat list
        raw = dict(zip(raw[::2], raw[1::2], strict=True))
    return StoredResponse(
        key=raw[b"key"].decode(),
        fingerprint=raw[b"fingerprint"].decode(),
        status=int(raw[b"status"]),
        headers=[(n, v) for n, v in json.loads(raw[b"headers"])],
        body=raw[b"body"],
        created_at=float(raw[b"created_at"]),
    )


def flat(pairs: dict[Any, Any]) -> list[Any]:
    return [item for pair in pairs.items() for item in pair]
