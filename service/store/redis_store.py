"""Sessions in Redis, shared by several service replicas.

A commit reads the session's index, works out its plan (plan.py), then runs one Lua script
that re-checks the version and writes everything: compare-and-set, so two replicas stepping
one session never lose an update, and the loser gets VersionConflict.

Idle sessions and idempotent answers carry Redis TTLs, so they vanish without a sweep; reads
also compare timestamps against the store's clock, which is what tests move forward. The
global size accounting (`sizes`, `bytes`) is settled by `expire`, which `create` runs first.

Durability is Redis's: run it with `appendonly yes` (and `appendfsync always` for the same
guarantee as SQLite's FULL) or an acknowledged step can be lost when Redis restarts."""

import functools
import hashlib
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, ParamSpec, TypeVar

import numpy as np
import redis

from service.store import redis_scripts as lua
from service.store.base import MetaCache, stale_error, until_expiry, wall_clock
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
from service.store.faults import redis_memory_full
from service.store.plan import Plan, plan_commit, plan_create
from service.store.protocol import ClientCaps, Clock, StoreLimits
from service.store.records import (
    ArrayInfo,
    ArrayKey,
    Changes,
    SessionHeader,
    SessionMeta,
    SessionRecord,
    StoredResponse,
    decode_array,
)
from service.store.redis_codec import (
    HEADER_FIELDS,
    SEP,
    field_name,
    flat,
    header_from_hash,
    meta_fields,
    meta_from_hash,
    response_fields,
    response_from_hash,
)

log = logging.getLogger(__name__)

SWEEP_BATCH = 100
# Redis's own TTL is garbage collection only: sessions expire by the store's clock first.
TTL_GRACE_SECONDS = 60
PROBE_TTL_MS = 60_000  # the readiness probe's key goes away by itself


P = ParamSpec("P")
R = TypeVar("R")


def _answering(method: Callable[P, R]) -> Callable[P, R]:
    """Redis not answering (refused, reset, timed out) leaves the store as its own
    StoreUnavailable, and Redis refusing writes as a StorageFault: over `maxmemory` (OOM),
    or unable to persist (MISCONF, a full or failing disk): callers never see a redis
    exception. Either refusal comes before a script's first write, so nothing is half done."""

    @functools.wraps(method)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise StoreUnavailable(exc) from exc
        except redis.ResponseError as exc:
            # (Redis names the script that met the refusal: not for the operators' reason)
            message = str(exc).split(" script: ")[0]
            if isinstance(exc, redis.OutOfMemoryError):
                raise StorageFault("full", exc, message) from exc
            if message.startswith("MISCONF"):
                raise StorageFault("io", exc, message) from exc
            raise

    return call


