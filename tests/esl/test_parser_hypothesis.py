"""Property tests: any chunking of a byte stream gives the same messages; serialised events
(with arbitrary text values and bodies) parse back to the same headers and body."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.channel.esl.parser import Parser
from engine.testing import fswire
from esl_captures import recv_chunks

STREAMS = {name: b"".join(recv_chunks(name)) for name in ("3", "a_inbound", "batch2/p",
                                                          "batch2/l_1")}
REFERENCE = {name: Parser().feed(data) for name, data in STREAMS.items()}


def signature(messages):
    return [(m.headers.items(), m.raw_body,
             None if m.event is None else (m.event.headers.items(), m.event.body))
            for m in messages]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(STREAMS)),
       cuts=st.lists(st.integers(min_value=0, max_value=200_000), max_size=40))
def test_any_chunking_gives_the_same_messages(name, cuts):
    data = STREAMS[name]
    points = sorted({c % (len(data) + 1) for c in cuts})
    parser, out, prev = Parser(), [], 0
    for p in points + [len(data)]:
        out += parser.feed(data[prev:p])
        prev = p
    assert signature(out) == signature(REFERENCE[name])


header_names = st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,20}", fullmatch=True).filter(
    lambda n: n.lower() not in ("content-length", "event-name"))
header_values = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=50, deadline=None)
@given(headers=st.lists(st.tuples(header_names, header_values), max_size=12),
       body=st.none() | st.text(st.characters(blacklist_categories=("Cs",)), max_size=60),
       split=st.integers(min_value=0, max_value=10_000))
def test_serialised_events_round_trip(headers, body, split):
    full = [("Event-Name", "CUSTOM")] + headers
    frame = fswire.event_plain(full, body) + fswire.command_reply("+OK")
    split %= len(frame) + 1
    parser = Parser()
    msgs = parser.feed(frame[:split]) + parser.feed(frame[split:])
    assert len(msgs) == 2
    event = msgs[0].event
    got = [(n, v) for n, v in event.headers.items() if n != "Content-Length"]
    assert got == [(n, v) for n, v in full]
    assert event.body == body
    assert msgs[1].reply_text == "+OK"
