"""The emulator's frames have the captured layout: same header names in the same order,
URL-encoded values, same outer framing."""

import re

import pytest

from engine.channel.esl.parser import Parser
from engine.testing import CallerScript
from esl_captures import recv_chunks
from esl_helpers import drive_call, run
from esl_helpers import PAGD_1, REC, steps


def capture_messages(name):
    parser = Parser()
    out = []
    for chunk in recv_chunks(name):
        out += parser.feed(chunk)
    return out


def layout(headers):
    """Header names in order, a run of variable_* collapsed (their set depends on the call)."""
    out = []
    for name in headers.names():
        if name.startswith("variable_"):
            name = "variable_*"
        if not (out and out[-1] == name == "variable_*"):
            out.append(name)
    return out


def first_events(messages):
    seen = {}
    for m in messages:
        if m.event is not None:
            key = m.event.name + (":" + m.event.get("Action", "") if m.event.name == "CUSTOM"
                                  else "")
            seen.setdefault(key, m.event)
    return seen


@pytest.fixture(scope="module")
def call_1():
    scenario = steps(("playback", "tone_stream://%(200,0,440)"),
                     ("play_and_get_digits", PAGD_1), ("hangup",))

    async def main():
        return await drive_call(scenario, emu_kwargs={"frame_ms": 20},
                                caller=CallerScript().press("1234#", on="play_and_get_digits"))
    return run(main)


def test_connect_reply_has_the_captured_header_set_and_order(call_1):
    ours = call_1.call.session.sent_messages()[0]
    real = capture_messages("1")[0]
    assert ours.headers.names() == real.headers.names()
    assert len(ours.headers) == 105
    raw = b"".join(call_1.call.session.sent)
    block = raw[:raw.index(b"\n\n")].decode()
    assert "Reply-Text: %2BOK%0A\n" in block and "Socket-Mode: async\n" in block
    assert re.search(r"variable_current_application_data: 127\.0\.0\.1%3A\d+%20async%20full",
                     block)


@pytest.mark.parametrize("event", ["CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE", "DTMF",
                                   "CHANNEL_ANSWER", "CHANNEL_HANGUP", "CHANNEL_UNPARK",
                                   "CHANNEL_STATE", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_PARK"])
def test_event_layout_matches_capture(call_1, event):
    ours = first_events(call_1.call.session.sent_messages())[event]
    real = first_events(capture_messages("1"))[event]
    assert layout(ours.headers) == layout(real.headers)


def test_event_framing_matches_capture(call_1):
    raw = b"".join(call_1.call.session.sent)
    frames = re.findall(rb"Content-Length: (\d+)\nContent-Type: text/event-plain\n\nEvent-Name: ",
                        raw)
    assert len(frames) == len(call_1.events())
    assert b"Application-Data: tone_stream%3A//%25(200,0,440)\n" in raw


def test_disconnect_notice_layout(call_1):
    ours = call_1.call.session.sent_messages()[-1]
    real = capture_messages("1")[-1]
    assert ours.headers.names() == real.headers.names()
    assert ours.headers["Linger-Time"] == "-1" and ours.raw_body == b""


def test_record_events_layout():
    scenario = steps(("record", f"{REC} 10 200 2"), ("hangup",))

    async def main():
        return await drive_call(scenario, emu_kwargs={"frame_ms": 20},
                                events=["RECORD_START", "RECORD_STOP"],
                                caller=CallerScript().speak(1.5, on="record", after=0.1))
    result = run(main)
    ours = first_events(result.call.session.sent_messages())
    real = first_events(capture_messages("batch2/i"))
    for name in ("RECORD_START", "RECORD_STOP"):
        assert layout(ours[name].headers) == layout(real[name].headers)