class RedisStore:
    def __init__(
        self,
        client: redis.Redis,
        limits: StoreLimits | None = None,
        clock: Clock = wall_clock,
        prefix: str = "autograd:",
    ) -> None:
        self.redis = client
        self.limits = limits or StoreLimits()
        self.clock = clock
        self.prefix = prefix
        self._metas = MetaCache()
        self._scripts = {
            name: client.register_script(getattr(lua, name))
            for name in ("CREATE", "COMMIT", "SAVE_RESPONSE", "TOUCH", "DELETE")
        }
        self._ttl_ms = int((self.limits.session_ttl_seconds + TTL_GRACE_SECONDS) * 1000)
        self._response_ttl_ms = max(1, int(self.limits.idempotency_ttl_seconds * 1000))

    @classmethod
    def from_url(cls, url: str, limits: StoreLimits | None = None, **kwargs: Any) -> "RedisStore":
        store = cls(redis.Redis.from_url(url), limits, **kwargs)
        store._warn_if_not_durable()
        return store

    def _warn_if_not_durable(self) -> None:
        try:
            config = self.redis.config_get("appendonly") | self.redis.config_get("maxmemory-policy")
        except redis.ResponseError:  # CONFIG is often disabled on managed Redis
            return
        # redis-py answers CONFIG GET with str keys and values, even without decode_responses.
        if config.get("appendonly") != "yes":
            log.warning("Redis runs without appendonly: acknowledged steps can be lost")
        policy = config.get("maxmemory-policy", "noeviction")
        if policy != "noeviction":
            log.warning("Redis may evict keys (maxmemory-policy %s): sessions can break", policy)

    # -- keys --

    def _keys(self, session_id: str) -> dict[str, str]:
        s = f"{self.prefix}s:{session_id}:"
        p = self.prefix
        return {"meta": s + "meta", "arr": s + "arr", "idle": p + "idle", "sizes": p + "sizes",
                "bytes": p + "bytes", "resps": s + "resps", "owners": p + "owners",
                "client_bytes": p + "client_bytes"}  # fmt: skip

    def _owner_idle(self, owner: str) -> str:
        """The owner's sessions by last use (the scripts build the same name from prefix)."""
        return f"{self.prefix}c:{owner}:idle"

    def _response_key(self, session_id: str, key: str) -> str:
        digest = hashlib.sha256(key.encode()).hexdigest()  # any key text, bounded key length
        return f"{self.prefix}s:{session_id}:resp:{digest}"

    def _run(self, script: str, keys: list[str], args: list[Any]) -> Any:
        """Every write goes through here (a seam for the crash test)."""
        return self._scripts[script](keys=keys, args=args)

    def _session_cutoff(self, now: float) -> float:
        return now - self.limits.session_ttl_seconds

    # -- reads --

    def _live(self, raw: dict[bytes, bytes]) -> bool:
        return bool(raw) and float(raw[b"last_used_at"]) > self._session_cutoff(self.clock())

    @_answering
    def get_meta(self, session_id: str) -> SessionMeta | None:
        raw = self.redis.hgetall(self._keys(session_id)["meta"])
        return meta_from_hash(session_id, raw) if self._live(raw) else None

    @_answering
    def get_header(self, session_id: str) -> SessionHeader | None:
        values = self.redis.hmget(self._keys(session_id)["meta"], HEADER_FIELDS)
        raw = {f.encode(): v for f, v in zip(HEADER_FIELDS, values, strict=True) if v is not None}
        return header_from_hash(session_id, raw) if self._live(raw) else None

    @_answering
    def get(self, session_id: str) -> SessionRecord | None:
        k = self._keys(session_id)
        pipe = self.redis.pipeline(transaction=True)  # MULTI: meta and arrays of one version
        raw, arrays = pipe.hgetall(k["meta"]).hgetall(k["arr"]).execute()
        if not self._live(raw):
            return None
        meta = meta_from_hash(session_id, raw)
        fields = {name: value for name, value in vars(meta).items() if name != "arrays"}
        record = SessionRecord(**fields)
        by_key = {tuple(f.decode().split(SEP)): data for f, data in arrays.items()}
        missing = meta.arrays.keys() - by_key.keys()
        if missing:  # only if Redis dropped a key it was told to keep (eviction)
            raise StoreError(f"session {session_id!r} lost arrays {sorted(missing)}")
        record.set_flat_arrays(
            {key: decode_array(i, by_key[key]) for key, i in meta.arrays.items()}
        )
        return record

    @_answering
    def get_arrays(
        self, session_id: str, infos: dict[ArrayKey, ArrayInfo]
    ) -> dict[ArrayKey, np.ndarray]:
        """Some arrays of the session (`infos` from its meta); absent ones are left out."""
        keys = list(infos)
        values = self.redis.hmget(self._keys(session_id)["arr"], [field_name(k) for k in keys])
        return {
            key: decode_array(infos[key], data)
            for key, data in zip(keys, values, strict=True)
            if data is not None and len(data) == infos[key].nbytes
        }

    @_answering
    def count(self) -> int:
        return self.redis.zcount(
            self.prefix + "idle", f"({self._session_cutoff(self.clock())!r}", "+inf"
        )

    @_answering
    def ids(self) -> list[str]:
        cutoff = f"({self._session_cutoff(self.clock())!r}"
        return [i.decode() for i in self.redis.zrangebyscore(self.prefix + "idle", cutoff, "+inf")]

    @_answering
    def get_response(self, session_id: str, key: str) -> StoredResponse | None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.hget(self._keys(session_id)["meta"], "last_used_at")
        last, raw = pipe.hgetall(self._response_key(session_id, key)).execute()
        now = self.clock()
        if last is None or float(last) <= self._session_cutoff(now) or not raw:
            return None
        response = response_from_hash(raw)
        expired = response.created_at <= now - self.limits.idempotency_ttl_seconds
        return None if expired else response

    # -- writes --

    @_answering
    def create(self, record: SessionRecord) -> int:
        plan = plan_create(record, self.limits)
        self.expire()  # expired sessions must not count against the caps
        now = self.clock()
        plan.header.created_at = now
        meta = meta_fields(plan.header, plan.arrays, now)
        arrays = {field_name(key): data for key, (_, data) in plan.writes.items()}
        k = self._keys(record.id)
        owner = plan.header.owner
        caps = self.limits.caps(owner) or ClientCaps(0, 0)
        args = [record.id, repr(now), self._ttl_ms, self.limits.max_sessions,
                self.limits.max_store_bytes, plan.header.stored_bytes, owner, caps.max_sessions,
                caps.max_bytes, repr(self._session_cutoff(now)), len(meta),
                *flat(meta), *flat(arrays)]  # fmt: skip
        keys = [k[n] for n in ("meta", "arr", "idle", "sizes", "bytes", "owners", "client_bytes")]
        result = self._run("CREATE", [*keys, self._owner_idle(owner)], args)
        if result[0] == b"exists":
            raise SessionExists(record.id)
        self._raise_quota(result, plan.header)
        return 0

    def _raise_quota(self, result: list[Any], header: SessionHeader) -> None:
        """A script's refusal as QuotaExceeded, with the wait until the earliest of the
        sessions it counted expires (read after the script: advice, not a promise)."""
        if result[0] != b"quota":
            return
        limit, value = result[1].decode(), int(result[2])
        if limit in QuotaExceeded.CLIENT:
            caps = self.limits.caps(header.owner) or ClientCaps(0, 0)
            maximum = caps.max_sessions if limit == "max_client_sessions" else caps.max_bytes
            counted, owner = self._owner_idle(header.owner), header.owner
        else:
            maximum, counted, owner = getattr(self.limits, limit), self.prefix + "idle", ""
        wait = None
        if not (limit.endswith("_bytes") and header.stored_bytes > maximum):  # else: never fits
            now = self.clock()
            first = self.redis.zrangebyscore(
                counted, f"({self._session_cutoff(now)!r}", "+inf", 0, 1, withscores=True
            )
            wait = until_expiry(first[0][1] if first else None, self.limits, now)
        raise QuotaExceeded(limit, maximum, value, wait, owner)

    @_answering
    def commit(
        self,
        session_id: str,
        expected_version: int,
        changes: Changes,
        base: SessionRecord | None = None,  # what the changes were computed on: not needed
    ) -> int:
        meta = self._metas.get(session_id, expected_version) or self.get_meta(session_id)
        if meta is None:
            raise SessionNotFound(session_id)
        if meta.version != expected_version:  # fail fast, before encoding anything
            raise stale_error(self, meta, expected_version, changes)
        plan = plan_commit(meta, changes, self.limits)
        try:
            return self._commit(plan, expected_version, changes.response)
        except QuotaExceeded as exc:  # sessions expired but not yet swept still count bytes
            if exc.limit not in ("max_store_bytes", "max_client_bytes") or not self.expire():
                raise
            return self._commit(plan, expected_version, changes.response)  # room was freed

    def _commit(self, plan: Plan, expected: int, response: StoredResponse | None) -> int:
        session_id, now = plan.header.id, self.clock()
        k = self._keys(session_id)
        meta = meta_fields(plan.header, plan.arrays, now)
        resp = response_fields(response, now) if response else {}
        resp_key = self._response_key(session_id, response.key) if response else k["resps"]
        deletes = [field_name(key) for key in plan.deletes]
        arrays = {field_name(key): data for key, (_, data) in plan.writes.items()}
        owner = plan.header.owner
        caps = self.limits.caps(owner) or ClientCaps(0, 0)
        args = [session_id, repr(now), self._ttl_ms, repr(self._session_cutoff(now)), expected,
                self.limits.max_store_bytes, plan.header.stored_bytes,
                repr(now - self.limits.idempotency_ttl_seconds), self._response_ttl_ms,
                owner, caps.max_bytes, len(meta), *flat(meta), len(resp), *flat(resp),
                len(deletes), *deletes, *flat(arrays)]  # fmt: skip
        keys = [k[n] for n in ("meta", "arr", "idle", "sizes", "bytes", "resps")]
        keys += [resp_key, k["client_bytes"], self._owner_idle(owner)]
        result = self._run("COMMIT", keys, args)
        if result[0] == b"missing":
            raise SessionNotFound(session_id)
        if result[0] == b"conflict":
            self._metas.drop(session_id)
            raise VersionConflict(session_id, expected, int(result[1]))
        if result[0] == b"replay":
            raise KeyReused(response_from_hash(result[1]))
        self._raise_quota(result, plan.header)
        self._metas.put(plan.header, plan.arrays)
        return plan.header.version

    @_answering
    def save_response(self, session_id: str, response: StoredResponse) -> StoredResponse:
        now = self.clock()
        k = self._keys(session_id)
        fields = response_fields(response, now)
        args = [repr(now), repr(self._session_cutoff(now)),
                repr(now - self.limits.idempotency_ttl_seconds), self._response_ttl_ms,
                self._ttl_ms, *flat(fields)]  # fmt: skip
        keys = [k["meta"], k["resps"], self._response_key(session_id, response.key)]
        result = self._run("SAVE_RESPONSE", keys, args)
        if result[0] == b"missing":
            raise SessionNotFound(session_id)
        if result[0] == b"replay":
            return response_from_hash(result[1])
        return StoredResponse(**{**vars(response), "created_at": now})

    @_answering
    def touch(self, session_id: str) -> bool:
        now = self.clock()
        k = self._keys(session_id)
        keys = [k["meta"], k["arr"], k["idle"], k["resps"]]
        args = [session_id, repr(now), repr(self._session_cutoff(now)), self._ttl_ms, self.prefix]
        return bool(self._run("TOUCH", keys, args))

    def _delete(self, session_id: str, only_if_idle: bool) -> bool:
        k = self._keys(session_id)
        names = ("meta", "arr", "idle", "sizes", "bytes", "resps", "owners", "client_bytes")
        keys = [k[n] for n in names]
        args = [session_id, repr(self._session_cutoff(self.clock())),
                "1" if only_if_idle else "0", self.prefix]  # fmt: skip
        return bool(self._run("DELETE", keys, args))

    @_answering
    def delete(self, session_id: str) -> bool:
        self._metas.drop(session_id)
        return self._delete(session_id, only_if_idle=False)

    @_answering
    def expire(self) -> int:
        """Sweep idle sessions (found through the `idle` zset by score, never by KEYS).
        Idempotent answers need no sweep: their TTL removes them."""
        removed = 0
        cutoff = repr(self._session_cutoff(self.clock()))
        while ids := self.redis.zrangebyscore(self.prefix + "idle", "-inf", cutoff, 0, SWEEP_BATCH):
            for session_id in ids:
                self._delete(session_id.decode(), only_if_idle=True)
                removed += 1
        return removed

    def storage_fault(self) -> str | None:
        """What every worker sees (one Redis for all): `maxmemory` nearly reached under
        noeviction, or a probe write refused (MISCONF: Redis cannot persist)."""
        try:
            return self._probe()
        except StorageFault as exc:
            return exc.reason

    @_answering
    def _probe(self) -> str | None:
        try:
            memory = self.redis.info("memory")
        except redis.ResponseError:  # INFO renamed away (managed Redis): the write alone
            memory = {}
        full = redis_memory_full(memory)
        if full is None:
            self.redis.set(self.prefix + "write-probe", b"1", px=PROBE_TTL_MS)
        return full

    def lock(self, session_id: str) -> AbstractContextManager[object]:
        return nullcontext()  # keeps nothing between calls: the commit's version check suffices

    def forget(self, session_id: str) -> None:  # keeps nothing
        pass

    def close(self) -> None:
        self.redis.close()
