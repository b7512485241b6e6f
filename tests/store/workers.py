"""Code run in child processes (spawned, so each opens its own connections)."""

import os
import time
from typing import Any

import numpy as np
import redis

from service.store import Changes, SessionStore, StoreLimits, VersionConflict
from service.store.redis_store import RedisStore
from service.store.sqlite_store import SQLiteStore


def open_store(kind: str, location: str) -> SessionStore:
    if kind == "sqlite":
        return SQLiteStore(location)
    return RedisStore(redis.Redis.from_url(location), StoreLimits())


def increment(kind: str, location: str, session_id: str, times: int, start: Any) -> int:
    """Add 1 to parameter `w` `times` times, re-reading and retrying on conflicts, as a
    client retrying on 412 does. Returns how many conflicts it met."""
    store = open_store(kind, location)
    start.wait()  # all workers begin together, so their commits really race
    conflicts = 0
    for _ in range(times):
        while True:
            current = store.get(session_id)
            changes = Changes(parameters={"w": current.parameters["w"] + 1}, steps=1)
            try:
                store.commit(session_id, current.version, changes)
                break
            except VersionConflict:
                conflicts += 1
    store.close()
    return conflicts


def _stall(signal_path: str) -> None:
    with open(signal_path, "w") as f:
        f.write("in commit")
    time.sleep(600)  # the parent kills this process here


class StallingSQLiteStore(SQLiteStore):
    """Stops inside the commit's transaction, after every write, before COMMIT."""

    signal_path = ""  # set: stall in the next commit

    def _before_commit(self) -> None:
        if self.signal_path:
            _stall(self.signal_path)


class StallingRedisStore(RedisStore):
    """Sends half of the commit's command to Redis, then stops: a client dying mid-write."""

    signal_path = ""  # set: stall in the next commit

    def _run(self, script: str, keys: list[str], args: list[Any]) -> Any:
        if script != "COMMIT" or not self.signal_path:
            return super()._run(script, keys, args)
        from service.store import redis_scripts

        command = ["EVAL", getattr(redis_scripts, script), len(keys), *keys, *args]
        packed = self.redis.connection_pool.get_connection().pack_command(*command)
        wire = b"".join(bytes(part) for part in packed)
        raw = self.redis.connection_pool.get_connection()
        raw.connect()
        raw._sock.sendall(wire[: len(wire) // 2])
        _stall(self.signal_path)


def commit_then_die(kind: str, location: str, session_id: str, signal_path: str) -> None:
    """Commit version 1 (acknowledged), then die in the middle of committing a large one."""
    if kind == "sqlite":
        store: Any = StallingSQLiteStore(location)
    else:
        store = StallingRedisStore(redis.Redis.from_url(location), StoreLimits())
    store.commit(session_id, 0, Changes(parameters={"w": np.full(1000, 1.0)}, steps=1))
    with open(signal_path + ".acked", "w") as f:
        f.write(str(os.getpid()))
    store.signal_path = signal_path
    big = np.random.default_rng(0).standard_normal(4_000_000)  # 32 MB
    store.commit(session_id, 1, Changes(parameters={"w": big, "extra": big}, grads={"w": big}))
