"""`ivrflow serve` itself: routing, caller trust, call records (database, spool), hot reload,
graceful shutdown, the status endpoint, structured logs, experts called into their room, and
the configuration's errors.  Emulated FreeSWITCH over real TCP, virtual clock."""

import asyncio
import json
import logging
import re
import shutil

import pytest

from engine.runtime.clock import DEFAULT_SIM_START, LoopClock
from engine.scenario.db import MemoryDatabases
from engine.serve.config import ServeConfigError, load_serve_config, parse_config
from engine.serve.logs import CallIdFilter, JsonFormatter
from engine.serve.server import Server
from engine.testing import Agent, CallerScript, FreeSwitchEmulator, run_virtual
from rt_helpers import registry
from serve_helpers import RT_FIX, speak_ms

HELLO = """
flow: hello
languages: [zh-CN]
prompts: bank
start: greet
states:
  greet:
    play: enter_card
    next: ask
  ask:
    menu: {prompt: no_input, options: {1: bye, 2: talk, 3: long}, timeout: 5s, attempts: 2}
    next: {failed: bye}
  talk:
    conference: {room: expert-101, role: member, limit: "600"}
    next: {done: bye, failed: sorry}
  long:
    collect: {prompt: enter_pin, into: pin, digits: 6, timeout: 60s, attempts: 3}
    next: {ok: bye, failed: bye}
  sorry:
    play: sorry
    next: bye
  bye:
    hangup: true
"""
OTHER = HELLO.replace("flow: hello", "flow: other").replace("play: enter_card", "play: wrong_pin")


