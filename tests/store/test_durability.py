"""Sessions outlive the processes that hold them: Redis with appendonly, SQLite reopened."""

import logging
import sqlite3

import numpy as np
import pytest

from service.store import Changes, StoreError
from service.store.redis_store import TTL_GRACE_SECONDS, RedisStore
from service.store.sqlite_schema import SCHEMA_VERSION
from service.store.sqlite_store import SQLiteStore
from tests.store.redis_server import RedisServer
from tests.store.test_store import answer, record, same


def test_sessions_survive_a_killed_redis_with_appendonly(tmp_path):
    server = RedisServer(tmp_path / "redis", appendonly=True).start()
    try:
        store = RedisStore.from_url(server.url)
        store.create(record(w=np.arange(5.0)))
        step = Changes(parameters={"w": np.arange(5.0) * 2}, grads={"w": np.ones(5)}, steps=1,
                       response=answer())  # fmt: skip
        assert store.commit("s1", 0, step) == 1
        store.close()
        server.kill()  # SIGKILL: no shutdown save; only the AOF has the data
        server.start()

        store = RedisStore.from_url(server.url)
        got = store.get("s1")
        assert (got.version, got.step_count) == (1, 1)
        assert same(got.parameters["w"], np.arange(5.0) * 2) and same(got.grads["w"], np.ones(5))
        assert store.get_response("s1", "key-1").body == answer().body
        assert store.count() == 1
        keys = store._keys("s1")
        ttl_ms = (store.limits.session_ttl_seconds + TTL_GRACE_SECONDS) * 1000
        assert ttl_ms - 60_000 < store.redis.pttl(keys["meta"]) <= ttl_ms  # Redis collects it
        assert store.commit("s1", 1, Changes(steps=1)) == 2
        store.close()
    finally:
        server.stop()


def test_redis_without_appendonly_is_warned_about(redis_server, caplog):
    with caplog.at_level(logging.WARNING, logger="service.store.redis_store"):
        RedisStore.from_url(redis_server.url).close()
    assert "appendonly" in caplog.text


def test_sqlite_sessions_survive_reopening_and_the_schema_is_made_once(tmp_path):
    path = tmp_path / "sessions.sqlite3"
    store = SQLiteStore(path)
    store.create(record(w=np.arange(3.0)))
    store.commit("s1", 0, Changes(steps=1))
    store.close()
    again = SQLiteStore(path)
    assert again.get("s1").version == 1 and same(again.get("s1").parameters["w"], np.arange(3.0))
    again.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_sqlite_refuses_a_file_from_a_newer_schema(tmp_path):
    path = tmp_path / "sessions.sqlite3"
    SQLiteStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match="newer"):
        SQLiteStore(path)
