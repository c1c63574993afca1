"""The files a hospital's engineer copies to FreeSWITCH and systemd (freeswitch/): well formed,
consistent with what `ivrflow serve` sends and expects, and with a stock FreeSWITCH 1.10
(vanilla configuration) they are added to."""

import configparser
import re
import shlex
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import click

import cli
from engine.channel.freeswitch import TRANSFER_CONTEXT_VAR, FsOptions
from engine.serve.config import load_serve_config

ROOT = Path(__file__).resolve().parent.parent.parent
FS = ROOT / "freeswitch"
DEFAULT_XML = FS / "dialplan" / "default" / "10_ivrflow.xml"
PUBLIC_XML = FS / "dialplan" / "public" / "10_ivrflow.xml"
QUEUES_XML = FS / "dialplan" / "ivrflow_queues.xml"
ENV = {"IVRFLOW_ESL_PASSWORD": "secret", "IVRFLOW_DB": "postgresql://ivrflow:pw@localhost/ivrflow"}

# The stock (vanilla) FreeSWITCH 1.10 dialplan: the destination_number expressions of the
# extensions that come BEFORE `<X-PRE-PROCESS cmd="include" data="default/*.xml"/>` in
# conf/vanilla/dialplan/default.xml (plus default/01_Talking_Clock.xml and 00_ladspa.xml, which
# sort before 10_ivrflow.xml), and before `public/*.xml` in public.xml (plus public/00_inbound_did.xml).
# The first extension that matches wins, so ivrflow's numbers must match none of these.
STOCK_DEFAULT_BEFORE_INCLUDE = [
    r"^886$", r"^\*8$", r"^\*\*(\d+)$", r"^(redial|870)$", r"^9001$", r"^9000$",
    r"^88(\d{4})$|^\*0(.*)$", r"^779$", r"^\*69$|^869$|^lcr$",
    r"^80(\d{2})$",                      # del-group
    r"^81(\d{2})$",                      # add-group
    r"^82(\d{2})$", r"^83(\d{2})$", r"^8(10[01][0-9])$", r"^(10[01][0-9])$", r"^(11[01][0-9])$",
    r"^2000$", r"^2001$", r"^2002$", r"^(operator|0)$", r"^vmain$|^4000$|^\*98$", r"^sip:(.*)$",
    r"^(30\d{2})$", r"^(31\d{2})$", r"^(32\d{2})$", r"^(33\d{2})$", r"^9(888|8888|1616|3232)$",
    r"^0911$", r"^0912$", r"^0913$", r"^5000$", r"^5001$", r"^pagegroup$|^7243$", r"^5900$",
    r"^5901$", r"^(6000)$", r"^(60\d[1-9])$", r"park\+(\d+)", r"^parking$", r"callpark", r"pickup",
    r"^wait$", r"^9178$", r"^9179$", r"^9180$", r"^9181$", r"^9182$", r"^9183$", r"^9184$",
    r"^9191$", r"^9192$", r"^9193$", r"^9194$", r"^9195$", r"^9196$", r"^9197$", r"^9198$",
    r"^9787$", r"^9664$", r"^9386$",
    r"^9170$", r"^9171$", r"^9172$", r"^101$",
]
STOCK_PUBLIC_BEFORE_INCLUDE = [r"^(10[01][0-9])$", r"^(5551212)$"]

# What mod_event_socket's config() reads (mod_event_socket.c); anything else is ignored silently.
EVENT_SOCKET_PARAMS = {"listen-ip", "listen-port", "password", "apply-inbound-acl",
                       "stop-on-bind-error", "nat-map", "debug"}
# Profile parameters of mod_conference used here (conference.conf.xml, mod_conference docs).
CONFERENCE_PARAMS = {"domain", "rate", "interval", "energy-level", "comfort-noise", "moh-sound",
                     "muted-sound", "unmuted-sound", "alone-sound", "enter-sound", "exit-sound",
                     "kicked-sound", "caller-controls", "moderator-controls", "max-members",
                     "member-flags", "conference-flags", "sound-prefix", "caller-id-name",
                     "caller-id-number", "endconf-grace-time"}


def _xml(path):
    text = path.read_text(encoding="utf-8")
    if path.name.endswith(".snippet"):
        text = f"<wrap>{text}</wrap>"
    return ET.fromstring(text)


def _extensions(path):
    return list(_xml(path).iter("extension"))


def _actions(ext):
    return [(a.get("application"), a.get("data")) for a in ext.iter("action")]


def _numbers(expression):
    """The numbers of an expression written as ^N$ or ^(N|M|...)$ (digits only)."""
    m = re.fullmatch(r"\^\(?([0-9|]+)\)?\$", expression)
    assert m, f"write ivrflow's destination_number expressions as ^(N|M)$: {expression!r}"
    return m.group(1).split("|")


def _guide():
    text = (ROOT / "docs" / "freeswitch.md").read_text(encoding="utf-8")
    return text.split("\n## Figures")[0]


@pytest.mark.parametrize("path", sorted(p for p in FS.rglob("*") if p.suffix in (".xml", ".snippet")),
                         ids=lambda p: str(p.relative_to(FS)))
