"""Each owner's caps (issue #12 item 5): a client's live sessions and stored bytes are counted
by the store itself, on SQLite and on Redis, so they hold across workers and replicas; one
client at its cap leaves the others able to create. Refusals say how long to wait."""

import dataclasses
import sqlite3

import numpy as np
import pytest

from service.store import ClientCaps, QuotaExceeded, SessionRecord
from service.store.sqlite_schema import SCHEMA_VERSION
from service.store.sqlite_store import SQLiteStore
from tests.store.test_store import record

MIB = np.zeros(1024 * 1024 // 8)  # 1 MiB of float64


def owned(session_id: str, owner: str, **parameters) -> SessionRecord:
    return dataclasses.replace(record(session_id, **parameters), owner=owner)


def test_an_owner_at_its_session_cap_leaves_room_for_the_others(backend, clock):
    store = backend.make(clock, max_sessions=10, max_client_sessions=2, session_ttl_seconds=100)
    store.create(owned("a1", "addr:10.0.0.1"))
    clock.advance(30)
    store.create(owned("a2", "addr:10.0.0.1"))
    with pytest.raises(QuotaExceeded) as info:
        store.create(owned("a3", "addr:10.0.0.1"))
    exc = info.value
    assert (exc.limit, exc.maximum, exc.value, exc.owner) == (
        "max_client_sessions", 2, 3, "addr:10.0.0.1",
    )  # fmt: skip
    assert exc.retry_after == pytest.approx(70)  # a1, used 30 s ago, expires first
    assert store.get("a3") is None
    store.create(owned("b1", "addr:10.0.0.2"))  # another client is not refused
    store.create(record("unowned"))  # nor a session without an owner
    # Use keeps a session alive and counted; deleting one makes room at once.
    clock.advance(60)
    assert store.touch("a1")
    clock.advance(45)  # a2 expired (105 s idle), a1 was touched 45 s ago
    store.create(owned("a3", "addr:10.0.0.1"))
    with pytest.raises(QuotaExceeded):
        store.create(owned("a4", "addr:10.0.0.1"))
    assert store.delete("a1")
    store.create(owned("a4", "addr:10.0.0.1"))


def test_an_owners_bytes_are_capped_on_create_and_on_growth(backend, clock):
    store = backend.make(clock, max_client_bytes=int(3.5 * 2**20), session_ttl_seconds=100)
    store.create(owned("a1", "key:alice", a=MIB, b=MIB))
    with pytest.raises(QuotaExceeded) as info:
        store.create(owned("a2", "key:alice", a=MIB, b=MIB))
    assert info.value.limit == "max_client_bytes" and info.value.maximum == int(3.5 * 2**20)
    assert info.value.retry_after == pytest.approx(100)
    store.create(owned("a2", "key:alice", a=MIB))
    with pytest.raises(QuotaExceeded) as info:  # growth past the owner's 3.5 MiB
        store.commit("a1", 0, dataclasses.replace(_grow(), steps=1))
    assert info.value.limit == "max_client_bytes" and store.get_meta("a1").version == 0
    store.create(owned("b1", "key:bob", a=MIB, b=MIB))  # bob's bytes are his own
    assert store.delete("a2")
    assert store.commit("a1", 0, _grow()) == 1  # the freed MiB is alice's again


def test_a_session_bigger_than_its_owners_cap_is_never_worth_waiting_for(backend):
    store = backend.make(max_client_bytes=2**20)
    with pytest.raises(QuotaExceeded) as info:
        store.create(owned("a1", "addr:10.0.0.1", a=MIB, b=MIB))
    assert info.value.limit == "max_client_bytes" and info.value.retry_after is None


def test_an_owners_own_caps_replace_the_defaults_when_asked(backend):
    caps = {"key:big": ClientCaps(3, 0), "key:small": ClientCaps(1, 0)}
    store = backend.make(max_client_sessions=2, client_caps=caps.get)
    for i in range(3):
        store.create(owned(f"big{i}", "key:big"))
    store.create(owned("small0", "key:small"))
    for owner, maximum in (("key:big", 3), ("key:small", 1), ("addr:x", None)):
        if maximum is None:  # an owner without its own caps has the defaults (2)
            store.create(owned("x0", owner))
            store.create(owned("x1", owner))
            maximum = 2
        with pytest.raises(QuotaExceeded) as info:
            store.create(owned(f"{owner}-more", owner))
        assert (info.value.limit, info.value.maximum) == ("max_client_sessions", maximum)


def test_the_whole_store_being_full_says_when_room_is_expected(backend, clock):
    store = backend.make(clock, max_sessions=2, session_ttl_seconds=100)
    store.create(owned("a", "addr:1"))
    clock.advance(10)
    store.create(owned("b", "addr:2"))
    with pytest.raises(QuotaExceeded) as info:
        store.create(owned("c", "addr:3"))
    assert info.value.limit == "max_sessions" and info.value.retry_after == pytest.approx(90)
    assert info.value.owner == ""


def test_two_store_objects_share_the_owners_count(backend):
    """Two workers (or replicas): each has its own store object over the same data."""
    one, two = backend.make(max_client_sessions=2), backend.make(max_client_sessions=2)
    one.create(owned("a1", "addr:1"))
    two.create(owned("a2", "addr:1"))
    for store in (one, two):
        with pytest.raises(QuotaExceeded):
            store.create(owned("a3", "addr:1"))


def _grow():
    from service.store import Changes

    return Changes(parameters={"c": MIB})


def test_an_old_sqlite_file_opens_and_its_sessions_have_no_owner(tmp_path):
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)  # schema 1, as the previous release wrote it
    conn.executescript(
        """
        CREATE TABLE schema_version (version INTEGER NOT NULL);
        INSERT INTO schema_version VALUES (1);
        CREATE TABLE sessions (id TEXT PRIMARY KEY, token_hash TEXT NOT NULL,
            version INTEGER NOT NULL, step_count INTEGER NOT NULL, created_at REAL NOT NULL,
            updated_at REAL NOT NULL, last_used_at REAL NOT NULL, program TEXT NOT NULL,
            optimizer TEXT NOT NULL, requires_grad TEXT NOT NULL, stored_bytes INTEGER NOT NULL);
        """
    )
    conn.execute(
        "INSERT INTO sessions VALUES ('old', 'h', 3, 3, 1e10, 1e10, 1e10, '{}', '{}', '{}', 10)"
    )
    conn.commit()
    conn.close()
    store = SQLiteStore(path, clock=lambda: 1e10 + 1)
    meta = store.get_meta("old")
    assert (meta.version, meta.owner) == (3, "")
    store.create(owned("new", "addr:1"))
    assert store.get_meta("new").owner == "addr:1"
    store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    SQLiteStore(path).close()  # and opens again, migrated once
