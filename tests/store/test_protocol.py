"""The store as the session domain sees it: every store object it is given declares the whole
SessionStore Protocol (lock and forget included, so nothing is duck-typed), and a driver that
cannot reach its server raises the store's own StoreUnavailable, which the HTTP layer answers
with 503 exactly as it answered the driver's exception before."""

import pytest
import redis
from fastapi.testclient import TestClient

from service.app import create_app
from service.metrics import TimedStore
from service.sessions.live import LiveStore
from service.settings import Settings
from service.store import SessionStore, StoreLimits, StoreUnavailable
from service.store.redis_store import RedisStore
from service.store.sqlite_store import SQLiteStore
from tests.service.conftest import free_port


def test_every_store_the_domain_is_given_declares_the_whole_protocol(tmp_path):
    driver = SQLiteStore(":memory:")
    settings = Settings(data_dir=tmp_path)
    for store in (driver, TimedStore(driver), LiveStore(TimedStore(driver), settings)):
        assert isinstance(store, SessionStore), type(store).__name__
        with store.lock("s1"):
            store.forget("s1")
    driver.close()


def test_a_redis_that_does_not_answer_is_the_stores_own_error():
    unreachable = redis.Redis(port=free_port(), socket_connect_timeout=1)  # nothing listens
    store = RedisStore(unreachable, StoreLimits())
    with pytest.raises(StoreUnavailable) as info:
        store.get_meta("s1")
    assert info.value.reason == "ConnectionError"
    assert isinstance(info.value.__cause__, redis.ConnectionError)


class DownDriver:
    """A driver whose server does not answer: every call raises what RedisStore raises then."""

    limits, clock = StoreLimits(), staticmethod(lambda: 0.0)

    def __getattr__(self, name):
        def refuse(*args, **kwargs):
            cause = redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379.")
            raise StoreUnavailable(cause) from cause

        return refuse

    def close(self) -> None:
        pass


def test_a_session_call_while_the_store_is_down_is_503_not_ready(tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    with TestClient(create_app(settings)) as client:
        client.app.state.store = LiveStore(DownDriver(), settings)
        response = client.get("/v1/sessions/s1", headers={"Authorization": "Bearer t0ken"})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    body = response.json()
    assert body["type"] == "/problems/not-ready"
    assert body["checks"] == {"store": "ConnectionError"}