@pytest.fixture
def site(tmp_path, audio):
    """A flows directory with `hello` and `other`, the bank prompt catalog beside it."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "hello.yaml").write_text(HELLO, encoding="utf-8")
    (flows / "other.yaml").write_text(OTHER, encoding="utf-8")
    shutil.copytree(RT_FIX / "prompts", tmp_path / "prompts")
    return tmp_path


def config(site, audio, **extra):
    data = {"listen": "127.0.0.1:0", "flows": str(site / "flows"), "metrics": "127.0.0.1:0",
            "prompts": {"dir": str(site / "prompts"), "cache": str(audio[2]), "tts": "espeak-cli",
                        "synthesize": False},
            "freeswitch": {"speak": "tts_commandline", "transfer_confirm": 1},
            "reload": {"interval": 0}, "cdr_spool": str(site / "var" / "spool.jsonl"),
            "recordings": str(site / "rec"),
            "routes": [{"destination": "95100", "flow": "hello"},
                       {"variable": "other", "flow": "other"}]}
    data.update(extra)
    return parse_config(data)


async def serving(site, audio, *, store=None, emu_kwargs=None, **extra):
    loop = asyncio.get_running_loop()
    server = Server(config(site, audio, **extra), registry=registry(), store=store,
                    clock=LoopClock(DEFAULT_SIM_START, loop=loop), backend=audio[0], cache=audio[1])
    await server.start()
    emu = FreeSwitchEmulator(**{"frame_ms": 20, "speak_ms": speak_ms,
                                "dialplan": {"operator": [("answer", ""), ("park", "")]},
                                **(emu_kwargs or {})})
    return server, emu


async def serving_experts(site, audio, expert):
    """The server with expert consultation on, its inbound ESL on the emulator, whose phone
    user/1101 is `expert` (an Agent)."""
    emu = FreeSwitchEmulator(frame_ms=20, speak_ms=speak_ms, agents={"user/1101": expert})
    port = await emu.start_inbound()
    server = Server(config(site, audio, experts=_experts(),
                           freeswitch={"speak": "tts_commandline", "esl": {"port": port}}),
                    registry=registry(), clock=LoopClock(DEFAULT_SIM_START, loop=asyncio.get_running_loop()),
                    backend=audio[0], cache=audio[1])
    await server.start()
    return server, emu


async def finish(server, emu):
    await server.stop(grace=1)
    await emu.close()


async def wait_records(server, n, timeout=600):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while len(server.records) < n:
        assert loop.time() < end, f"only {len(server.records)} of {n} calls ended"
        await asyncio.sleep(0.05)
    return list(server.records)


def states(rec):
    return [e["state"] for e in rec.events if e["type"] == "state"]


# ---------------------------------------------------------------- routing and trust

def test_routes_by_destination_and_by_flow_variable(site, audio):
    async def main():
        server, emu = await serving(site, audio)
        try:
            await emu.place_call("127.0.0.1", server.port, destination="95100",
                                 caller=CallerScript().press("1", on="playback", nth=2, after=0.5))
            await emu.place_call("127.0.0.1", server.port, destination="8000",
                                 variables={"ivrflow_flow": "other"},
                                 caller=CallerScript().press("1", on="playback", nth=2, after=0.5))
            return await wait_records(server, 2)
        finally:
            await finish(server, emu)

    recs = run_virtual(main)
    by_flow = {r.flow: r for r in recs}
    assert set(by_flow) == {"hello", "other"}
    assert by_flow["hello"].destination == "95100" and by_flow["other"].destination == "8000"
    assert all(r.disposition == "completed" for r in recs)
    assert next(by_flow["other"].of_type("prompt"))["prompt"] == "wrong_pin"


def test_unknown_route_gets_an_apology_and_a_person(site, audio):
    """No route: the fallback plays the apology and transfers to the operator; the call has a
    record like any other.  The first prompt pipelined with the handshake (both flows start
    alike? no: here they differ, so nothing was sent ahead) is not heard."""
    async def main():
        server, emu = await serving(site, audio)
        try:
            call = await emu.place_call("127.0.0.1", server.port, destination="12345")
            recs = await wait_records(server, 1)
            apps = [(a, g) for a, g in call.channel.app_history]
            return recs[0], apps
        finally:
            await finish(server, emu)

    rec, apps = run_virtual(main)
    assert rec.flow == "(no route)" and rec.disposition == "transferred"
    assert next(rec.of_type("error"))["message"].startswith("no route for destination '12345'")
    assert ("transfer", "operator XML default") in apps
    assert ("speak", "tts_commandline|cmn-latn-pinyin|对不起，您拨打的服务暂时无法接通，正在为您转接人工服务。") in apps


def test_the_fallback_transfer_is_not_confined_by_the_dialplan(site, audio):
    """`ivrflow_transfer_context` confines what flows transfer to; the fallback's target is the
    deployment's own configuration and still applies."""
    async def main():
        server, emu = await serving(site, audio)
        try:
            call = await emu.place_call("127.0.0.1", server.port, destination="12345",
                                        variables={"ivrflow_transfer_context": "ivrflow_public"})
            recs = await wait_records(server, 1)
            return recs[0], list(call.channel.app_history)
        finally:
            await finish(server, emu)

    rec, apps = run_virtual(main)
    assert rec.disposition == "transferred"
    assert ("transfer", "operator XML default") in apps


def test_a_speculative_first_prompt_is_withdrawn_when_the_call_goes_elsewhere(site, audio):
    """One flow: its welcome goes out with the handshake.  A call routed to the fallback gets a
    plain uuid_break (n3) before the apology."""
    (site / "flows" / "other.yaml").unlink()

    async def main():
        server, emu = await serving(site, audio, routes=[{"destination": "95100", "flow": "hello"}])
        try:
            assert server.opening and server.opening.endswith(".wav")
            call = await emu.place_call("127.0.0.1", server.port, destination="999")
            await wait_records(server, 1)
            return call, server.records[0]
        finally:
            await finish(server, emu)

    call, rec = run_virtual(main)
    assert rec.flow == "(no route)"
    sent = b"".join(call.session.received).decode()
    assert sent.index("api uuid_break ") > sent.index("execute-app-name: playback")
    plays = [e for e in call.events("CHANNEL_EXECUTE_COMPLETE") if e.get("Application") == "playback"]
    assert len(plays) == 1 and int(plays[0].variable("playback_ms")) <= 2048


