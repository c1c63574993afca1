"""Call-detail records for every call, with the trace as JSON."""

from __future__ import annotations

import datetime as dt

import pytest

from engine.store import InvalidInput

UTC = dt.timezone.utc
START = dt.datetime(2030, 3, 4, 1, 0, tzinfo=UTC)
TRACE = [{"node": "welcome", "t": 0.0, "say": "您好，欢迎致电仁和医院"},
         {"node": "menu", "digits": "2", "vars": {"card": "10000001", "n": 3}}]


def test_record_and_update(store):
    store.record_call("c-100", flow="hospital", caller="13800000001", destination="114",
                      started_at=START, trace=TRACE[:1])
    rec = store.call_record("c-100")
    assert (rec.flow, rec.caller, rec.ended_at, rec.disposition) == ("hospital", "13800000001",
                                                                     None, None)
    assert rec.trace == TRACE[:1] and rec.started_at == START
    end = START + dt.timedelta(minutes=3, seconds=5)
    store.record_call("c-100", flow="hospital", caller="13800000001", destination="114",
                      started_at=START, ended_at=end, disposition="completed", trace=TRACE)
    rec = store.call_record("c-100")
    assert (rec.ended_at, rec.disposition, rec.trace) == (end, "completed", TRACE)
    assert len(store.recent_calls()) == 1                       # updated, not duplicated


def test_recent_calls_newest_first(store):
    for i in range(5):
        store.record_call(f"c-{i}", flow="f", caller="139" if i % 2 else "138",
                          started_at=START + dt.timedelta(minutes=i), disposition="hangup")
    assert [c.call_id for c in store.recent_calls(limit=3)] == ["c-4", "c-3", "c-2"]
    assert [c.call_id for c in store.recent_calls(caller="139")] == ["c-3", "c-1"]
    assert store.call_record("missing") is None


@pytest.mark.parametrize("kw", [
    dict(trace={"x": {1, 2}}),
    dict(trace=[float("nan")]),
    dict(started_at=dt.datetime(2030, 3, 4)),
    dict(ended_at=START - dt.timedelta(seconds=1)),
    dict(flow=""),
    dict(disposition="x" * 33),
])
def test_bad_records_rejected(store, kw):
    args = dict(flow="f", started_at=START) | kw
    with pytest.raises(InvalidInput):
        store.record_call("c-bad", **args)
    assert store.call_record("c-bad") is None
