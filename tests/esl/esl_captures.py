"""Read the FreeSWITCH captures copied into tests/fixtures/esl (logs gzipped, summaries as is).

Log format: `==== <ts> <<< RECV <n> bytes ====` then exactly n bytes FreeSWITCH sent (`>>> SEND`:
client bytes), `#### <ts> NOTE ...` annotations (possibly several lines), and
`\n#### (chunk did not end with newline)\n` after a chunk without a final newline.
Summary format: one line per ESL message, `key=value` pairs with Python-repr'd values.
"""

from __future__ import annotations

import ast
import gzip
import re
from functools import lru_cache
from dataclasses import dataclass, field
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "esl"

_CHUNK = re.compile(rb"==== (\S+) (<<< RECV|>>> SEND) (\d+) bytes ====\n")
_NOT_ENDED = b"\n#### (chunk did not end with newline)\n"
_TOKEN = re.compile(
    r"(?P<key>[A-Za-z0-9_-]+)=(?P<val>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|\S+)"
    r"|\+body\((?P<blen>\d+) bytes\)")
_CONNECT = re.compile(
    r"Content-Type=command/reply \(connect reply = CHANNEL_DATA, (?P<n>\d+) headers, "
    r"Reply-Text=(?P<rt>'(?:[^'\\]|\\.)*'), Socket-Mode=(?P<sm>\S+), Control=(?P<ctl>[^)]+)\)")


@dataclass
class Chunk:
    direction: str          # "recv" (from FreeSWITCH) or "send" (client)
    timestamp: str
    data: bytes


@dataclass
class SummaryLine:
    direction: str                       # "recv" / "send"
    timestamp: str
    text: str
    content_type: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    body: str | None = None              # api/disconnect bodies, stripped, maybe truncated '...'
    event_body_len: int | None = None    # "+body(N bytes)": the event's own body
    connect_headers: int | None = None   # connect reply: number of headers


def capture_names() -> list[str]:
    """All capture names, e.g. '1', 'a_inbound', 'batch2/g1'."""
    names = []
    for path in sorted(FIXTURES.glob("*.log.gz")) + sorted(FIXTURES.glob("batch2/*.log.gz")):
        rel = path.relative_to(FIXTURES).as_posix()
        names.append(rel[: -len(".log.gz")])
    return names


@lru_cache(maxsize=None)
def load_chunks(name: str) -> list[Chunk]:
    data = gzip.decompress((FIXTURES / f"{name}.log.gz").read_bytes())
    pos, out = 0, []
    while pos < len(data):
        if data.startswith(b"####", pos):
            ends = [i for i in (data.find(b"\n====", pos), data.find(b"\n####", pos)) if i != -1]
            pos = min(ends) + 1 if ends else len(data)
            continue
        m = _CHUNK.match(data, pos)
        if m is None:
            raise ValueError(f"{name}: cannot parse log at byte {pos}: {data[pos:pos + 60]!r}")
        n = int(m.group(3))
        direction = "recv" if m.group(2).startswith(b"<<<") else "send"
        out.append(Chunk(direction, m.group(1).decode(), data[m.end():m.end() + n]))
        pos = m.end() + n
        if data.startswith(_NOT_ENDED, pos):
            pos += len(_NOT_ENDED)
    return out


def recv_chunks(name: str) -> list[bytes]:
    return [c.data for c in load_chunks(name) if c.direction == "recv"]


def send_bytes(name: str) -> bytes:
    return b"".join(c.data for c in load_chunks(name) if c.direction == "send")


def _value(raw: str) -> str:
    if raw[:1] in ("'", '"'):
        return ast.literal_eval(raw)
    return raw


@lru_cache(maxsize=None)
def load_summary(name: str) -> list[SummaryLine]:
    lines = (FIXTURES / f"{name}.summary.txt").read_text(encoding="utf-8").splitlines()
    out = []
    for line in lines:
        if line.startswith("===") or not line.strip():
            continue
        ts, arrow, rest = line.split(" ", 2)
        item = SummaryLine("recv" if arrow == "<<<" else "send", ts, rest)
        if item.direction == "recv":
            m = _CONNECT.fullmatch(rest)
            if m:
                item.content_type = "command/reply"
                item.connect_headers = int(m.group("n"))
                item.fields = {"Reply-Text": _value(m.group("rt")), "Socket-Mode": m.group("sm"),
                               "Control": m.group("ctl")}
            else:
                for tok in _TOKEN.finditer(rest):
                    if tok.group("blen"):
                        item.event_body_len = int(tok.group("blen"))
                    elif tok.group("key") == "body":
                        item.body = _value(tok.group("val"))
                    else:
                        item.fields[tok.group("key")] = _value(tok.group("val"))
                item.content_type = item.fields.pop("Content-Type", None)
        out.append(item)
    return out


def assert_matches_summary(name: str, messages: list) -> int:
    """Check parsed messages against `<name>.summary.txt`: count, content types, the decoded
    header values listed, api/notice bodies (prefix when the summary truncated them with
    '...'), event bodies' lengths and the connect reply's header count. Returns the count."""
    expected = [s for s in load_summary(name) if s.direction == "recv"]
    assert len(messages) == len(expected), \
        f"{name}: parsed {len(messages)} messages, summary lists {len(expected)}"
    for i, (msg, exp) in enumerate(zip(messages, expected)):
        where = f"{name} message {i} ({exp.text[:80]})"
        assert msg.content_type == exp.content_type, where
        for key, value in exp.fields.items():
            source = msg.event.headers if msg.event is not None and key in msg.event.headers \
                else msg.headers
            assert source.get(key) == value, f"{where}: {key}={source.get(key)!r} != {value!r}"
        if exp.body is not None:
            body = (msg.body or "").strip()
            if exp.body.endswith("...") and len(body) > len(exp.body) - 3:
                assert body.startswith(exp.body[:-3]), where
            else:
                assert body == exp.body, where
        if exp.event_body_len is not None:
            assert msg.event is not None and msg.event.body is not None, where
            assert len(msg.event.body.encode("utf-8")) == exp.event_body_len, where
        if exp.connect_headers is not None:
            assert len(msg.headers) == exp.connect_headers, where
    return len(messages)
