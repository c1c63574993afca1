"""Replay every captured FreeSWITCH byte stream through the socket-free parser.

Each capture (tests/fixtures/esl, copied from real FreeSWITCH 1.10.12) is fed as chunked on the
wire, re-chunked at random, and (for a selection) one byte at a time; every parsed message must
match the capture's summary line (content type, decoded header values, bodies).
"""

import random

import pytest

from engine.channel.esl.parser import Parser
from esl_captures import assert_matches_summary, capture_names, recv_chunks

NAMES = capture_names()
BYTEWISE = ["3", "11", "c_inbound", "d_inbound", "batch2/p", "batch2/l_1", "batch2/m"]


def parse_all(chunks):
    parser = Parser()
    out = []
    for chunk in chunks:
        out += parser.feed(chunk)
    assert parser.buffered == 0 and not parser.in_message
    return out


def test_all_captures_present():
    assert len(NAMES) == 70
    assert "1" in NAMES and "batch2/q3_inbound" in NAMES


@pytest.mark.parametrize("name", NAMES)
def test_capture_as_chunked_on_the_wire(name):
    assert assert_matches_summary(name, parse_all(recv_chunks(name))) > 0


@pytest.mark.parametrize("name", NAMES)
def test_capture_rechunked_randomly(name):
    data = b"".join(recv_chunks(name))
    rng = random.Random(name)
    chunks, pos = [], 0
    while pos < len(data):
        step = rng.choice([1, 2, 3, 7, 64, 500, 4096])
        chunks.append(data[pos:pos + step])
        pos += step
    assert_matches_summary(name, parse_all(chunks))


@pytest.mark.parametrize("name", BYTEWISE)
def test_capture_one_byte_at_a_time(name):
    data = b"".join(recv_chunks(name))
    assert_matches_summary(name, parse_all(data[i:i + 1] for i in range(len(data))))


def test_connect_reply_is_one_decoded_header_block():
    msgs = parse_all(recv_chunks("1"))
    connect = msgs[0]
    assert connect.content_type == "command/reply"
    assert connect.raw_body is None and connect.event is None
    assert len(connect.headers) == 105
    assert connect.reply_text == "+OK\n"                   # %2BOK%0A decoded after splitting
    assert connect.headers["Socket-Mode"] == "async" and connect.headers["control"] == "full"
    assert connect.headers["Caller-Caller-ID-Number"] == "13800000001"
    assert connect.headers["Caller-Destination-Number"] == "5000"
    assert connect.headers["variable_current_application_data"] == "127.0.0.1:8084 async full"
    assert connect.headers["FreeSWITCH-IPv6"] == "fd00::2"


def test_sip_connect_reply_has_152_headers():
    connect = parse_all(recv_chunks("9"))[0]
    assert len(connect.headers) == 152
    assert connect.headers["Channel-Name"].startswith("sofia/internal/")


def test_background_job_result_is_the_event_body_not_a_header():
    msgs = parse_all(recv_chunks("a_inbound"))
    jobs = [m.event for m in msgs if m.event is not None and m.event.name == "BACKGROUND_JOB"]
    assert len(jobs) == 1
    job = jobs[0]
    assert job.body == "+OK bfa3c2b9-8348-4a57-aabe-c0781bc1653d\n"
    assert job.headers["Content-Length"] == "41"
    assert job.headers["Job-Command-Arg"].startswith("{origination_uuid=bfa3c2b9")
    assert all(not name.startswith("+OK") for name in job.headers)


def test_api_response_and_disconnect_bodies():
    msgs = parse_all(recv_chunks("a_inbound"))
    api = [m for m in msgs if m.content_type == "api/response"][0]
    assert api.body == "+OK bfa3c2b9-8348-4a57-aabe-c0781bc1653d sent DTMF 1234#.\n"
    bye = msgs[-1]
    assert bye.content_type == "text/disconnect-notice"
    assert bye.body.startswith("Disconnected, goodbye.\nSee you at ClueCon!")


def test_chinese_text_decoded_from_url_encoding():
    msgs = parse_all(recv_chunks("batch2/m"))
    data = [m.event["Application-Data"] for m in msgs
            if m.event is not None and m.event.name == "CHANNEL_EXECUTE"
            and m.event.get("Application") == "speak"]
    assert data[1] == "tts_commandline|zh|您的余额是十二元五角"


def test_duplicate_headers_are_kept_in_order():
    msgs = parse_all(recv_chunks("batch2/l_inbound"))
    floor = next(m.event for m in msgs if m.event is not None
                 and m.event.get("Action") == "floor-change" and "Old-ID" in m.event)
    assert len(floor.headers.get_all("Conference-Name")) == 2
    assert floor.headers.names().index("Old-ID") < floor.headers.names().index("New-ID")