def test_freeswitch_xml_is_well_formed(path):
    assert _xml(path) is not None


def test_dialplan_hands_calls_to_the_socket_ivrflow_listens_on():
    cfg = load_serve_config(FS / "ivrflow-serve.example.yaml", env=ENV)
    for f in (PUBLIC_XML, DEFAULT_XML):
        actions = [(a.get("application"), a.get("data")) for a in _xml(f).iter("action")]
        sockets = [d for a, d in actions if a == "socket"]
        assert sockets and all(d == f"{cfg.listen[0]}:{cfg.listen[1]} async full" for d in sockets)
        # the trust variable is always set by the dialplan, never left to the caller
        assert sum(1 for a, d in actions if a == "set" and d.startswith("ivrflow_caller_trusted=")) == len(sockets)


def test_the_fallback_follows_the_socket_and_needs_no_continue_on_fail():
    # mod_event_socket's socket application logs "Socket Error!" and returns when it cannot
    # connect: the next actions run.  continue_on_fail is read by bridge only.
    queue_exts = {e.get("name") for e in _extensions(QUEUES_XML)}
    assert "operator" in queue_exts
    for f in (PUBLIC_XML, DEFAULT_XML):
        for ext in _extensions(f):
            acts = _actions(ext)
            assert not any(a == "set" and d.startswith("continue_on_fail") for a, d in acts), ext.get("name")
            i = [a for a, _ in acts].index("socket")
            after = acts[i + 1:]
            assert [a for a, _ in after] == ["answer", "playback", "transfer"], ext.get("name")
            assert after[-1][1] == f"operator XML {FsOptions().queue_context}"


def test_internal_numbers_are_not_taken_by_stock_default_extensions():
    # the stock default.xml includes default/*.xml at the end: 8000 and 8100 would hit
    # del-group / add-group and never reach ivrflow
    for ext in _extensions(DEFAULT_XML):
        (cond,) = ext.iter("condition")
        assert cond.get("field") == "destination_number"
        for number in _numbers(cond.get("expression")):
            taken = [p for p in STOCK_DEFAULT_BEFORE_INCLUDE if re.search(p, number)]
            assert not taken, f"{number} is taken by the stock extension {taken}"


def test_public_numbers_are_not_taken_by_stock_public_extensions():
    for ext in _extensions(PUBLIC_XML):
        (cond,) = ext.iter("condition")
        for number in _numbers(cond.get("expression")):
            assert not [p for p in STOCK_PUBLIC_BEFORE_INCLUDE if re.search(p, number)], number


def test_public_context_leads_only_to_ivrflow_or_the_operator():
    # no bridge, no transfer to "default" (toll fraud): only ivrflow's own variables are set
    for ext in _extensions(PUBLIC_XML):
        assert ext.get("continue") in (None, "false")
        for app, data in _actions(ext):
            assert app in {"set", "socket", "answer", "playback", "transfer"}, app
            if app == "set":
                assert data.split("=", 1)[0] in {"ivrflow_flow", "ivrflow_caller_trusted", "ivrflow_lang",
                                                 TRANSFER_CONTEXT_VAR}
            if app == "transfer":
                assert data == "operator XML ivrflow_queues"
        assert not list(ext.iter("anti-action"))


def test_public_callers_are_transferred_only_within_their_own_context():
    # a flow's `transfer: {to: X}` may be built from the caller's keys: for carrier calls it
    # must land in a context that holds only what outside callers may reach, not "default"
    contexts = {c.get("name"): c for c in _xml(QUEUES_XML).iter("context")}
    for ext in _extensions(PUBLIC_XML):
        sets = dict(d.split("=", 1) for a, d in _actions(ext) if a == "set")
        confined = sets.get(TRANSFER_CONTEXT_VAR)
        assert confined and confined != "default" and confined in contexts, ext.get("name")
        for app, data in ((a.get("application"), a.get("data")) for a in contexts[confined].iter("action")):
            assert app in {"set", "bridge", "transfer"}, app
            if app == "bridge":
                assert data.startswith("user/"), data          # registered phones, no gateway
            if app == "transfer":
                assert data.endswith(" XML ivrflow_queues"), data


def test_queue_context_matches_the_channel_default_and_uses_the_priority():
    ctx = _xml(QUEUES_XML).find("context")
    assert ctx.get("name") == FsOptions().queue_context
    data = [a.get("data") for a in ctx.iter("action")]
    assert "cc_base_score=${ivrflow_queue_priority}" in data


def test_queue_extension_works_without_mod_callcenter():
    # the stock modules.conf.xml does not load mod_callcenter, and an unknown application hangs
    # the call up (DESTINATION_OUT_OF_ORDER): the callcenter action is guarded
    (ext,) = [e for e in _extensions(QUEUES_XML) if e.get("name") == "ivrflow_queue"]
    conds = list(ext.iter("condition"))
    guard = [c for c in conds if c.get("field") == "${module_exists(mod_callcenter)}"]
    assert len(guard) == 1 and guard[0].get("expression") == "^true$"
    assert [a.get("application") for a in guard[0].iter("action")].count("callcenter") == 1
    assert [(a.get("application"), a.get("data")) for a in guard[0].iter("anti-action")] == \
        [("transfer", "operator XML ivrflow_queues")]
    # $1 would be the guard's (empty) capture, not the queue name
    (cc,) = [a for a in ext.iter("action") if a.get("application") == "callcenter"]
    assert cc.get("data") == "${destination_number}@default"
    # the queue name the channel sends must match the extension
    first = conds[0]
    assert first.get("field") == "destination_number"
    assert re.fullmatch(first.get("expression").strip("^$"), "operators")


