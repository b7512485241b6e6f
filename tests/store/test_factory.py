"""make_store picks the backend AUTOGRAD_STORE names and passes the settings' caps on."""

import threading

import numpy as np
import pytest
from pydantic import ValidationError

from service.settings import Settings
from service.store import Changes, VersionConflict
from service.store.factory import make_store
from service.store.redis_store import RedisStore
from service.store.sqlite_store import SQLiteStore
from tests.store.test_store import record


def test_sqlite_is_the_default_and_lives_in_the_data_dir(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", max_sessions=7, max_session_bytes=99,
                        idempotency_ttl_seconds=5)  # fmt: skip
    store = make_store(settings)
    assert isinstance(store, SQLiteStore)
    assert (tmp_path / "data" / "sessions.sqlite3").is_file()
    assert (store.limits.max_sessions, store.limits.max_session_bytes) == (7, 99)
    assert store.limits.idempotency_ttl_seconds == 5
    store.close()


def test_a_redis_url_gives_the_redis_store(redis_server, tmp_path):
    store = make_store(Settings(store=redis_server.url, data_dir=tmp_path))
    assert isinstance(store, RedisStore) and store.redis.ping()
    store.close()


def test_unknown_stores_are_refused_at_startup():
    with pytest.raises(ValidationError):
        Settings(store="mongodb://localhost")


def test_the_memory_store_serves_threads_and_keeps_nothing(tmp_path):
    settings = Settings(store="memory", data_dir=tmp_path)
    store = make_store(settings)
    store.create(record(w=np.zeros(())))

    def bump() -> None:
        for _ in range(20):
            while True:
                current = store.get("s1")
                try:
                    store.commit(
                        "s1",
                        current.version,
                        Changes(parameters={"w": current.parameters["w"] + 1}),
                    )
                    break
                except VersionConflict:
                    pass

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.get("s1").parameters["w"] == 80
    store.close()
    assert make_store(settings).count() == 0 and list(tmp_path.iterdir()) == []
