"""Steps stored as journal entries (service/sessions/journal.py), replayed on read.

Two app instances on one SQLite file are two workers: each keeps the sessions it computed
in memory, and must replay what the other committed. The backend is read directly to see
what was stored: entries instead of arrays, then the whole state at a checkpoint."""

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from service.store.factory import SQLITE_FILENAME
from service.store.sqlite_store import SQLiteStore
from tests.sessions.helpers import (
    Session,
    array,
    assert_close,
    assert_same,
    batch_inputs,
    batches,
    mlp_parameters,
    problem,
    session_body,
    torch_train,
)

MOMENTUM = {"type": "sgd", "lr": 0.1, "momentum": 0.9}


@contextmanager
def worker(data_dir, **settings) -> Iterator[httpx.Client]:
    with TestClient(create_app(Settings(data_dir=data_dir, **settings))) as client:
        yield client


def stored(data_dir, session_id):
    """The session as the backend holds it: arrays and journal entries, nothing replayed."""
    store = SQLiteStore(data_dir / SQLITE_FILENAME)
    try:
        return store.get(session_id)
    finally:
        store.close()


def everything(session: Session) -> dict[str, np.ndarray]:
    """Parameters, gradients and optimizer state, exactly, from the state export."""
    state = session.state()
    flat = {f"param/{n}": array(t) for n, t in state["parameters"].items()}
    flat.update({f"grad/{n}": array(t) for n, t in state["grads"].items()})
    for name, slots in state["optimizer_state"].items():
        flat.update({f"state/{name}/{slot}": array(t) for slot, t in slots.items()})
    return flat


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


def test_steps_are_stored_as_requests_and_replay_to_the_same_bits(data_dir):
    params = mlp_parameters()
    data = batches(6)
    with worker(data_dir) as a, worker(data_dir) as b:
        session = Session.create(a, session_body(params, MOMENTUM))
        for x, y in data[:3]:
            session.train(x, y)
        raw = stored(data_dir, session.id)
        assert sorted(raw.journal) == ["000000000001", "000000000002", "000000000003"]
        assert_same(raw.parameters, params)  # the arrays are still the created ones
        assert not raw.grads and not raw.optimizer_state
        assert raw.version == 3 and raw.step_count == 3

        on_a = everything(session)
        on_b = everything(Session(b, session.id, session.token))  # replays the 3 entries
        assert_same(on_b, on_a)
        info = Session(b, session.id, session.token).info()
        assert info["step_count"] == 3 and info["version"] == 3
        assert all(p["grad"] and p["optimizer_state"] for p in info["parameters"].values())

        # b steps on, a replays b's step on what it kept
        Session(b, session.id, session.token).train(*data[3])
        session.train(*data[4])
        Session(b, session.id, session.token).train(*data[5])
        assert_same(everything(session), everything(Session(b, session.id, session.token)))
    final = {n: a for n, a in everything_after_restart(data_dir, session).items()}
    expected = torch_train(params, MOMENTUM, data)
    assert_close({n: final[f"param/{n}"] for n in params}, expected)


def everything_after_restart(data_dir, session: Session) -> dict[str, np.ndarray]:
    with worker(data_dir) as fresh:
        return everything(Session(fresh, session.id, session.token))


def test_the_whole_state_is_stored_every_few_steps(data_dir):
    params = mlp_parameters()
    data = batches(5)
    with worker(data_dir, journal_max_entries=3) as a:
        session = Session.create(a, session_body(params, MOMENTUM))
        for x, y in data[:3]:
            session.train(x, y)
        assert len(stored(data_dir, session.id).journal) == 3
        session.train(*data[3])  # the fourth: a checkpoint instead of a fourth entry
        raw = stored(data_dir, session.id)
        assert not raw.journal and raw.version == 4
        live = everything(session)
        assert_same(raw.parameters, {n: live[f"param/{n}"] for n in params})
        assert_same(raw.grads, {n: live[f"grad/{n}"] for n in params})
        session.train(*data[4])
        assert sorted(stored(data_dir, session.id).journal) == ["000000000005"]


