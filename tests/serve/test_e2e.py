"""End to end: emulated FreeSWITCH -> TCP -> `ivrflow serve` -> flow, against the simulator.

The same flow, caller script, prompts (real espeak-ng audio from one cache) and database rows
run twice - on the simulated channel and through the Event Socket - and the two call records
must tell the same story: states, prompts heard / interrupted / skipped, inputs, actions,
transfers, recordings, errors and the end (`serve_helpers.summary`).  The scenario suite of the
runtime tests runs the same way, with its own expectations checked on the ESL run.

One difference is by design and kept out of the scripts compared here: keys pressed "together"
in a simulator token reach FreeSWITCH one media frame apart, so a prompt the simulator skips
because of digits typed beyond a maximum is, over ESL, started and cut at once.
"""

import asyncio
import os
import shutil
import signal
import subprocess
import time
import urllib.request

import pytest

from engine.runtime.clock import DEFAULT_SIM_START, LoopClock, VirtualClock
from engine.runtime.sim import SimOptions
from engine.scenario.db import MemoryDatabases, insert_rows
from engine.scenario.runner import check_case
from engine.scenario.spec import load_suite
from engine.testing import FreeSwitchEmulator, run_virtual
from rt_helpers import registry
from serve_helpers import (ROOT, RT_FIX, compile_flow, run_esl, run_sim, serve_config, sim_resolver,
                           summary, without_call_id)

DEMO = RT_FIX / "demo.yaml"
QUEUES = {"agents": [("answer", ""), ("park", "")]}


def both(flow_path, script, audio, tmp_path, *, store_factory=None, sim_options=None, data=None,
         emu_kwargs=None, caller="13800000001", trusted=True, channel_vars=None, extra_config=None,
         before_call=None, check=None):
    """Run a script simulated and over ESL; with a store factory each run gets its own
    database (with `data` rows) and `check(result, store)` runs before it is closed."""
    reg = registry()
    backend, cache, cache_dir = audio
    flow = compile_flow(flow_path, reg)
    prompts = RT_FIX / "prompts"

    async def sim():
        clock = VirtualClock(DEFAULT_SIM_START)
        if store_factory is None:
            return await run_sim(flow, reg, sim_resolver(flow, prompts, backend, cache), script, clock=clock,
                                 options=sim_options, caller=caller, trusted=trusted, channel_vars=channel_vars,
                                 recordings_dir=str(tmp_path))
        with store_factory(clock) as store:
            if data:
                insert_rows(store, data, clock.now())
            res = await run_sim(flow, reg, sim_resolver(flow, prompts, backend, cache), script, clock=clock,
                                store=store, options=sim_options, caller=caller, trusted=trusted,
                                channel_vars=channel_vars, recordings_dir=str(tmp_path))
            return res, store_rows(store), check(res, store) if check else None

    async def esl():
        cfg = serve_config(flow_path, prompts, cache_dir, tmp_path / "spool.jsonl", **(extra_config or {}))
        clock = LoopClock(DEFAULT_SIM_START, loop=asyncio.get_running_loop())
        kw = dict(backend=backend, cache=cache, clock=clock, caller=caller, trusted=trusted,
                  channel_vars=channel_vars, emu_kwargs={"dialplan": QUEUES, **(emu_kwargs or {})},
                  before_call=before_call)
        if store_factory is None:
            res, _server, _call = await run_esl(cfg, reg, script, **kw)
            return res
        with store_factory(clock) as store:
            if data:
                insert_rows(store, data, clock.now())
            res, _server, _call = await run_esl(cfg, reg, script, store=store, **kw)
            return res, store_rows(store), check(res, store) if check else None

    s = asyncio.run(sim()) if store_factory is None else asyncio.run(sim())
    e = run_virtual(esl)
    return s, e


def store_rows(store):
    from sqlalchemy import text
    with store.engine.connect() as c:
        pats = c.execute(text("select card_no, balance_cents, pin_failures from patients order by card_no")).all()
        ledger = c.execute(text("select amount_cents, kind from ledger order by id")).all()
    return [tuple(r) for r in pats], [tuple(r) for r in ledger]


def same(sim_rec, esl_rec):
    a = without_call_id(summary(sim_rec), sim_rec.call_id)
    b = without_call_id(summary(esl_rec), esl_rec.call_id)
    for i, (x, y) in enumerate(zip(a, b)):
        assert x == y, f"event {i}: simulated {x} != ESL {y}"
    assert len(a) == len(b), (a[len(b):], b[len(a):])