def test_event_socket_configuration():
    cfg = load_serve_config(FS / "ivrflow-serve.example.yaml", env=ENV)
    root = _xml(FS / "autoload_configs" / "event_socket.conf.xml")
    assert root.tag == "configuration" and root.get("name") == "event_socket.conf"
    params = {p.get("name"): p.get("value") for p in root.find("settings").iter("param")}
    assert set(params) <= EVENT_SOCKET_PARAMS
    assert params["listen-ip"] == "127.0.0.1" and params["apply-inbound-acl"] == "loopback.auto"
    assert int(params["listen-port"]) == cfg.esl.port and params["password"] != "ClueCon"


def test_acl_and_conference_snippets():
    (lst,) = _xml(FS / "autoload_configs" / "acl.conf.xml.snippet").iter("list")
    assert lst.get("name") == "carriers" and lst.get("default") == "deny"
    assert all(n.get("type") in ("allow", "deny") and n.get("cidr") for n in lst.iter("node"))
    assert "carriers)}" in PUBLIC_XML.read_text()
    prof = _xml(FS / "autoload_configs" / "conference.conf.xml.snippet").find("profile")
    params = {p.get("name"): p.get("value") for p in prof.iter("param")}
    assert set(params) <= CONFERENCE_PARAMS
    assert params["caller-controls"] == "none"      # a reserved group name: no DTMF controls


def test_example_configuration_loads():
    cfg = load_serve_config(FS / "ivrflow-serve.example.yaml", env=ENV)
    assert cfg.esl.password == "secret" and cfg.experts.originate
    # the database URL (with its password) comes from the environment file, as the guide says
    assert cfg.db == ENV["IVRFLOW_DB"]
    assert cfg.freeswitch.conference_profile == "ivrflow_expert"
    assert {r.flow for r in cfg.routes} == {"hospital", "school"}
    assert "policy" in cfg.action_config and "freeswitch" not in cfg.action_config
    prof = _xml(FS / "autoload_configs" / "conference.conf.xml.snippet").find("profile")
    assert prof.get("name") == cfg.freeswitch.conference_profile


def _unit():
    cp = configparser.ConfigParser(interpolation=None, strict=True)
    cp.optionxform = str
    cp.read_string((FS / "systemd" / "ivrflow-serve.service").read_text())
    return cp


def test_systemd_unit_runs_serve_with_the_config():
    unit = (FS / "systemd" / "ivrflow-serve.service").read_text()
    assert re.search(r"^ExecStart=\S+ivrflow serve --config /etc/ivrflow/serve.yaml$", unit, re.M)
    assert "KillSignal=SIGTERM" in unit and "ExecReload=/bin/kill -HUP $MAINPID" in unit
    svc = _unit()["Service"]
    assert svc["User"] == "ivrflow" and svc["Group"] == "freeswitch"
    assert svc["EnvironmentFile"].lstrip("-") == "/etc/ivrflow/ivrflow.env"
    argv = shlex.split(svc["ExecStart"])
    serve = cli.main.commands["serve"]
    known = {o for p in serve.params for o in p.opts}
    assert all(a in known for a in argv[2:] if a.startswith("-"))


def test_guide_commands_exist_and_use_the_dialplan_numbers():
    guide = _guide()
    # every `ivrflow <group> <command> --option` of the guide is a real option
    seen = set()
    for m in re.finditer(r"bin/ivrflow ([^\n`]*)", guide.replace("\\\n", " ")):
        words = shlex.split(m.group(1), comments=True)
        cmd, path = cli.main, []
        while words and isinstance(cmd, click.Group) and words[0] in cmd.commands:
            path.append(words[0])
            cmd = cmd.commands[words.pop(0)]
        known = {o for p in cmd.params for o in p.opts}
        for opt in (w.split("=")[0] for w in words if w.startswith("--")):
            assert opt in known, f"ivrflow {' '.join(path)}: no option {opt}"
        seen.add(" ".join(path))
    assert {"serve", "db upgrade", "db seed", "prompts build"} <= seen
    # the internal test call dials a number of the default-context extensions
    internal = {n for e in _extensions(DEFAULT_XML) for c in e.iter("condition")
                for n in _numbers(c.get("expression"))}
    dialled = re.findall(r"loopback/(\d+)/default", guide)
    assert dialled and set(dialled) <= internal
    # the fallback is the socket returning, not continue_on_fail; ESL changes need a restart
    assert "dialplan's `continue_on_fail` fallback" not in guide
    assert "fs_cli -x 'reload mod_event_socket'" not in guide
    assert "/etc/fs_cli.conf" in guide