def test_entries_that_outweigh_the_state_make_a_checkpoint(data_dir):
    # 4 parameters of a few floats against a batch of 200 x 6: the request is the bigger
    params = mlp_parameters()
    x, y = batches(1, size=200)[0]
    with worker(data_dir) as a:
        session = Session.create(a, session_body(params, MOMENTUM))
        session.train(x, y)
        raw = stored(data_dir, session.id)
        assert not raw.journal and raw.grads  # stored as arrays


def test_a_parameter_edit_on_a_journaled_session_stores_everything(data_dir):
    params = mlp_parameters()
    with worker(data_dir) as a:
        session = Session.create(a, session_body(params, MOMENTUM))
        for x, y in batches(2):
            session.train(x, y)
        assert len(stored(data_dir, session.id).journal) == 2
        session.ok("PATCH", "/parameters/W1", {"requires_grad": False})
        raw = stored(data_dir, session.id)
        assert not raw.journal and raw.requires_grad["W1"] is False
        live = everything(session)
        assert_same(raw.parameters, {n: live[f"param/{n}"] for n in params})
        assert_same(
            {n: s["momentum_buffer"] for n, s in raw.optimizer_state.items()},
            {n: live[f"state/{n}/momentum_buffer"] for n in params},
        )
    assert_same(everything_after_restart(data_dir, session), live)


def test_a_failed_call_leaves_the_kept_session_as_it_was(data_dir):
    params = mlp_parameters()
    (x, y), (x2, y2) = batches(2)
    with worker(data_dir) as a:
        session = Session.create(a, session_body(params, MOMENTUM))
        session.train(x, y)
        before = everything(session)
        # the first batch steps in place, the second is refused: nothing may remain
        bad = {"batches": [{"inputs": batch_inputs(x2, y2)}, {"inputs": {"x": batch_inputs(
            x2, y2)["x"]}}]}  # fmt: skip
        problem(session.request("POST", "/train", bad), 422)
        assert_same(everything(session), before)
        # a dry run updates in place too, and must leave nothing either
        session.ok("POST", "/step", {"dry_run": True})
        assert_same(everything(session), before)


def test_replay_ignores_limits_lowered_since(data_dir):
    params = mlp_parameters()
    data = batches(2, size=10)  # 60 elements per batch
    with worker(data_dir) as a:
        session = Session.create(a, session_body(params, MOMENTUM))
        for x, y in data:
            session.train(x, y)
        live = everything(session)
    with worker(data_dir, max_tensor_elements=50) as lowered:
        assert_same(everything(Session(lowered, session.id, session.token)), live)


def test_workers_keeping_nothing_still_get_it_right(data_dir):
    params = mlp_parameters(hidden=64)  # a state that outweighs 4 requests
    data = batches(4)
    with worker(data_dir, session_cache_bytes=0) as a, worker(data_dir, session_cache_bytes=0) as b:
        session = Session.create(a, session_body(params, MOMENTUM))
        for i, (x, y) in enumerate(data):
            Session((a, b)[i % 2], session.id, session.token).train(x, y)
            assert stored(data_dir, session.id).journal  # each replays the other's entries
        final = everything(session)
    assert_close({n: final[f"param/{n}"] for n in params}, torch_train(params, MOMENTUM, data))


def test_a_worker_replays_only_the_steps_it_missed(data_dir):
    params = mlp_parameters(hidden=64)
    data = batches(4)
    with worker(data_dir) as a, worker(data_dir) as b:
        session = Session.create(a, session_body(params, MOMENTUM))
        session.train(*data[0])
        other = Session(b, session.id, session.token)
        other.train(*data[1])
        other.train(*data[2])
        kept = a.app.state.store

        def no_full_read(session_id):
            raise AssertionError("a re-read the whole session instead of catching up")

        kept._load = no_full_read
        session.train(*data[3])  # replays b's two entries on what a kept, then steps
        del kept._load
        assert_same(everything(session), everything(other))
    final = everything_after_restart(data_dir, session)
    assert_close({n: final[f"param/{n}"] for n in params}, torch_train(params, MOMENTUM, data))


def test_a_journal_that_would_take_too_long_to_replay_is_not_kept(data_dir):
    params = mlp_parameters(hidden=64)
    with worker(data_dir, journal_max_replay_seconds=0) as a:
        session = Session.create(a, session_body(params, MOMENTUM))
        for x, y in batches(2):
            session.train(x, y)
            raw = stored(data_dir, session.id)
            assert not raw.journal and raw.grads  # every call stored the whole state
