"""The hospital flow end to end: every case of flows/hospital.test.yaml (the simulator's suite)
runs simulated and through emulated FreeSWITCH -> TCP -> `ivrflow serve`, each on its own copy
of the demo hospital database; the case's expectations must hold over ESL too, and the two
call records must agree (serve_helpers.summary), database rows included.

How the simulator's world is played by the emulator: a room closes when the expert hangs up -
the expert's own phone is called into the room by ivrflow (inbound ESL originate) and talks for
the case's `conference_seconds`; a room that refuses the caller is an expert who does not
answer.  A refused *queue* transfer has no FreeSWITCH equivalent (the dialplan routes the call),
so that one case is left to the simulator.  Conference lengths measured by FreeSWITCH
(add-member -> del-member) are within a second of the simulator's round numbers; the seconds
passed to consult.close are compared rounded.
"""

import asyncio
import re

import pytest

from engine.runtime.clock import DEFAULT_SIM_START, LoopClock, VirtualClock
from engine.scenario.db import MemoryDatabases, insert_rows
from engine.scenario.runner import check_case
from engine.scenario.spec import load_suite
from engine.testing import Agent, run_virtual
from serve_helpers import ROOT, build_audio, compile_flow, run_esl, run_sim, serve_config, summary, without_call_id
from engine.runtime.resolver import CatalogResolver

SUITE = ROOT / "flows" / "hospital.test.yaml"
CASES = load_suite(SUITE).cases
NOT_OVER_ESL = {c.name: "a refused queue transfer has no FreeSWITCH equivalent"
                for c in CASES if c.sim.fail_transfers}


@pytest.fixture(scope="session")
def hospital_audio(tmp_path_factory):
    cache_dir = tmp_path_factory.mktemp("hospital-prompts")
    backend, cache = build_audio(cache_dir, [(ROOT / "prompts", "hospital")])
    return backend, cache, cache_dir


def _registry():
    from engine.actions import default_registry
    return default_registry()


def _resolver(flow, backend, cache):
    from engine.prompts.catalog import load_catalog
    from engine.prompts.media import Prompts
    return CatalogResolver(Prompts(load_catalog(ROOT / "prompts", "hospital"), backend, cache, synthesize=False))


RANDOM = ("confirmation_no", "ticket_no")


def _random_values(res):
    """The random numbers of a run, as stored and as spoken (digit by digit) in prompts."""
    from engine.prompts.speak import say_digits
    out = []
    for k in RANDOM:
        v = res.variables.get(k)
        if v:
            out.append(str(v))
            for lang in ("zh-CN", "en"):
                try:
                    out.append(say_digits(str(v), lang))
                except Exception:  # noqa: BLE001
                    pass
    return out


def _seconds_apart(summ):
    """The summary without consult.close's seconds, and those seconds apart."""
    out, secs = [], []
    for item in summ:
        if item[0] == "action" and isinstance(item[3], dict) and "seconds" in item[3]:
            params = dict(item[3])
            secs.append(float(params.pop("seconds")))
            item = item[:3] + (params,) + item[4:]
        out.append(item)
    return out, secs


def _esl_failures(case, res, flow, store):
    """check_case, with consult.close's seconds compared within a second."""
    fails = check_case(case, res, flow, store)
    keep = []
    for f in fails:
        m = re.search(r"params \{'seconds': (\d+(?:\.\d+)?)\}.*'seconds': (\d+(?:\.\d+)?)\}\)", f)
        if m and abs(float(m.group(1)) - float(m.group(2))) <= 1.0:
            continue
        keep.append(f)
    return keep


@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_hospital_case_over_esl(name, hospital_audio, tmp_path):
    if name in NOT_OVER_ESL:
        pytest.skip(NOT_OVER_ESL[name])
    case = next(c for c in CASES if c.name == name)
    if case.skip:
        pytest.skip(case.skip)
    backend, cache, cache_dir = hospital_audio
    reg = _registry()
    flow = compile_flow(ROOT / "flows" / "hospital.yaml", reg)
    start = case.at or DEFAULT_SIM_START
    dbs = MemoryDatabases()
    try:
        async def sim():
            clock = VirtualClock(start)
            with dbs.database(clock, seed=case.seed) as store:
                if case.data:
                    insert_rows(store, case.data, clock.now())
                res = await run_sim(flow, reg, _resolver(flow, backend, cache), case.input, store=store,
                                    clock=clock, options=case.sim, caller=case.caller, trusted=case.trusted,
                                    channel_vars=case.channel, lang=case.lang, variables=case.variables or None,
                                    recordings_dir=str(tmp_path), config=case.config or None)
                return res, check_case(case, res, flow, store)

        sim_res, sim_fail = asyncio.run(sim())
        assert sim_fail == [], sim_fail

        rooms_fail = case.sim.fail_conferences
        talk = case.sim.conference_seconds

        async def before(server, emu):
            from engine.channel.esl import InboundClient
            from engine.serve.config import ExpertsConfig
            from engine.serve.experts import ExpertDialer
            port = await emu.start_inbound()
            server.inbound = InboundClient("127.0.0.1", port, "ClueCon")
            await server.inbound.connect()
            server.dialer = ExpertDialer(ExpertsConfig(originate=True, dial="user/{number}", hold=None),
                                         server.inbound)
            for number in ("101", "102", "201", "301", "401", "501", "701"):
                refuse = rooms_fail is True or (rooms_fail and f"expert-{number}" in rooms_fail)
                emu.agents[f"user/{number}"] = Agent(answer_delay=0.0, talk=talk,
                                                     fail_cause="NO_ANSWER" if refuse else None)

        async def esl():
            clock = LoopClock(start, loop=asyncio.get_running_loop())
            cfg = serve_config(ROOT / "flows" / "hospital.yaml", ROOT / "prompts", cache_dir,
                               tmp_path / "spool.jsonl", freeswitch={"conference_profile": "default"},
                               **(case.config or {}))
            chan = dict(case.channel or {})
            if case.lang:
                chan["ivrflow_lang"] = case.lang
            with dbs.database(clock, seed=case.seed) as store:
                if case.data:
                    insert_rows(store, case.data, clock.now())
                res, _server, _call = await run_esl(
                    cfg, reg, case.input, backend=backend, cache=cache, store=store, clock=clock,
                    caller=case.caller, trusted=case.trusted, channel_vars=chan,
                    destination=case.destination or "10000", before_call=before,
                    emu_kwargs={"dialplan": {"operators": [("answer", ""), ("park", "")]}})
                return res, _esl_failures(case, res, flow, store)

        esl_res, esl_fail = run_virtual(esl)
    finally:
        dbs.close()
    assert esl_fail == [], esl_fail
    a, sa = _seconds_apart(without_call_id(summary(sim_res.record), sim_res.record.call_id,
                                           *_random_values(sim_res)))
    b, sb = _seconds_apart(without_call_id(summary(esl_res.record), esl_res.record.call_id,
                                           *_random_values(esl_res)))
    for i, (x, y) in enumerate(zip(a, b)):
        assert x == y, f"event {i}: simulated {x} != ESL {y}"
    assert len(a) == len(b)
    assert len(sa) == len(sb) and all(abs(x - y) <= 1.0 for x, y in zip(sa, sb)), (sa, sb)
