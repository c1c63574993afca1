"""Whole simulated calls of flows/hospital.yaml on both databases: the charge is written even
when the caller hangs up in the conference, the paid time runs out with a warning, the PIN
never reaches the record or the stored call-detail record, every call leaves a CDR."""

import asyncio
import json
from pathlib import Path

import pytest
from act_helpers import at, rows

from engine.actions import default_registry
from engine.flow import compile_file
from engine.runtime import Interpreter, SimChannel, SimOptions, VirtualClock
from engine.runtime.resolver import make_resolver

FLOW = Path(__file__).resolve().parents[2] / "flows" / "hospital.yaml"


@pytest.fixture(scope="module")
def hospital():
    flow, diags = compile_file(FLOW, registry=default_registry())
    assert flow is not None, [d.headline() for d in diags]
    resolver, note = make_resolver(flow)
    assert note is None, note
    return flow, resolver


def call(hospital, store, script, *, caller="13800000001", trusted=True, call_id="sim-1", variables=None,
         **options):
    flow, resolver = hospital
    clock = VirtualClock(at())
    ch = SimChannel(script, clock, call_id=call_id, caller=caller, caller_trusted=trusted,
                    options=SimOptions(**options))
    interp = Interpreter(flow, registry=default_registry(), resolver=resolver, store=store)
    return asyncio.run(interp.run(ch, clock, variables=variables))


EXPERT_101 = "1 3 10000001# 123456 1 101# 1"        # main menu 3, card, PIN, choose expert 101, ask


def test_hangup_in_the_conference_is_charged(hospital, store):
    res = call(hospital, store, EXPERT_101 + " wait:150 hangup", conference_seconds=600)
    rec = res.record
    assert rec.disposition == "hangup" and rec.final_state == "done"
    conf = next(rec.of_type("conference"))
    assert conf["result"] == "hangup" and conf["seconds"] == 150
    close = [e for e in rec.actions() if e["action"] == "consult.close"]
    assert len(close) == 1 and close[0]["state"] == "bill_on_hangup" and close[0]["outcome"] == "charged"
    fee = [x for x in rows(store, "ledger") if x["kind"] == "consultation_fee"]
    assert len(fee) == 1 and fee[0]["amount_cents"] == -600          # 3 started minutes at 2 yuan
    (c,) = rows(store, "consultations")
    assert (c["status"], c["minutes"], c["charge_cents"], c["call_id"]) == ("closed", 3, 600, "sim-1")
    assert store.balance("10000001") == 49400 and store.check_ledger() == []


def test_paid_time_runs_out_with_a_warning(hospital, store):
    res = call(hospital, store, "1 3 10000004# 111111 1 101# 1", conference_seconds=600)
    rec = res.record
    assert rec.disposition == "hangup" and rec.hangup_cause == "ALLOTTED_TIMEOUT"
    conf = next(rec.of_type("conference"))
    assert conf["limit"] == 60 and conf["warned"] is True
    warn = [e for e in rec.prompts() if e.get("during") == "conference"]
    assert warn and warn[0]["prompt"] == "credit_low" and "余额只够最后一分钟" in warn[0]["text"]
    assert store.balance("10000004") == 100
    assert [x["amount_cents"] for x in rows(store, "ledger") if x["kind"] == "consultation_fee"] == [-200]


def test_the_pin_never_reaches_the_record_or_the_database(hospital, store):
    res = call(hospital, store, "1 3 10000002# 246810 2 2")
    assert res.variables["pin"] == "246810"                 # in memory only
    stored = store.call_record("sim-1")
    for blob in (json.dumps(res.record.to_dict(), ensure_ascii=False), json.dumps(stored.trace, ensure_ascii=False)):
        assert "246810" not in blob
    verify = next(e for e in res.record.actions() if e["action"] == "auth.verify")
    assert verify["params"] == {"card": "10000002", "pin": "****"} and verify["outcome"] == "ok"
    assert stored.trace["variables"]["pin"] == "****"


def test_every_call_leaves_a_call_detail_record(hospital, store):
    call(hospital, store, "1 4 800001# 19800512 2", call_id="sim-a")         # exam result, goodbye
    call(hospital, store, "wait:1 hangup", call_id="sim-b")                  # hangs up during the welcome
    call(hospital, store, "", caller="13900000001", call_id="sim-c")         # a VIP who says nothing
    got = {r["call_id"]: r for r in rows(store, "call_records")}
    assert set(got) == {"sim-a", "sim-b", "sim-c"}
    assert (got["sim-a"]["disposition"], got["sim-b"]["disposition"], got["sim-c"]["disposition"]) == \
        ("completed", "hangup", "transferred")
    assert got["sim-a"]["flow"] == "hospital" and got["sim-a"]["ended_at"] is not None
    assert got["sim-c"]["trace"]["variables"]["vip"] is True


@pytest.mark.parametrize("variables", [None, {"caller": "13900000001"}])
def test_untrusted_vip_number_gets_the_regular_menu(hospital, store, variables):
    """Trust comes from the channel only: not even a ``caller`` variable makes a number trusted."""
    res = call(hospital, store, "", caller="13900000001", trusted=False, variables=variables)
    assert "vip_greeting" not in res.record.states() and res.variables["vip"] is False
    t = next(res.record.of_type("transfer"))
    assert t["priority"] == 10


def test_a_failing_cdr_write_is_logged_and_changes_nothing(hospital, store, caplog):
    from engine.store import StoreUnavailable

    class Flaky:
        """The real store, except that the CDR cannot be written."""

        def __getattr__(self, name):
            return getattr(store, name)

        def record_call(self, *a, **kw):
            raise StoreUnavailable("database went away")

    with caplog.at_level("ERROR", logger="ivrflow.runtime"):
        res = call(hospital, Flaky(), "1 4 800001# 19800512 2")
    assert res.record.disposition == "completed"
    assert "cannot store the call record: StoreUnavailable: database went away" in caplog.text
    assert rows(store, "call_records") == []


def test_an_aborted_call_still_leaves_its_cdr(store):
    """The runtime is stopped (task cancelled) while an action waits: the record says aborted."""
    from engine.actions import Action, Result
    from engine.flow import compile_text

    started = asyncio.Event()

    async def block(ctx, params):
        started.set()
        await asyncio.Event().wait()
        return Result("ok")

    reg = default_registry().with_actions(Action("t.block", "waits forever", {"type": "object"}, ("ok",), block))
    flow, diags = compile_text("flow: t\nlanguages: [en]\nstart: a\nstates:\n  a: {action: t.block, next: b}\n"
                               "  b: {hangup: true}\n", "t.yaml", reg)
    assert flow is not None, diags

    async def main():
        clock = VirtualClock(at())
        ch = SimChannel("", clock, call_id="sim-abort", caller="13800000001")
        task = asyncio.create_task(Interpreter(flow, registry=reg, store=store).run(ch, clock))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert store.call_record("sim-abort").disposition == "aborted"