SCRIPTS = {
    "account and PIN": "1 1234# 4321",
    "barge-in then type-ahead": "!1 1234# 4321",
    "three timeouts": "timeout timeout timeout",
    "sub-flow and return": "2 7",
    "action error to on.error": "2 0",
    "voice message": "3 speak:4",
    "empty voice message": "3 timeout",
    "hangup in the welcome": "wait:2 hangup",
    "star to the main menu": "1 !* 1 12345678 4321",
    "invalid entry then valid": "1 12# 1234# 4321",
    "wrong PIN back to the menu": "1 1234# 1111 9",
    "transfer to a queue": "9",
    "hangup while recording runs the handler": "3 speak:4 hangup",
    "hangup after a key": "1 1234# wait:1 hangup",
    "slow caller": "1 wait:7 1234# 4321",
}


@pytest.mark.parametrize("name", list(SCRIPTS))
def test_demo_flow_simulated_and_over_esl_agree(name, audio, tmp_path):
    sim, esl = both(DEMO, SCRIPTS[name], audio, tmp_path)
    assert sim.record.disposition is not None
    same(sim.record, esl.record)
    assert esl.record.channel == "freeswitch" and sim.record.channel == "sim"


def test_paid_conference_cut_at_the_limit_agrees(audio, tmp_path):
    """Talk (4): the room never ends by itself, the limit (120 s) cuts the call with
    ALLOTTED_TIMEOUT after the warning, then on.hangup runs."""
    sim, esl = both(DEMO, "4", audio, tmp_path, sim_options=SimOptions(conference_seconds=600))
    same(sim.record, esl.record)
    assert esl.record.hangup_cause == "ALLOTTED_TIMEOUT"
    conf = next(esl.record.of_type("conference"))
    assert conf["warned"] is True and 119.0 <= conf["seconds"] <= 120.0


def test_conference_ended_by_the_expert_agrees(audio, tmp_path):
    """The expert's own phone is called into the room (inbound ESL originate) and hangs up
    after 30 s: the room ends, the caller's flow goes on (`done`)."""
    from engine.testing import Agent

    async def before(server, emu):
        port = await emu.start_inbound()
        from engine.channel.esl import InboundClient
        server.inbound = InboundClient("127.0.0.1", port, "ClueCon")
        await server.inbound.connect()
        from engine.serve.config import ExpertsConfig
        import re
        from engine.serve.experts import ExpertDialer
        cfg = ExpertsConfig(originate=True, dial="user/{number}",
                            room_pattern=re.compile(r"^room-(?P<number>\d+)$"), hold=None)
        server.dialer = ExpertDialer(cfg, server.inbound)

    sim, esl = both(DEMO, "4", audio, tmp_path, sim_options=SimOptions(conference_seconds=30.0),
                    emu_kwargs={"agents": {"user/13800000001": Agent(answer_delay=0.0, talk=30.0)}},
                    before_call=before)
    same(sim.record, esl.record)
    assert esl.record.disposition == "completed"


def test_untrusted_caller_is_anonymous_over_esl_too(audio, tmp_path):
    sim, esl = both(DEMO, "wait:1 hangup", audio, tmp_path, trusted=False)
    same(sim.record, esl.record)
    assert esl.record.caller_trusted is False and esl.variables["caller"] is None
    assert esl.variables["caller_raw"] == "13800000001"


# ---------------------------------------------------------------- the runtime's scenario suite

BANK_SUITE = RT_FIX / "suites" / "bank.test.yaml"
BANK_CASES = [c.name for c in load_suite(BANK_SUITE).cases]


@pytest.mark.parametrize("case_name", BANK_CASES)
def test_bank_suite_case_over_esl(case_name, audio, tmp_path):
    """Each case of tests/runtime/fixtures/suites/bank.test.yaml (database rows, masked PIN,
    global key): its expectations hold over ESL, and the two runs agree, rows included."""
    suite = load_suite(BANK_SUITE)
    case = next(c for c in suite.cases if c.name == case_name)
    dbs = MemoryDatabases()
    flow = compile_flow(suite.flow_path, registry())
    try:
        (sim_res, sim_rows, sim_fail), (esl_res, esl_rows, esl_fail) = both(
            suite.flow_path, case.input, audio, tmp_path, store_factory=lambda clock: dbs.database(clock, seed=case.seed),
            data=case.data, caller=case.caller, trusted=case.trusted, channel_vars=case.channel,
            check=lambda res, store: check_case(case, res, flow, store))
    finally:
        dbs.close()
    assert sim_fail == [] and esl_fail == []
    same(sim_res.record, esl_res.record)
    assert sim_rows == esl_rows


