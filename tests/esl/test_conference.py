"""Conference facts (captures 5-8, l, l2): several emulated calls join one conference through
our outbound server while an InboundClient lists, mutes, kicks and kills, as the capture driver
did."""

import asyncio

import pytest

from engine.testing import FreeSwitchEmulator
from esl_helpers import SPECS_L, conference_calls, run, ts


async def driver_l(client, calls):
    await asyncio.sleep(2.2)
    listing = await client.conference_list("expert1")
    third = next(m for m in listing if m.caller_number == "13900000003")
    await client.conference_mute("expert1", third.member_id)
    await asyncio.sleep(1.0)
    await client.conference_unmute("expert1", third.member_id)
    await asyncio.sleep(2.0)
    await client.uuid_kill(calls["13900000001"].a_uuid)
    await asyncio.sleep(1.0)
    return listing, await client.api("conference list"), \
        await client.conference_list("expert1")


def custom_events(msgs):
    return [m.event for m in msgs if m.event is not None and m.event.name == "CUSTOM"]


@pytest.mark.parametrize("set_false", [False, True])
def test_endconf_and_own_member_events(set_false):
    """l (endconf hangs the others up) / l2 (hangup_after_conference=false returns)."""
    specs = [dict(s, set_false=set_false and i > 0) for i, s in enumerate(SPECS_L)]

    async def main():
        emu = FreeSwitchEmulator(frame_ms=20)
        out = await conference_calls(emu, specs, driver_l)
        await emu.close()
        return out

    results, inbound, (listing, after_list, after_members) = run(main)
    flags = {m.caller_number: "|".join(m.flags) for m in listing}
    assert flags == {"13900000001": "hear|speak|floor|moderator", "13900000002": "hear",
                     "13900000003": "hear|speak"}
    assert [m.member_id for m in reversed(listing)] == [1, 2, 3]

    expected_actions = {"13900000001": ["add-member", "floor-change", "del-member"],
                        "13900000002": ["add-member", "del-member"],
                        "13900000003": ["add-member", "mute-member", "unmute-member",
                                        "floor-change", "del-member"]}
    durations = {}
    for number, (outcome, msgs, uuid) in results.items():
        own = custom_events(msgs)
        assert [e["Action"] for e in own] == expected_actions[number]
        assert all(e.unique_id == uuid for e in own)          # only its own member
        assert len({e["Member-ID"] for e in own}) == 1
        add, dele = own[0], own[-1]
        execs = [m.event for m in msgs if m.event is not None
                 and m.event.get("Application") == "conference"]
        start, end = execs[0], execs[-1]
        assert end.name == "CHANNEL_EXECUTE_COMPLETE"
        assert abs((ts(dele) - ts(add)) - (ts(end) - ts(start))) <= 25_000   # billing basis
        durations[number] = (ts(dele) - ts(add)) / 1e6
        names = [m.event.name if m.event is not None else m.content_type for m in msgs]
        if number == "13900000001" or not set_false:
            assert outcome[0] == "hangup" and outcome[1].cause == "NORMAL_CLEARING"
            last_custom = len(names) - 1 - names[::-1].index("CUSTOM")
            assert names.index("CHANNEL_HANGUP") < last_custom       # hangup, then del-member
        else:
            assert outcome[0] == "returned"
            assert outcome[1]["Answer-State"] == "answered"
            assert dele.get("Hangup-Cause") is None
    # joined ~1 s apart, left together (the others ~25 ms after the moderator): l's billing
    d1, d2, d3 = (durations[n] for n in ("13900000001", "13900000002", "13900000003"))
    assert 7.0 < d1 < 7.3
    assert d1 - d2 == pytest.approx(1.0 - 0.025, abs=0.03)
    assert d1 - d3 == pytest.approx(2.0 - 0.025, abs=0.03)
    actions = [e["Action"] for e in inbound]
    assert actions[0] == "conference-create" and actions[-1] == "conference-destroy"
    assert actions.count("add-member") == 3 and actions.count("del-member") == 3
    assert after_list == "+OK No active conferences.\n" and after_members == []


def test_myevents_alone_gives_no_conference_events():
    """5.log / 6.log: without `event plain CUSTOM conference::maintenance` nothing arrives."""
    specs = [{"number": "13800000005", "arg": "ivrtest@default", "start": 0},
             {"number": "13800000006", "arg": "ivrtest@default", "start": 0.05}]

    async def driver(client, calls):
        await asyncio.sleep(2)
        count = await client.conference_count("ivrtest")
        kicked = await client.conference_kick("ivrtest", "all")
        return count, kicked

    async def main():
        emu = FreeSwitchEmulator(frame_ms=20)
        out = await conference_calls(emu, specs, driver, subscribe=False)
        await emu.close()
        return out

    results, inbound, (count, kicked) = run(main)
    assert count == 2
    assert kicked == "+OK kicked 2\n+OK kicked 1\n"
    for outcome, msgs, _ in results.values():
        assert custom_events(msgs) == []
        assert outcome[0] == "returned"          # kick returns the conference app


def test_kick_returns_control_with_kick_then_del_member():
    """7.log / 8.log: kick-member, then del-member, then the completion; still answered."""
    specs = [{"number": "13800000005", "arg": "ivrtest@default", "start": 0},
             {"number": "13800000006", "arg": "ivrtest@default", "start": 0.05}]

    async def driver(client, calls):
        await asyncio.sleep(3)
        return await client.conference_kick("ivrtest", "all")

    async def main():
        emu = FreeSwitchEmulator(frame_ms=20)
        out = await conference_calls(emu, specs, driver)
        second = await conference_calls(emu, specs, driver)
        await emu.close()
        return out, second

    (results, _, _), (results2, _, _) = run(main)
    for outcome, msgs, _ in results.values():
        own = custom_events(msgs)
        assert [e["Action"] for e in own][-2:] == ["kick-member", "del-member"]
        assert 0 < ts(own[-1]) - ts(own[-2]) <= 20_000          # on the member's next frame
        assert outcome[0] == "returned" and outcome[1]["Answer-State"] == "answered"
    ids = sorted(int(custom_events(m)[0]["Member-ID"]) for _, m, _ in results2.values())
    assert ids == [3, 4]                         # Member-IDs are not reset per conference