@pytest.mark.parametrize("chan_vars,networks,trusted", [
    ({"ivrflow_caller_trusted": "true"}, [], True),
    ({"ivrflow_caller_trusted": "false", "network_addr": "203.0.113.7"}, ["203.0.113.0/24"], True),
    ({"network_addr": "198.51.100.7"}, ["203.0.113.0/24"], False),
    ({}, [], False),
])
def test_caller_id_trust(site, audio, chan_vars, networks, trusted):
    """The dialplan's ivrflow_caller_trusted (from the carrier ACL) or a configured trusted
    network; otherwise the caller is anonymous for the flow (ctx.caller is None)."""
    seen = []

    async def main():
        server, emu = await serving(site, audio, trusted_networks=networks)
        server.on_call_end = seen.append
        try:
            await emu.place_call("127.0.0.1", server.port, destination="95100", variables=chan_vars,
                                 caller_number="13900000001", caller=CallerScript().hangup(at=1.0))
            await wait_records(server, 1)
        finally:
            await finish(server, emu)

    run_virtual(main)
    assert seen[0].record.caller_trusted is trusted
    assert seen[0].variables["caller"] == ("13900000001" if trusted else None)
    assert seen[0].variables["caller_raw"] == "13900000001"


# ---------------------------------------------------------------- call records

def test_every_call_record_reaches_the_database(site, audio):
    dbs = MemoryDatabases()

    async def main():
        loop = asyncio.get_running_loop()
        clock = LoopClock(DEFAULT_SIM_START, loop=loop)
        with dbs.database(clock, seed=False) as store:
            server, emu = await serving(site, audio, store=store)
            try:
                calls = [await emu.place_call("127.0.0.1", server.port, destination="95100",
                                              caller=CallerScript().press(k, on="playback", nth=2, after=0.3))
                         for k in ("1", "9")]
                await wait_records(server, 2)
                return [store.call_record(c.uuid) for c in calls]
            finally:
                await finish(server, emu)

    try:
        recs = run_virtual(main)
    finally:
        dbs.close()
    assert [r.disposition for r in recs] == ["completed", "completed"]
    assert all(r.flow == "hello" and r.trace["channel"] == "freeswitch" for r in recs)
    assert [i["keys"] for i in recs[1].trace["events"] if i["type"] == "input"][0] == "9"


def test_a_refused_record_is_spooled_then_replayed(site, audio):
    """The database refuses the write: the record goes to the spool file; the replay writes it
    once the database works again."""
    from engine.store import StoreUnavailable

    dbs = MemoryDatabases()

    class Down:
        def __init__(self, real):
            self.real = real

        def record_call(self, **kw):
            raise StoreUnavailable("database is down")

    async def main():
        loop = asyncio.get_running_loop()
        clock = LoopClock(DEFAULT_SIM_START, loop=loop)
        with dbs.database(clock, seed=False) as store:
            server, emu = await serving(site, audio, store=Down(store))
            try:
                call = await emu.place_call("127.0.0.1", server.port, destination="95100",
                                            caller=CallerScript().hangup(at=1.0))
                await wait_records(server, 1)
                spooled = server.config.cdr_spool.read_text(encoding="utf-8").splitlines()
                failures = server.metrics.cdr_failures
                server.store = store
                replayed = await asyncio.to_thread(server.replay_spool_now)
                left = server.config.cdr_spool.exists()
                # the spool's descriptor followed the replay: a later record lands in a new file
                server.store = Down(store)
                second = await emu.place_call("127.0.0.1", server.port, destination="95100",
                                              caller=CallerScript().hangup(at=1.0))
                await wait_records(server, 2)
                again = server.config.cdr_spool.read_text(encoding="utf-8").splitlines()
                return call.uuid, spooled, failures, replayed, store.call_record(call.uuid), left, \
                    second.uuid, again
            finally:
                await finish(server, emu)

    try:
        uuid, spooled, failures, replayed, rec, left, uuid2, again = run_virtual(main)
    finally:
        dbs.close()
    assert len(spooled) == 1 and json.loads(spooled[0])["call_id"] == uuid and failures == 1
    assert replayed == 1 and rec.disposition == "hangup" and not left
    assert [json.loads(x)["call_id"] for x in again] == [uuid2]


# ---------------------------------------------------------------- hot reload

