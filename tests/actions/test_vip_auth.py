"""vip.check and auth.verify on both databases."""

import pytest
from act_helpers import Ctx, act

from engine.actions.builtin._common import ActionFailure


def test_vip_with_a_linked_card(ctx):
    ctx.caller = ctx.caller_raw = "13900000001"
    r = act("vip.check", ctx)
    assert r.outcome == "vip"
    assert r.variables == {"vip": True, "vip_name": "王秀英", "vip_level": "vip", "vip_card": "10000003"}


def test_vip_without_a_card(ctx):
    ctx.caller = ctx.caller_raw = "139-0000-0002"          # presented with dashes: same number
    r = act("vip.check", ctx)
    assert r.outcome == "vip" and r.variables["vip_card"] is None and r.variables["vip_level"] == "vvip"


def test_regular_caller(ctx):
    r = act("vip.check", ctx)
    assert r.outcome == "regular" and r.variables == {"vip": False}


def test_untrusted_vip_number_is_regular(ctx):
    ctx.caller, ctx.caller_raw = None, "13900000001"         # not from a trusted source
    assert act("vip.check", ctx).outcome == "regular"


def test_inactive_vip_is_regular(ctx, store):
    from sqlalchemy import update

    from engine.store import models as m

    with store.engine.begin() as conn:
        conn.execute(update(m.VipNumber).where(m.VipNumber.number == "13900000001").values(active=False))
    ctx.caller = "13900000001"
    assert act("vip.check", ctx).outcome == "regular"


def test_without_a_database_the_action_fails_clearly(clock):
    with pytest.raises(ActionFailure, match="needs the hospital database"):
        act("vip.check", Ctx(None, clock))


def test_pin_ok_gives_name_and_balance(ctx):
    r = act("auth.verify", ctx, card="10000001", pin="123456")
    assert r.outcome == "ok" and r.variables == {"patient_name": "王小明", "balance": 50000}


def test_wrong_pin_counts_down_then_locks(ctx, store):
    r = act("auth.verify", ctx, card="10000002", pin="000000")
    assert r.outcome == "failed" and r.variables == {"attempts_left": 2, "auth_reason": "wrong_pin"}
    assert act("auth.verify", ctx, card="10000002", pin="000001").variables["attempts_left"] == 1
    assert act("auth.verify", ctx, card="10000002", pin="000002").outcome == "locked"
    # locked even with the right PIN, until the lock expires (30 min by default)
    assert act("auth.verify", ctx, card="10000002", pin="246810").outcome == "locked"
    ctx.clock.advance(minutes=31)
    assert act("auth.verify", ctx, card="10000002", pin="246810").outcome == "ok"
    assert store.patient("10000002").pin_failures == 0


def test_unknown_card_fails_with_no_attempts_left(ctx):
    r = act("auth.verify", ctx, card="99999999", pin="123456")
    assert r.outcome == "failed" and r.variables == {"attempts_left": 0, "auth_reason": "unknown_card"}


def test_the_pin_is_not_in_results_or_logs(ctx):
    for pin in ("123456", "654321"):
        r = act("auth.verify", ctx, card="10000001", pin=pin)
        assert pin not in repr(r) and not ctx.logs
