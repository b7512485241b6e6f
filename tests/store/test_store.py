"""Behaviour every SessionStore backend must have; each test runs on SQLite and on Redis."""

import numpy as np
import pytest

from service.store import (
    Changes,
    KeyReused,
    QuotaExceeded,
    SessionExists,
    SessionNotFound,
    SessionRecord,
    SessionStore,
    StoredResponse,
    VersionConflict,
    hash_token,
    request_fingerprint,
)

TOKEN = "t0ken-" + "x" * 37


def record(session_id="s1", **parameters) -> SessionRecord:
    if not parameters:
        parameters = {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}
    return SessionRecord(
        id=session_id,
        token_hash=hash_token(TOKEN),
        program={"expr": "x @ w", "loss": "out"},
        optimizer={"type": "adam", "lr": 0.001},
        parameters=parameters,
    )


def same(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit-exact: dtype, shape and bytes (so NaN payloads and -0.0 count too)."""
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def test_both_backends_implement_the_interface(backend):
    assert isinstance(backend.make(), SessionStore)


ODD_ARRAYS = {
    "f32": np.array([1.5, -0.0, np.nan, np.inf, -np.inf, 1e-45], dtype=np.float32),
    "f64": np.array([[np.pi, -1e308], [5e-324, np.nan]]),
    "f16": np.array([65504, -2.0], dtype=np.float16),
    "i64": np.array([-(2**63), 2**63 - 1, 0], dtype=np.int64),
    "i32": np.array([[-7]], dtype=np.int32),
    "u8": np.array([0, 255], dtype=np.uint8),
    "bool": np.array([[True, False], [False, True]]),
    "c64": np.array([1 + 2j], dtype=np.complex64),
    "scalar": np.array(3.25, dtype=np.float32),
    "scalar_int": np.array(7),
    "empty": np.zeros((0, 3), dtype=np.float32),
    "empty_0d_shape": np.zeros((2, 0, 1), dtype=np.bool_),
    "strided": np.arange(12, dtype=np.float64).reshape(3, 4).T,  # not C-contiguous
    "big_endian": np.array([1.0, 2.0], dtype=">f8"),
}


def test_arrays_of_every_dtype_round_trip_exactly(backend):
    store = backend.make()
    rec = record(**ODD_ARRAYS)
    rec.grads = {"f32": np.full(6, 0.5, dtype=np.float32)}
    rec.buffers = {"running_mean": np.array([0.1, 0.2]), "num_batches": np.array(3)}
    rec.optimizer_state = {
        "f32": {"exp_avg": np.ones(6, np.float32), "step": np.array(1.0, np.float32)}
    }
    assert store.create(rec) == 0
    got = store.get("s1")
    assert got.parameters.keys() == ODD_ARRAYS.keys()
    for name, array in ODD_ARRAYS.items():
        expected = array.astype(array.dtype.newbyteorder("="))  # stored little-endian
        assert same(got.parameters[name], expected), name
        assert got.parameters[name].flags.writeable
    assert same(got.grads["f32"], rec.grads["f32"])
    assert same(got.buffers["num_batches"], np.array(3))
    assert same(got.optimizer_state["f32"]["step"], np.array(1.0, np.float32))
    assert got.program == rec.program and got.optimizer == rec.optimizer


def test_object_arrays_are_refused_not_pickled(backend):
    store = backend.make()
    with pytest.raises(TypeError, match="object"):
        store.create(record(w=np.array([{"a": 1}], dtype=object)))
    assert store.count() == 0


def test_meta_describes_the_arrays_without_their_contents(backend, clock):
    store = backend.make(clock)
    rec = record(w=np.zeros((4, 3), np.float32), b=np.zeros(3, np.float64))
    rec.requires_grad = {"b": False}
    rec.grads = {"w": np.zeros((4, 3), np.float32)}
    store.create(rec)
    meta = store.get_meta("s1")
    assert (meta.version, meta.step_count, meta.created_at, meta.last_used_at) == (
        0, 0, clock.now, clock.now,
    )  # fmt: skip
    assert meta.requires_grad == {"w": True, "b": False}
    params = meta.infos("param")
    assert (params["w"].dtype, params["w"].shape, params["w"].nbytes) == ("float32", (4, 3), 48)
    assert meta.infos("grad").keys() == {"w"}
    assert meta.stored_bytes >= 48 + 24 + 48
    assert meta.token_hash == hash_token(TOKEN) and TOKEN not in repr(meta)


def test_commit_applies_changes_and_counts_versions(backend, clock):
    store = backend.make(clock)
    rec = record(w=np.zeros(2), b=np.ones(1))
    rec.optimizer_state = {"w": {"exp_avg": np.zeros(2), "exp_avg_sq": np.zeros(2)}}
    store.create(rec)
    clock.advance(5)
    changes = Changes(
        parameters={"w": np.array([1.0, 2.0]), "head": np.zeros(3)},
        requires_grad={"b": False, "head": True},
        grads={"w": np.array([0.5, 0.5])},
        optimizer_state={"w": {"momentum_buffer": np.ones(2)}},  # replaces all of w's slots
        optimizer={"type": "sgd", "lr": 0.1},
        steps=1,
    )
    assert store.commit("s1", 0, changes) == 1
    got = store.get("s1")
    assert (got.version, got.step_count, got.updated_at) == (1, 1, clock.now)
    assert same(got.parameters["w"], np.array([1.0, 2.0]))
    assert got.parameters.keys() == {"w", "b", "head"}
    assert got.requires_grad == {"w": True, "b": False, "head": True}
    assert got.optimizer_state == {
        "w": {"momentum_buffer": got.optimizer_state["w"]["momentum_buffer"]}
    }
    assert got.optimizer == {"type": "sgd", "lr": 0.1} and got.program == rec.program

    # Deleting a parameter takes its gradient, optimizer state and flag with it.
    assert store.commit("s1", 1, Changes(parameters={"w": None}, grads={"b": None})) == 2
    got = store.get("s1")
    assert (got.parameters.keys(), got.grads, got.optimizer_state) == ({"b", "head"}, {}, {})
    assert got.requires_grad == {"b": False, "head": True}
    assert set(store.get_meta("s1").arrays) == {("param", "b", ""), ("param", "head", "")}


def test_a_stale_version_is_refused_and_writes_nothing(backend):
    first, second = backend.make(), backend.make()  # two processes' worth of connections
    first.create(record(w=np.zeros(1)))
    assert first.commit("s1", 0, Changes(parameters={"w": np.ones(1)})) == 1
    with pytest.raises(VersionConflict) as info:
        second.commit("s1", 0, Changes(parameters={"w": np.full(1, 9.0)}))
    assert (info.value.expected, info.value.actual) == (0, 1)
    got = second.get("s1")
    assert got.version == 1 and same(got.parameters["w"], np.ones(1))


def test_operations_on_a_missing_session(backend):
    store = backend.make()
    assert store.get("nope") is None and store.get_meta("nope") is None
    with pytest.raises(SessionNotFound):
        store.commit("nope", 0, Changes())
    with pytest.raises(SessionNotFound):
        store.save_response("nope", StoredResponse(key="k", fingerprint="f", status=200))
    assert store.touch("nope") is False and store.delete("nope") is False
    assert store.get_response("nope", "k") is None


def test_an_id_cannot_be_created_twice(backend):
    store = backend.make()
    store.create(record())
    with pytest.raises(SessionExists):
        store.create(record())


def test_delete_removes_the_session_and_its_answers(backend):
    store = backend.make()
    store.create(record("a"))
    store.create(record("b"))
    store.save_response("a", StoredResponse(key="k", fingerprint="f", status=200))
    assert store.delete("a") is True
    assert store.get("a") is None and store.get_response("a", "k") is None
    assert store.ids() == ["b"] and store.count() == 1
    store.create(record("a"))  # the id is free again, with nothing left over
    assert store.get_response("a", "k") is None and store.get_meta("a").version == 0


def answer(key="key-1", body=b'{"loss": 0.5}', status=200) -> StoredResponse:
    fingerprint = request_fingerprint("POST", "/v1/sessions/s1/train", b'{"batch": 1}')
    headers = [("ETag", '"1"'), ("Content-Type", "application/json")]
    return StoredResponse(key=key, fingerprint=fingerprint, status=status, headers=headers,
                          body=body)  # fmt: skip


def test_an_idempotent_answer_is_committed_with_its_step_and_replayed(backend, clock):
    store = backend.make(clock)
    store.create(record(w=np.zeros(1)))
    step = Changes(parameters={"w": np.ones(1)}, steps=1, response=answer())
    assert store.commit("s1", 0, step) == 1
    stored = store.get_response("s1", "key-1")
    assert (stored.status, stored.headers, stored.body) == (200, answer().headers, answer().body)
    assert stored.created_at == clock.now

    # A retry of the same key, even against the new version, steps nothing.
    with pytest.raises(KeyReused) as info:
        store.commit("s1", 1, Changes(parameters={"w": np.full(1, 2.0)}, steps=1,
                                      response=answer(body=b"second")))  # fmt: skip
    assert info.value.response.body == answer().body
    got = store.get("s1")
    assert (got.version, got.step_count) == (1, 1) and same(got.parameters["w"], np.ones(1))

    # A retry made against the version it first saw is a replay too, not a conflict.
    with pytest.raises(KeyReused):
        store.commit("s1", 0, Changes(steps=1, response=answer()))

    # The route tells a retry from a reuse of the key for another request by the fingerprint.
    other = request_fingerprint("POST", "/v1/sessions/s1/train", b'{"batch": 2}')
    assert stored.fingerprint == answer().fingerprint != other


def test_an_answer_without_a_step_is_kept_once(backend):
    store = backend.make()
    store.create(record())
    first = store.save_response("s1", answer(status=422, body=b"bad"))
    assert first.status == 422
    again = store.save_response("s1", answer(status=200, body=b"other"))
    assert (again.status, again.body) == (422, b"bad")
    with pytest.raises(KeyReused):
        store.commit("s1", 0, Changes(steps=1, response=answer()))
    assert store.get_meta("s1").version == 0


def test_idempotency_keys_expire(backend, clock):
    store = backend.make(clock, idempotency_ttl_seconds=60, session_ttl_seconds=3600)
    store.create(record(w=np.zeros(1)))
    store.commit("s1", 0, Changes(steps=1, response=answer()))
    clock.advance(59)
    assert store.get_response("s1", "key-1") is not None
    clock.advance(2)
    assert store.get_response("s1", "key-1") is None
    assert store.commit("s1", 1, Changes(steps=1, response=answer(body=b"new"))) == 2
    assert store.get_response("s1", "key-1").body == b"new"


def test_idle_sessions_expire_and_use_keeps_them(backend, clock):
    store = backend.make(clock, session_ttl_seconds=100)
    store.create(record("used"))
    store.create(record("idle"))
    clock.advance(60)
    assert store.touch("used") is True
    clock.advance(50)  # "idle" is 110 s old, "used" was touched 50 s ago
    assert store.get("idle") is None and store.get_meta("idle") is None
    assert store.touch("idle") is False  # an expired session is not brought back
    with pytest.raises(SessionNotFound):
        store.commit("idle", 0, Changes())
    assert store.ids() == ["used"] and store.count() == 1
    assert store.commit("used", 0, Changes(steps=1)) == 1  # a commit is a use too
    clock.advance(99)
    assert store.get_meta("used").version == 1
    assert store.expire() == 1  # sweeps "idle" for good
    clock.advance(2)
    assert store.count() == 0 and store.expire() == 1


def test_the_session_cap_counts_live_sessions(backend, clock):
    store = backend.make(clock, max_sessions=2, session_ttl_seconds=100)
    store.create(record("a"))
    store.create(record("b"))
    with pytest.raises(QuotaExceeded) as info:
        store.create(record("c"))
    assert (info.value.limit, info.value.maximum, info.value.value) == ("max_sessions", 2, 3)
    assert store.get("c") is None and store.count() == 2
    store.delete("a")
    store.create(record("c"))
    clock.advance(101)  # both expire, and make room without an explicit sweep
    store.create(record("d"))
    assert store.ids() == ["d"]


def test_byte_caps_refuse_before_writing(backend):
    mib = np.zeros(1024 * 1024 // 8)  # 1 MiB of float64
    store = backend.make(max_session_bytes=int(3.5 * 2**20), max_store_bytes=4 * 2**20)
    with pytest.raises(QuotaExceeded) as info:
        store.create(record(a=mib, b=mib, c=mib, d=mib))
    assert info.value.limit == "max_session_bytes" and info.value.maximum == int(3.5 * 2**20)
    assert info.value.value > 4 * 2**20 and store.count() == 0

    store.create(record("s1", a=mib, b=mib))
    with pytest.raises(QuotaExceeded) as info:  # 2 MiB + 3 MiB would pass 4 MiB in all
        store.create(record("s2", a=mib, b=mib, c=mib))
    assert info.value.limit == "max_store_bytes" and store.get("s2") is None

    store.create(record("s2", a=mib))
    with pytest.raises(QuotaExceeded) as info:  # grows s1 to 3 MiB: 4 MiB + 1 MiB in all
        store.commit("s1", 0, Changes(parameters={"c": mib}, steps=1))
    assert info.value.limit == "max_store_bytes"
    with pytest.raises(QuotaExceeded) as info:
        store.commit("s1", 0, Changes(parameters={"c": mib, "d": mib}))
    assert info.value.limit == "max_session_bytes"
    assert store.get_meta("s1").version == 0 and store.get("s1").parameters.keys() == {"a", "b"}

    # Replacing an array by one of the same size, or shrinking, is always allowed.
    assert store.commit("s1", 0, Changes(parameters={"a": mib + 1, "b": None})) == 1
    store.create(record("s3", a=mib))  # the freed MiB is usable again


def test_only_the_token_hash_is_stored(backend, tmp_path):
    from service.store import verify_token

    store = backend.make()
    store.create(record())
    meta = store.get_meta("s1")
    assert verify_token(TOKEN, meta.token_hash)
    assert not verify_token(TOKEN[:-1] + "y", meta.token_hash)
    assert not verify_token(None, meta.token_hash) and not verify_token("", meta.token_hash)
    store.close()
    if backend.kind == "sqlite":
        raw = b"".join(p.read_bytes() for p in tmp_path.glob("sessions.sqlite3*"))
    else:
        import redis

        client = redis.Redis.from_url(backend.location)
        raw = b""
        for key in client.scan_iter():
            kind = client.type(key)
            if kind == b"hash":
                raw += b"".join(_flat_items(client.hgetall(key)))
            elif kind == b"zset":
                raw += b"".join(client.zrange(key, 0, -1))
            else:
                raw += client.get(key) if kind == b"string" else b"".join(client.smembers(key))
        client.close()
    assert TOKEN.encode() not in raw and hash_token(TOKEN).encode() in raw


def _flat_items(mapping: dict) -> list:
    return [item for pair in mapping.items() for item in pair]


def test_journal_entries_are_arrays_read_back_one_by_one(backend):
    store = backend.make()
    store.create(record())
    entries = {f"{v:012d}": np.frombuffer(f"train\n{{{v}}}".encode(), np.uint8) for v in (1, 2)}
    version = store.commit("s1", 0, Changes(journal={"000000000001": entries["000000000001"]}))
    store.commit("s1", version, Changes(journal={"000000000002": entries["000000000002"]}))
    meta = store.get_meta("s1")
    infos = {key: info for key, info in meta.arrays.items() if key[0] == "journal"}
    assert sorted(name for _, name, _ in infos) == sorted(entries)
    found = store.get_arrays("s1", infos)
    assert {name: a.tobytes() for (_, name, _), a in found.items()} == {
        name: a.tobytes() for name, a in entries.items()
    }
    # a checkpoint deletes the entries: asking for them again finds nothing
    store.commit("s1", 2, Changes(journal=dict.fromkeys(entries)))
    assert store.get_arrays("s1", infos) == {}
    assert store.get("s1").journal == {}


def test_the_header_is_the_meta_without_the_index(backend, clock):
    store = backend.make(clock)
    store.create(record())
    store.commit("s1", 0, Changes(grads={"w": np.ones((2, 3), np.float32)}, steps=1))
    header, meta = store.get_header("s1"), store.get_meta("s1")
    assert not hasattr(header, "arrays")
    assert {k: v for k, v in vars(meta).items() if k != "arrays"} == vars(header)
    assert header.version == 1 and header.step_count == 1
    clock.advance(store.limits.session_ttl_seconds + 1)
    assert store.get_header("s1") is None  # expired, as get_meta says


def test_a_commit_after_another_process_committed_plans_from_the_new_index(backend):
    # Each process keeps the meta of its own last commit; another's commit must not be
    # planned over with it.
    one, two = backend.make(), backend.make()
    one.create(record())
    one.commit("s1", 0, Changes(grads={"w": np.ones((2, 3), np.float32)}))
    two.commit("s1", 1, Changes(buffers={"b": np.zeros(2, np.float32)}))
    one.commit("s1", 2, Changes(grads={"w": None}))
    got = one.get("s1")
    assert got.version == 3 and "b" in got.buffers and not got.grads
    assert set(one.get_meta("s1").arrays) == {("param", "w", ""), ("buffer", "b", "")}