def test_hot_reload_keeps_calls_on_their_version_and_rejects_a_bad_flow(site, audio, caplog):
    """A changed flow is validated first; a valid one serves new calls while a call in
    progress finishes on the version it started with; an invalid one is not loaded, the old
    one keeps serving and the diagnostics are logged."""
    path = site / "flows" / "hello.yaml"

    async def main():
        server, emu = await serving(site, audio)
        try:
            v1 = server.flows.get("hello").version
            # a call that will still be running during the reload (it waits in `long`)
            await emu.place_call("127.0.0.1", server.port, destination="95100",
                                         caller=CallerScript().press("3", on="playback", nth=2, after=0.3)
                                         .press("123456", at=40))
            await asyncio.sleep(10)
            path.write_text(HELLO.replace("play: enter_card", "play: wrong_pin"), encoding="utf-8")
            await server.reload()
            v2 = server.flows.get("hello").version
            await emu.place_call("127.0.0.1", server.port, destination="95100",
                                          caller=CallerScript().press("1", on="playback", nth=2, after=0.3))
            await wait_records(server, 2)
            path.write_text(HELLO.replace("next: {done: bye, failed: sorry}", "next: {done: byee}"),
                            encoding="utf-8")
            await server.reload()
            v3 = server.flows.get("hello").version
            await emu.place_call("127.0.0.1", server.port, destination="95100",
                                         caller=CallerScript().press("1", on="playback", nth=2, after=0.3))
            await wait_records(server, 3)
            return v1, v2, v3, list(server.records), dict(server.metrics.reloads), server._health()
        finally:
            await finish(server, emu)

    with caplog.at_level(logging.INFO, logger="ivrflow"):
        v1, v2, v3, recs, reloads, health = run_virtual(main)
    assert v1 != v2 and v3 == v2
    long_call = next(r for r in recs if "long" in states(r))
    assert long_call.flow_sha256[:12] == v1, "the call in progress finished on its version"
    firsts = [next(r.of_type("prompt"))["prompt"] for r in sorted(recs, key=lambda r: r.started_at)]
    assert firsts == ["enter_card", "wrong_pin", "wrong_pin"]
    assert reloads == {"ok": 3, "rejected": 1}     # hello, other at start; hello v2
    rejected = [r for r in caplog.records if "rejected" in r.getMessage()]
    assert rejected and "E201" in rejected[0].getMessage() and "still serving the previous version" \
        in rejected[0].getMessage()
    assert health[1]["rejected"] == [str(path)]


# ---------------------------------------------------------------- shutdown

def test_graceful_shutdown_lets_calls_finish_then_hangs_up_the_rest(site, audio):
    dbs = MemoryDatabases()

    async def main():
        loop = asyncio.get_running_loop()
        clock = LoopClock(DEFAULT_SIM_START, loop=loop)
        with dbs.database(clock, seed=False) as store:
            server, emu = await serving(site, audio, store=store)
            try:
                quick = await emu.place_call("127.0.0.1", server.port, destination="95100",
                                             caller=CallerScript().press("1", on="playback", nth=2, after=1))
                slow = await emu.place_call("127.0.0.1", server.port, destination="95100",
                                            caller=CallerScript().press("3", on="playback", nth=2, after=0.3))
                await asyncio.sleep(3)
                stopping = loop.create_task(server.stop(grace=10))
                await asyncio.sleep(0.5)
                health = server._health()
                refused = None
                try:
                    await emu.place_call("127.0.0.1", server.port, destination="95100")
                except OSError as e:
                    refused = e
                await stopping
                return (store.call_record(quick.uuid), store.call_record(slow.uuid), health, refused,
                        slow.channel.hangup_cause, loop.time())
            finally:
                await emu.close()

    try:
        quick, slow, health, refused, cause, t = run_virtual(main)
    finally:
        dbs.close()
    assert quick.disposition == "completed"
    assert slow.disposition == "aborted" and slow.trace["hangup_cause"] == "SYSTEM_SHUTDOWN"
    assert cause == "SYSTEM_SHUTDOWN"
    assert health[0] is False and health[1]["status"] == "draining"
    assert isinstance(refused, OSError)


# ---------------------------------------------------------------- status endpoint and logs

