"""The files a hospital's engineer copies to FreeSWITCH and systemd (freeswitch/): well formed,
and consistent with what `ivrflow serve` sends and expects."""

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from engine.channel.freeswitch import FsOptions
from engine.serve.config import load_serve_config

FS = Path(__file__).resolve().parent.parent.parent / "freeswitch"


def _xml(path):
    text = path.read_text(encoding="utf-8")
    if path.name.endswith(".snippet"):
        text = f"<wrap>{text}</wrap>"
    return ET.fromstring(text)


@pytest.mark.parametrize("path", sorted(p for p in FS.rglob("*") if p.suffix in (".xml", ".snippet")),
                         ids=lambda p: str(p.relative_to(FS)))
def test_freeswitch_xml_is_well_formed(path):
    assert _xml(path) is not None


def test_dialplan_hands_calls_to_the_socket_ivrflow_listens_on():
    cfg = load_serve_config(FS / "ivrflow-serve.example.yaml", env={"IVRFLOW_ESL_PASSWORD": "x"})
    for f in (FS / "dialplan" / "public" / "10_ivrflow.xml", FS / "dialplan" / "default" / "10_ivrflow.xml"):
        actions = [(a.get("application"), a.get("data")) for a in _xml(f).iter("action")]
        sockets = [d for a, d in actions if a == "socket"]
        assert sockets and all(d == f"{cfg.listen[0]}:{cfg.listen[1]} async full" for d in sockets)
        # the trust variable is always set by the dialplan, never left to the caller
        assert sum(1 for a, d in actions if a == "set" and d.startswith("ivrflow_caller_trusted=")) == len(sockets)
        assert all(d == "continue_on_fail=true" for a, d in actions if a == "set" and d.startswith("continue_on_fail"))


def test_queue_context_matches_the_channel_default_and_uses_the_priority():
    ctx = _xml(FS / "dialplan" / "ivrflow_queues.xml").find("context")
    assert ctx.get("name") == FsOptions().queue_context
    data = [a.get("data") for a in ctx.iter("action")]
    assert "cc_base_score=${ivrflow_queue_priority}" in data


def test_example_configuration_loads():
    cfg = load_serve_config(FS / "ivrflow-serve.example.yaml", env={"IVRFLOW_ESL_PASSWORD": "secret"})
    assert cfg.esl.password == "secret" and cfg.experts.originate
    assert cfg.freeswitch.conference_profile == "ivrflow_expert"
    assert {r.flow for r in cfg.routes} == {"hospital", "school"}
    assert "policy" in cfg.action_config and "freeswitch" not in cfg.action_config
    prof = _xml(FS / "autoload_configs" / "conference.conf.xml.snippet").find("profile")
    assert prof.get("name") == cfg.freeswitch.conference_profile


def test_systemd_unit_runs_serve_with_the_config():
    unit = (FS / "systemd" / "ivrflow-serve.service").read_text()
    assert re.search(r"^ExecStart=\S+ivrflow serve --config /etc/ivrflow/serve.yaml$", unit, re.M)
    assert "KillSignal=SIGTERM" in unit and "ExecReload=/bin/kill -HUP $MAINPID" in unit
