"""Malformed and hostile input: a clear ProtocolError, never a hang or silent corruption."""

import pytest

from engine.channel.esl.errors import ProtocolError
from engine.channel.esl.parser import Parser, encode_command, url_decode, url_encode

REPLY = b"Content-Type: command/reply\nReply-Text: +OK\n\n"


def event_frame(inner: bytes) -> bytes:
    return b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(inner) + inner


@pytest.mark.parametrize("value", [b"abc", b"-5", b"12x", b"", b"1e3", b"99999999999999"])
def test_bad_content_length(value):
    with pytest.raises(ProtocolError, match="Content-Length"):
        Parser().feed(b"Content-Type: api/response\nContent-Length: " + value + b"\n\nxx")


def test_body_over_the_limit_is_refused_before_reading_it():
    parser = Parser(max_body_bytes=1000)
    with pytest.raises(ProtocolError, match="exceeds the limit"):
        parser.feed(b"Content-Type: api/response\nContent-Length: 1001\n\n")


def test_header_block_over_the_limit():
    parser = Parser(max_header_bytes=100)
    with pytest.raises(ProtocolError, match="exceeds"):
        parser.feed(b"Content-Type: command/reply\nX-Pad: " + b"a" * 200)


def test_garbage_is_rejected_at_the_first_complete_line():
    parser = Parser()
    with pytest.raises(ProtocolError, match="malformed header line"):
        parser.feed(b"HTTP/1.1 200 OK\r\n")


def test_binary_garbage_with_blank_line():
    with pytest.raises(ProtocolError):
        Parser().feed(b"\x00\x01\x02\xff\n\n")


def test_frame_without_content_type():
    with pytest.raises(ProtocolError, match="without Content-Type"):
        Parser().feed(b"Reply-Text: +OK\n\n")


def test_event_without_event_name():
    with pytest.raises(ProtocolError, match="Event-Name"):
        Parser().feed(event_frame(b"Unique-ID: x\n\n"))


def test_event_body_shorter_than_its_content_length():
    with pytest.raises(ProtocolError, match="Content-Length says 50"):
        Parser().feed(event_frame(b"Event-Name: BACKGROUND_JOB\nContent-Length: 50\n\n+OK\n"))


def test_event_with_trailing_junk():
    with pytest.raises(ProtocolError, match="unexpected bytes"):
        Parser().feed(event_frame(b"Event-Name: DTMF\n\njunk"))


def test_empty_event_frame():
    with pytest.raises(ProtocolError, match="without body"):
        Parser().feed(b"Content-Length: 0\nContent-Type: text/event-plain\n\n")


def test_invalid_json_event():
    body = b"{not json"
    with pytest.raises(ProtocolError, match="JSON"):
        Parser().feed(b"Content-Length: %d\nContent-Type: text/event-json\n\n" % len(body) + body)


def test_failed_parser_stays_failed():
    parser = Parser()
    with pytest.raises(ProtocolError):
        parser.feed(b"garbage here\n")
    with pytest.raises(ProtocolError, match="already failed"):
        parser.feed(REPLY)


def test_incomplete_frame_waits_without_error():
    parser = Parser()
    assert parser.feed(b"Content-Type: api/response\nContent-Length: 10\n\n12345") == []
    assert parser.in_message and parser.buffered == 5
    [msg] = parser.feed(b"67890")
    assert msg.body == "1234567890" and not parser.in_message


def test_crlf_and_leading_blank_lines_are_tolerated():
    msgs = Parser().feed(b"\n\r\nContent-Type: command/reply\r\nReply-Text: +OK\r\n\r\n" + REPLY)
    assert [m.reply_text for m in msgs] == ["+OK", "+OK"]


def test_values_are_decoded_after_line_splitting():
    inner = b"Event-Name: CUSTOM\nX-Text: line1%0AFake-Header: injected\n\n"
    [msg] = Parser().feed(event_frame(inner))
    assert msg.event["X-Text"] == "line1\nFake-Header: injected"
    assert "Fake-Header" not in msg.event


def test_invalid_utf8_in_a_value_is_replaced_not_fatal():
    [msg] = Parser().feed(event_frame(b"Event-Name: DTMF\nCaller-Caller-ID-Name: a%FFb\n\n"))
    assert msg.event["Caller-Caller-ID-Name"] == "a\ufffdb"


def test_json_event_with_body():
    body = b'{"Event-Name":"BACKGROUND_JOB","Job-UUID":"j1","_body":"+OK x\\n"}'
    [msg] = Parser().feed(b"Content-Length: %d\nContent-Type: text/event-json\n\n" % len(body)
                          + body)
    assert msg.event.name == "BACKGROUND_JOB" and msg.event.body == "+OK x\n"


def test_log_data_and_unknown_types_are_plain_messages():
    body = b"2026-11-23 [INFO] hello\n"
    msgs = Parser().feed(b"Content-Type: log/data\nContent-Length: %d\nLog-Level: 6\n\n"
                         % len(body) + body + b"Content-Type: text/rude-rejection\n"
                         b"Content-Length: 6\n\ndenied")
    assert msgs[0].content_type == "log/data" and msgs[0].body == body.decode()
    assert msgs[0].event is None and msgs[1].body == "denied"


def test_url_encode_matches_freeswitch():
    assert url_encode("tone_stream://%(200,0,440)") == "tone_stream%3A//%25(200,0,440)"
    assert url_encode("Mon, 23 Nov 2026 11:47:46 GMT") == \
        "Mon,%2023%20Nov%202026%2011%3A47%3A46%20GMT"
    assert url_encode("+OK\n") == "%2BOK%0A"
    assert url_decode(url_encode("您好 {a=b|c}")) == "您好 {a=b|c}"
    assert url_decode("100%") == "100%"


@pytest.mark.parametrize("bad", ["play\nback", "x\r"])
def test_encode_command_refuses_line_breaks(bad):
    with pytest.raises(ValueError, match="line break"):
        encode_command("sendmsg", [("execute-app-arg", bad)])
    with pytest.raises(ValueError, match="line break"):
        encode_command("api " + bad)


def test_encode_command_with_body():
    frame = encode_command("sendevent NOTIFY", [("profile", "internal")], body="hello")
    assert frame == b"sendevent NOTIFY\nprofile: internal\nContent-Length: 5\n\nhello"
