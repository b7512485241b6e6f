"""One store suite, two backends: every test taking `backend` runs against a SQLite file in
tmp_path and against a real redis-server started here."""

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from service.store import SessionStore, StoreLimits
from service.store.redis_store import RedisStore
from service.store.sqlite_store import SQLiteStore
from tests.store.redis_server import RedisServer


class FakeClock:
    """An injectable clock that tests move forward by hand."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Backend:
    """Makes store objects over one shared database (a file, or one Redis db)."""

    kind: str
    location: str  # the SQLite path or the Redis URL
    stores: list[SessionStore] = field(default_factory=list)

    def make(self, clock=None, **limits) -> SessionStore:
        kwargs = {"clock": clock} if clock is not None else {}
        if self.kind == "sqlite":
            store = SQLiteStore(self.location, StoreLimits(**limits), **kwargs)
        else:
            store = RedisStore(redis.Redis.from_url(self.location), StoreLimits(**limits), **kwargs)
        self.stores.append(store)
        return store

    def close(self) -> None:
        for store in self.stores:
            store.close()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "redis"])
def backend(request, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        made = Backend("sqlite", str(tmp_path / "sessions.sqlite3"))
    else:
        server = request.getfixturevalue("redis_server")
        with redis.Redis.from_url(server.url) as client:
            client.flushdb()  # each test starts from an empty store
        made = Backend("redis", server.url)
    yield made
    made.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