def test_metrics_and_health_endpoint(site, audio):
    async def get(port, path):
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = await r.read()
        w.close()
        head, _, body = data.decode().partition("\r\n\r\n")
        return int(head.split()[1]), body

    async def main():
        server, emu = await serving(site, audio)
        try:
            await emu.place_call("127.0.0.1", server.port, destination="95100",
                                 caller=CallerScript().press("1", on="playback", nth=2, after=0.3))
            await wait_records(server, 1)
            return (await get(server.status_port, "/metrics"), await get(server.status_port, "/health"),
                    await get(server.status_port, "/nope"))
        finally:
            await finish(server, emu)

    (code, metrics), (hcode, health), (ncode, _) = run_virtual(main)
    assert code == 200 and hcode == 200 and ncode == 404
    assert "ivrflow_calls_active 0" in metrics
    assert 'ivrflow_calls_total{disposition="completed"} 1' in metrics
    assert re.search(r"ivrflow_step_latency_seconds_count [1-9]", metrics)
    assert re.search(r'ivrflow_step_latency_seconds_bucket\{le="\+Inf"\} [1-9]', metrics)
    assert "process_resident_memory_bytes" in metrics
    h = json.loads(health)
    assert h["status"] == "ok" and set(h["flows"]) == {"hello", "other"}


def test_log_lines_are_json_with_the_call_uuid(site, audio):
    lines = []

    class Keep(logging.Handler):
        def emit(self, record):
            lines.append(self.format(record))

    handler = Keep()
    handler.setFormatter(JsonFormatter())
    handler.addFilter(CallIdFilter())
    root = logging.getLogger("ivrflow")
    root.addHandler(handler)
    old = root.level
    root.setLevel(logging.INFO)

    async def main():
        server, emu = await serving(site, audio)
        try:
            call = await emu.place_call("127.0.0.1", server.port, destination="95100",
                                        caller=CallerScript().press("1", on="playback", nth=2, after=0.3))
            await wait_records(server, 1)
            return call.uuid
        finally:
            await finish(server, emu)

    try:
        uuid = run_virtual(main)
    finally:
        root.removeHandler(handler)
        root.setLevel(old)
    objs = [json.loads(x) for x in lines]
    mine = [o for o in objs if uuid in o["msg"] or o.get("call_id") == uuid]
    assert len(mine) >= 2
    assert all(o.get("call_id") == uuid for o in mine if o["msg"].startswith("call "))
    start = next(o for o in mine if o["msg"].startswith("call start"))
    assert start["flow"] == "hello" and start["caller_trusted"] is False


# ---------------------------------------------------------------- expert reached by phone

def _experts(originate=True, phones=None):
    return {"originate": originate, "dial": "user/{phone}", "phones": phones or {"101": "1101"},
            "caller_id_number": "95100", "timeout": 20}


def test_the_expert_is_called_into_an_empty_room_as_moderator(site, audio):
    """The room has no moderator: `bgapi originate user/1101 &conference(expert-101@default
    +flags{moderator|endconf})` on the inbound socket; the caller hears ringback meanwhile;
    when the expert hangs up the room ends and the caller's flow goes on (l2)."""
    async def main():
        server, emu = await serving_experts(site, audio, Agent(answer_delay=4.0, talk=30.0))
        try:
            call = await emu.place_call("127.0.0.1", server.port, destination="95100",
                                        caller=CallerScript().press("2", on="playback", nth=2, after=0.3))
            rec = (await wait_records(server, 1))[0]
            inbound_cmds = [c for s in emu.sessions if s.mode == "inbound" for c in s.commands]
            return rec, call, server.dialer.originated, inbound_cmds
        finally:
            await finish(server, emu)

    rec, call, originated, _cmds = run_virtual(main)
    assert originated == [("expert-101", "user/1101")]
    conf = next(rec.of_type("conference"))
    assert conf["result"] == "ended" and 29.0 < conf["seconds"] < 31.0
    assert states(rec)[-1] == "bye" and rec.disposition == "completed"
    apps = call.channel.app_history
    hold = [g for a, g in apps if a == "playback" and "loops=-1" in (g or "")]
    assert hold, "the caller heard the ringback while the expert's phone rang"
    assert apps.index(("playback", hold[0])) < [a for a, _ in apps].index("conference")


