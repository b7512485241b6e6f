"""Describing a session costs a few passes over its arrays, however many parameters it has:
GET /v1/sessions/{id} and the answers of create and fork list every parameter with its
optimizer slots, and once looked the slots up by scanning every array per parameter (a
10,000-parameter Adam session took ~23 s per GET, on the event loop)."""

from __future__ import annotations

from service.http.sessions import public
from service.store.records import GRAD, PARAM, STATE, ArrayInfo, SessionMeta

ADAM = ("exp_avg", "exp_avg_sq", "step")


class CountingArrays(dict):
    """The session's array index, counting the passes made over it."""

    passes = 0

    def __iter__(self):
        CountingArrays.passes += 1
        return super().__iter__()

    def items(self):
        CountingArrays.passes += 1
        return super().items()


def _meta(n: int) -> SessionMeta:
    info = ArrayInfo("float32", (1,), 4)
    arrays = CountingArrays()
    for i in range(n):
        arrays[(PARAM, f"p{i}", "")] = info
        arrays[(GRAD, f"p{i}", "")] = info
        for slot in reversed(ADAM):
            arrays[(STATE, f"p{i}", slot)] = info
    return SessionMeta(id="s", token_hash="h", program={"expr": "y = p0"}, optimizer={},
                       arrays=arrays)  # fmt: skip


def test_describing_a_session_passes_over_its_arrays_a_fixed_number_of_times():
    for n in (10, 1_000):
        CountingArrays.passes = 0
        described = public(_meta(n), 3600.0)
        assert CountingArrays.passes <= 5, (n, CountingArrays.passes)
        assert len(described["parameters"]) == n
        assert described["parameters"]["p7"]["optimizer_state"] == sorted(ADAM)
        assert described["parameters"]["p7"]["grad"] is True