# ---------------------------------------------------------------- the real command

HOTLINE = """
flow: hotline
languages: [zh-CN]
prompts: bank
start: card
states:
  card:
    collect: {prompt: enter_card, into: card_no, digits: 8, attempts: 2, no_input: no_input}
    next: {ok: told, failed: bye}
  told:
    say: "您输入的卡号是{{ card_no | digits }}。"
    next: bye
  bye:
    hangup: true
"""


def _free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.skipif(shutil.which("ivrflow") is None and not (ROOT / ".venv" / "bin" / "ivrflow").exists(),
                    reason="the ivrflow console script is not installed")
def test_real_ivrflow_serve_subprocess(tmp_path, audio):
    """`ivrflow serve` as a process: an emulated call over loopback TCP (real time), its call
    record in the SQLite database, /metrics, and SIGTERM stopping it cleanly."""
    backend, cache, cache_dir = audio
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "hotline.yaml").write_text(HOTLINE, encoding="utf-8")
    shutil.copytree(RT_FIX / "prompts", tmp_path / "prompts")
    db = tmp_path / "ivr.db"
    exe = str(ROOT / ".venv" / "bin" / "ivrflow") if (ROOT / ".venv" / "bin" / "ivrflow").exists() else "ivrflow"
    env = {**os.environ, "IVRFLOW_PROMPT_CACHE": str(cache_dir)}
    subprocess.run([exe, "db", "upgrade", "--db", f"sqlite:///{db}"], check=True, env=env, capture_output=True)
    port, mport = _free_port(), _free_port()
    cfg = tmp_path / "serve.yaml"
    cfg.write_text(f"""
listen: 127.0.0.1:{port}
flows: flows
db: sqlite:///{db}
metrics: 127.0.0.1:{mport}
prompts: {{dir: prompts, cache: {cache_dir}, tts: espeak-cli}}
routes:
  - {{destination: "95588", flow: hotline}}
logging: {{format: json}}
cdr_spool: var/spool.jsonl
""", encoding="utf-8")
    proc = subprocess.Popen([exe, "serve", "--config", str(cfg)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{mport}/health", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("ivrflow serve did not come up:\n" + proc.communicate()[1])
            time.sleep(0.1)

        async def call():
            from engine.testing import CallerScript
            emu = FreeSwitchEmulator(frame_ms=20)
            try:
                # the card number barges into the first prompt, a key cuts the read-back
                caller = CallerScript().press("12345678", on="playback", after=0.3) \
                    .press("1", on="playback", nth=2, after=0.5)
                c = await emu.place_call("127.0.0.1", port, destination="95588", caller=caller,
                                         variables={"ivrflow_caller_trusted": "true"})
                await c.wait_hangup(20)
                return c.uuid, [e.get("Application") for e in c.events("CHANNEL_EXECUTE")]
            finally:
                await emu.close()
        uuid, apps = asyncio.run(call())
        # the read-back starts while the entry's '#' may still come: its terminators exclude it
        assert apps == ["set", "answer", "playback", "set", "playback"], apps
        with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=2) as r:
            metrics = r.read().decode()
        assert 'ivrflow_calls_total{disposition="completed"} 1' in metrics
        import re
        assert int(re.search(r"ivrflow_step_latency_seconds_count (\d+)", metrics).group(1)) >= 2
        assert re.search(r'ivrflow_setup_seconds_bucket\{le="0.02"\} 1', metrics)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert f'"call_id": "{uuid}"' in err and "ivrflow serve stopped" in err
        from engine.store import Store
        with Store(f"sqlite:///{db}") as store:
            rec = store.call_record(uuid)
        assert rec is not None and rec.flow == "hotline" and rec.disposition == "completed"
        assert [e["state"] for e in rec.trace["events"] if e["type"] == "state"] == ["card", "told", "bye"]
        assert rec.trace["caller_trusted"] is True and rec.trace["variables"]["card_no"] == "12345678"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