def test_an_expert_who_does_not_answer_fails_the_room(site, audio):
    async def main():
        server, emu = await serving_experts(site, audio, Agent(answer_delay=3.0, fail_cause="NO_ANSWER"))
        try:
            await emu.place_call("127.0.0.1", server.port, destination="95100",
                                 caller=CallerScript().press("2", on="playback", nth=2, after=0.3))
            return (await wait_records(server, 1))[0]
        finally:
            await finish(server, emu)

    rec = run_virtual(main)
    conf = next(rec.of_type("conference"))
    assert conf["result"] == "failed" and "NO_ANSWER" in conf["reason"]
    assert states(rec)[-2:] == ["sorry", "bye"]


def test_no_call_when_the_room_already_has_its_moderator(site, audio):
    async def main():
        server, emu = await serving_experts(site, audio, Agent(answer_delay=0.5, talk=20.0))
        try:
            for _ in range(2):
                await emu.place_call("127.0.0.1", server.port, destination="95100",
                                     caller=CallerScript().press("2", on="playback", nth=2, after=0.3))
                await asyncio.sleep(8)
            recs = await wait_records(server, 2)
            return recs, server.dialer.originated
        finally:
            await finish(server, emu)

    recs, originated = run_virtual(main)
    assert len(originated) == 1
    assert all(next(r.of_type("conference"))["result"] == "ended" for r in recs)


# ---------------------------------------------------------------- configuration

@pytest.mark.parametrize("data,message", [
    ({"listen": "localhost"}, "listen must be 'host:port'"),
    ({"routes": [{"flow": "x"}]}, "give 'destination' and/or 'variable'"),
    ({"routes": [{"destination": "(", "flow": "x"}]}, "bad regular expression"),
    ({"trusted_networks": ["10.0.0.0/33"]}, "trusted_networks[0]"),
    ({"freeswitch": {"esl": {"pasword": "x"}}}, "unknown key 'pasword'"),
    ({"experts": {"originate": True}}, "experts.originate needs freeswitch.esl"),
    ({"prompts": {"tts": "festival"}}, "prompts.tts must be"),
    ({"recordings": "/var/lib/my recordings"}, "must not contain spaces"),
    ({"freeswitch": {"esl": {"password": "${NOPE_NOT_SET}"}}}, "environment variable NOPE_NOT_SET is not set"),
])
def test_configuration_errors_name_the_key(data, message):
    with pytest.raises(ServeConfigError) as e:
        parse_config(data, env={})
    assert message in str(e.value)


def test_unknown_sections_go_to_the_actions(tmp_path):
    f = tmp_path / "serve.yaml"
    f.write_text("listen: 0.0.0.0:9000\npolicy: {vip_free_registration: false}\n"
                 "freeswitch: {esl: {password: '${ESL_PW}'}}\n", encoding="utf-8")
    cfg = load_serve_config(f, env={"ESL_PW": "s3cret"})
    assert cfg.listen == ("0.0.0.0", 9000) and cfg.esl.password == "s3cret"
    assert cfg.action_config == {"policy": {"vip_free_registration": False}}


def test_cli_reports_bad_input_without_a_traceback(tmp_path):
    from click.testing import CliRunner

    import cli

    bad = tmp_path / "bad.yaml"
    bad.write_text("listen: [1, 2\n", encoding="utf-8")
    r = CliRunner().invoke(cli.main, ["serve", "--config", str(bad)])
    assert r.exit_code == 2 and "error:" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(cli.main, ["serve", "--flows", str(tmp_path / "nowhere")])
    assert r.exit_code == 2 and "does not exist" in r.output
    r = CliRunner().invoke(cli.main, ["serve", "--listen", "nohostport", "--flows", str(tmp_path)])
    assert r.exit_code == 2 and "--listen must be 'host:port'" in r.output
    r = CliRunner().invoke(cli.main, ["serve", "--flows", str(tmp_path), "--db", "sqlite:////nonexistent/dir/x.db"])
    assert r.exit_code == 2 and "database" in r.output and "Traceback" not in r.output


def test_a_caller_gone_before_the_first_prompt_still_has_a_record(site, audio):
    """9.log: BYE right after the answer - the disconnect notice comes before the reply of the
    queued prompt, which never runs.  The call ends at once with its record."""
    (site / "flows" / "other.yaml").unlink()

    async def main():
        server, emu = await serving(site, audio, routes=[{"destination": "95100", "flow": "hello"}])
        try:
            await emu.place_call("127.0.0.1", server.port, destination="95100", notice_position="before_hangup",
                                 caller=CallerScript().hangup(at=0.001))
            return (await wait_records(server, 1))[0]
        finally:
            await finish(server, emu)

    rec = run_virtual(main)
    assert rec.flow == "hello" and rec.disposition == "hangup" and rec.hangup_cause == "NORMAL_CLEARING"
    assert rec.duration < 0.5


def test_a_bug_outside_the_flow_still_leaves_a_record_and_no_open_call(site, audio, monkeypatch):
    import engine.serve.server as srv

    def broken(*a, **k):
        raise RuntimeError("routing exploded")
    monkeypatch.setattr(srv, "route_call", broken)

    async def main():
        server, emu = await serving(site, audio)
        try:
            call = await emu.place_call("127.0.0.1", server.port, destination="95100")
            rec = (await wait_records(server, 1))[0]
            await call.wait_hangup(10)
            return rec, call.channel.hangup_cause
        finally:
            await finish(server, emu)

    rec, cause = run_virtual(main)
    assert rec.disposition == "error" and "routing exploded" in rec.error["message"]
    assert cause == "NORMAL_TEMPORARY_FAILURE"


def test_sighup_and_the_reload_loop_pick_up_a_new_flow(site, audio):
    async def main():
        server, emu = await serving(site, audio)
        try:
            (site / "flows" / "third.yaml").write_text(HELLO.replace("flow: hello", "flow: third"), encoding="utf-8")
            import os
            import signal
            run = asyncio.get_running_loop().create_task(server.run_forever())
            await asyncio.sleep(0.1)
            os.kill(os.getpid(), signal.SIGHUP)
            for _ in range(100):
                await asyncio.sleep(0.05)
                if "third" in server.flows.by_name:
                    break
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.wait_for(run, 30)
            return set(server.flows.by_name), server.metrics.draining
        finally:
            await emu.close()

    names, draining = run_virtual(main)
    assert names == {"hello", "other", "third"} and draining


@pytest.mark.parametrize("first,expected", [
    ("{file: /srv/sounds/welcome.wav}", "/srv/sounds/welcome.wav"),
    ("{file: '/srv/sounds/{{ lang }}/welcome.wav'}", None),       # known only during the call
    ("{tone: beep}", "tone_stream://%(500,0,800)"),
])
def test_the_opening_sent_with_the_handshake(tmp_path, first, expected):
    """A start `play` whose first item is a literal file (or a tone) is known before the call:
    it goes out with connect/answer; a file named by a template is not."""
    from engine.actions import default_registry
    from engine.serve.flows import FlowSet, opening_of

    (tmp_path / "f.yaml").write_text(
        "flow: f\nlanguages: [en]\nstart: hi\nstates:\n"
        f"  hi:\n    play: [{first}]\n    next: bye\n  bye:\n    hangup: true\n", encoding="utf-8")
    flows = FlowSet(tmp_path, registry=default_registry())
    flows.reload()
    assert "f" in flows.by_name, flows.problems
    assert asyncio.run(opening_of(flows.by_name["f"], "en")) == expected


def test_the_spool_follows_its_path_when_moved_or_deleted(tmp_path):
    """The spool's descriptor stays open between records; a file moved away (or deleted) by an
    operator is noticed at the next record, which starts a new file at the configured path."""
    from engine.serve.config import parse_config
    from engine.serve.server import Server

    spool = tmp_path / "var" / "spool.jsonl"
    (tmp_path / "flows").mkdir()
    server = Server(parse_config({"flows": str(tmp_path / "flows"), "db": "none", "cdr_spool": str(spool),
                                  "prompts": {"tts": "none"}}), registry={})
    server._spool({"call_id": "a"})
    spool.rename(tmp_path / "taken.jsonl")
    server._spool({"call_id": "b"})
    spool.unlink()
    server._spool({"call_id": "c"})
    server._close_spool()
    assert [json.loads(x)["call_id"] for x in (tmp_path / "taken.jsonl").read_text().splitlines()] == ["a"]
    assert [json.loads(x)["call_id"] for x in spool.read_text().splitlines()] == ["c"]
    assert server.metrics.cdr_spooled == 3
