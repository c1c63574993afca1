"""Socket-free ESL framing: bytes in, messages out.

`Parser.feed(data)` accepts any chunking (one byte at a time or many messages at once) and
returns the complete messages seen so far. A message is a header block ended by an empty line,
followed by exactly `Content-Length` bytes of body when that header is present. Header values are
URL-decoded *after* the block is split into lines (a value may encode `%0A`). For
`text/event-plain` the body is itself a header block, optionally followed by its own body
(`BACKGROUND_JOB` results, `log` text); `text/event-json` bodies are JSON objects.

Malformed input raises `ProtocolError`; the stream cannot be resynchronised after that, so the
parser stays failed. Header blocks and bodies are bounded (`max_header_bytes`, `max_body_bytes`).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator
from urllib.parse import quote, unquote

from .errors import ProtocolError

__all__ = [
    "Headers", "Event", "Message", "Parser", "ProtocolError", "url_encode", "url_decode",
    "encode_command", "parse_header_block",
    "DEFAULT_MAX_HEADER_BYTES", "DEFAULT_MAX_BODY_BYTES",
]

DEFAULT_MAX_HEADER_BYTES = 1 << 20      # 1 MiB: a SIP CHANNEL_DATA block is ~7 KiB
DEFAULT_MAX_BODY_BYTES = 64 << 20       # 64 MiB: `show channels` on a busy box stays far below

_BLOCK_END = re.compile(rb"\n\r?\n")
_DIGITS = re.compile(rb"[0-9]{1,12}")

# Characters FreeSWITCH's switch_url_encode() escapes (besides controls and non-ASCII bytes).
_URL_UNSAFE = set(b"\r\n \"#%&+:;<=>?@[\\]^`{|}")


def url_decode(value: str) -> str:
    """Decode %XX escapes (FreeSWITCH never encodes space as '+'); invalid UTF-8 becomes U+FFFD."""
    if "%" not in value:
        return value
    return unquote(value, encoding="utf-8", errors="replace")


# printable ASCII that switch_url_encode() leaves as it is
_URL_SAFE = "".join(chr(b) for b in range(33, 127) if b not in _URL_UNSAFE)
_NEEDS_ENCODING = re.compile("[^" + re.escape(_URL_SAFE) + "]")


@functools.lru_cache(maxsize=65536)
def url_encode(value: str) -> str:
    """Encode a header value the way FreeSWITCH serialises events (switch_url_encode):
    controls, non-ASCII bytes, space and `"#%&+:;<=>?@[\\]^`{|}` become %XX (upper case)."""
    if not _NEEDS_ENCODING.search(value):
        return value
    return quote(value, safe=_URL_SAFE, encoding="utf-8", errors="strict")


class Headers:
    """Ordered header list, names kept as sent; lookups ignore case; duplicates are kept.

    An event's header block is kept as its (validated, ASCII) text and looked up on demand
    (`Headers.lazy`): a header is only split out and URL-decoded when someone asks for it, and
    the whole list only when it is iterated.  Same answers as the eager form, much less work
    for the ~100-header events of which a call reads a handful of values."""

    __slots__ = ("_items", "_index", "_text", "_lower")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] | None = []
        self._index: dict[str, str] | None = {}
        self._text: str | None = None
        self._lower: str | None = None
        for name, value in items:
            self.add(name, value)

    @classmethod
    def lazy(cls, text: str) -> "Headers":
        """Headers over a block already checked by `_plain_block` (one `Name: value` a line)."""
        h = cls.__new__(cls)
        h._items = h._index = None
        h._text = "\n" + text
        h._lower = h._text.lower()       # lookups ignore case (ASCII: same offsets)
        return h

    def _full(self) -> None:
        if self._items is not None:
            return
        items: list[tuple[str, str]] = []
        index: dict[str, str] = {}
        for line in self._text[1:].split("\n"):         # type: ignore[index]
            if line.endswith("\r"):
                line = line[:-1]
            if not line:
                continue
            name, _, value = line.partition(":")
            value = url_decode(value.lstrip(" \t"))
            items.append((name, value))
            index.setdefault(name.lower(), value)
        self._items, self._index = items, index
        self._text = self._lower = None

    def _find(self, name: str) -> str | None:
        if ":" in name or "\n" in name:
            return None
        key = "\n" + name.lower() + ":"
        at = self._lower.find(key)                        # type: ignore[union-attr]
        if at < 0:
            return None
        text = self._text
        start = at + len(key)
        end = text.find("\n", start)                     # type: ignore[union-attr]
        raw = (text[start:end] if end >= 0 else text[start:]).lstrip(" \t")   # type: ignore[index]
        if "%" in raw:
            return unquote(raw, encoding="utf-8", errors="replace")
        return raw

    def add(self, name: str, value: str) -> None:
        self._full()
        self._items.append((name, value))                 # type: ignore[union-attr]
        self._index.setdefault(name.lower(), value)       # type: ignore[union-attr]

    def get(self, name: str, default: str | None = None) -> str | None:
        """First value of `name` (case-insensitive), else `default`."""
        if self._index is not None:
            return self._index.get(name.lower(), default)
        value = self._find(name)
        return default if value is None else value

    def __bool__(self) -> bool:
        return self._text is not None and len(self._text) > 1 or bool(self._items)

    def get_all(self, name: str) -> list[str]:
        self._full()
        key = name.lower()
        return [v for n, v in self._items if n.lower() == key]   # type: ignore[union-attr]

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        if self._index is not None:
            return name.lower() in self._index
        return self._find(name) is not None

    def __iter__(self) -> Iterator[str]:
        self._full()
        return (n for n, _ in self._items)                # type: ignore[union-attr]

    def __len__(self) -> int:
        self._full()
        return len(self._items)                           # type: ignore[arg-type]

    def items(self) -> list[tuple[str, str]]:
        self._full()
        return list(self._items)                          # type: ignore[arg-type]

    def names(self) -> list[str]:
        self._full()
        return [n for n, _ in self._items]                # type: ignore[union-attr]

    def prefixed(self, prefix: str) -> dict[str, str]:
        """{name without `prefix`: first value} for the names starting with `prefix` (exact
        case), e.g. the `variable_*` headers of a channel."""
        if self._text is not None and "\n" not in prefix and ":" not in prefix:
            out: dict[str, str] = {}
            n = len(prefix)
            text = self._text
            at = text.find("\n" + prefix)
            while at >= 0:
                colon = text.find(":", at + 1)
                end = text.find("\n", at + 1)
                if end < 0:
                    end = len(text)
                if 0 <= colon < end:
                    name = text[at + 1 + n:colon]
                    if name not in out:
                        raw = text[colon + 1:end].lstrip(" \t")
                        out[name] = unquote(raw, encoding="utf-8", errors="replace") if "%" in raw else raw
                at = text.find("\n" + prefix, end)
            return out
        self._full()
        out = {}
        for name, value in self._items:                  # type: ignore[union-attr]
            if name.startswith(prefix):
                out.setdefault(name[len(prefix):], value)
        return out

    def to_dict(self) -> dict[str, str]:
        """Names as sent -> first value."""
        self._full()
        out: dict[str, str] = {}
        for n, v in self._items:                          # type: ignore[union-attr]
            out.setdefault(n, v)
        return out

    def __repr__(self) -> str:
        self._full()
        return f"Headers({self._items!r})"


class Event:
    """A FreeSWITCH event: `name` (Event-Name), ordered `headers`, optional `body`."""

    __slots__ = ("headers", "body", "_name")

    def __init__(self, headers: Headers, body: str | None = None) -> None:
        self.headers = headers
        self.body = body
        self._name: str | None = None

    @property
    def name(self) -> str:
        name = self._name
        if name is None:
            name = self._name = self.headers.get("Event-Name", "") or ""
        return name

    @property
    def subclass(self) -> str | None:
        return self.headers.get("Event-Subclass")

    @property
    def unique_id(self) -> str | None:
        return self.headers.get("Unique-ID")

    @property
    def application_uuid(self) -> str | None:
        return self.headers.get("Application-UUID")   # (a lookup in the lazy block: cheap)

    @property
    def job_uuid(self) -> str | None:
        return self.headers.get("Job-UUID")

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)

    def __getitem__(self, name: str) -> str:
        return self.headers[name]

    def __contains__(self, name: object) -> bool:
        return name in self.headers

    def variable(self, name: str, default: str | None = None) -> str | None:
        """Channel variable as carried by the event (`variable_<name>`)."""
        return self.headers.get("variable_" + name, default)

    def __repr__(self) -> str:
        extra = f" {self.subclass}" if self.subclass else ""
        return f"<Event {self.name}{extra} uuid={self.unique_id}>"


class Message:
    """One ESL frame: outer headers, raw body bytes, and the parsed Event for event frames."""

    __slots__ = ("headers", "raw_body", "event", "_ctype")

    def __init__(self, headers: Headers, raw_body: bytes | None = None,
                 event: Event | None = None) -> None:
        self.headers = headers
        self.raw_body = raw_body
        self.event = event
        self._ctype: str | None = None

    @property
    def content_type(self) -> str:
        ctype = self._ctype
        if ctype is None:
            ctype = self._ctype = self.headers.get("Content-Type", "") or ""
        return ctype

    @property
    def body(self) -> str | None:
        """Body decoded as UTF-8 (invalid bytes become U+FFFD); None when there is none."""
        if self.raw_body is None:
            return None
        return self.raw_body.decode("utf-8", errors="replace")

    @property
    def reply_text(self) -> str | None:
        return self.headers.get("Reply-Text")

    @property
    def is_event(self) -> bool:
        return self.event is not None

    def ok(self) -> bool:
        """True for `+OK` replies and api bodies; False for `-ERR`/`-USAGE`."""
        text = self.reply_text if self.content_type == "command/reply" else self.body
        return not (text or "").lstrip().startswith("-")

    def __repr__(self) -> str:
        if self.event is not None:
            return f"<Message {self.content_type} {self.event!r}>"
        return f"<Message {self.content_type} reply={self.reply_text!r}>"


def _split_lines(block: bytes) -> list[bytes]:
    return [line[:-1] if line.endswith(b"\r") else line for line in block.split(b"\n")]


_PRINTABLE = bytes(range(33, 127))
_EVENT_FRAME = re.compile(rb"Content-Length: ([0-9]{1,12})\nContent-Type: ([a-z]+/[a-z-]+)")


def _plain_block(block: bytes) -> bool:
    """True when every line is `Name: value` with a printable name, one space (after its
    colon) and a URL-encoded value - what FreeSWITCH writes.  Three C-speed passes; anything
    else goes through the line-by-line parse (which then accepts or explains it)."""
    if not block.isascii() or block[:1] == b":":
        return False
    rest = block.translate(None, _PRINTABLE)      # what is left: one space and a newline a line
    lines = (len(rest) + 1) // 2
    return rest == b" \n" * (lines - 1) + b" " and block.count(b": ") == lines and b"\n:" not in block


def parse_header_block(block: bytes, *, where: str = "header", lazy: bool = False) -> Headers:
    """Parse `Name: value` lines (no trailing blank line); values URL-decoded after splitting.
    With `lazy`, a block in FreeSWITCH's own layout is kept whole and split on demand."""
    if lazy and _plain_block(block):
        return Headers.lazy(block.decode("ascii"))
    headers = Headers()
    for line in _split_lines(block):
        if not line:
            continue
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip() or b" " in name:
            shown = line[:60].decode("utf-8", errors="replace")
            raise ProtocolError(f"malformed {where} line (no 'Name: value'): {shown!r}")
        try:
            name_s = name.decode("ascii")
        except UnicodeDecodeError:
            raise ProtocolError(f"non-ASCII {where} name: {name[:60]!r}") from None
        value_s = value.lstrip(b" \t").decode("utf-8", errors="replace")
        headers.add(name_s, url_decode(value_s))
    return headers


def _content_length(headers: Headers, limit: int, where: str) -> int | None:
    raw = headers.get("Content-Length")
    if raw is None:
        return None
    text = raw.strip()
    if not _DIGITS.fullmatch(text.encode("ascii", errors="replace")):
        raise ProtocolError(f"bad Content-Length in {where}: {raw[:40]!r}")
    length = int(text)
    if length > limit:
        raise ProtocolError(f"{where} body of {length} bytes exceeds the limit of {limit}")
    return length


def parse_event_plain(body: bytes, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> Event:
    """Parse a `text/event-plain` body: header block, then its own Content-Length body if any."""
    if body.endswith(b"\n\n") and _plain_block(body[:-2]):
        # FreeSWITCH's layout without an inner body (a plain block holds no empty line, so this
        # is the first `\n\n`): no search for the block end
        headers = Headers.lazy(body[:-2].decode("ascii"))
        name = headers.get("Event-Name")
        if name is None:
            raise ProtocolError("event without Event-Name header")
        length = _content_length(headers, max_body_bytes, "event")
        if length:
            raise ProtocolError(f"event body has 0 bytes, its Content-Length says {length}")
        event = Event(headers, None if length is None else "")
        event._name = name
        return event
    end = body.find(b"\n\n") if b"\r" not in body else -2
    if end >= 0:
        block, rest = body[:end], body[end + 2:]
    elif end == -1:
        block, rest = body, b""
    else:
        match = _BLOCK_END.search(body)
        if match:
            block, rest = body[:match.start()], body[match.end():]
        else:
            block, rest = body, b""
    headers = parse_header_block(block, where="event header", lazy=True)
    name = headers.get("Event-Name")
    if name is None:
        raise ProtocolError("event without Event-Name header")
    length = _content_length(headers, max_body_bytes, "event")
    if length is None:
        if rest.strip(b"\r\n"):
            raise ProtocolError(f"{len(rest)} unexpected bytes after event headers")
        event = Event(headers)
    else:
        if len(rest) < length:
            raise ProtocolError(
                f"event body has {len(rest)} bytes, its Content-Length says {length}")
        event = Event(headers, rest[:length].decode("utf-8", errors="replace"))
    event._name = name
    return event


def parse_event_json(body: bytes) -> Event:
    try:
        data = json.loads(body.decode("utf-8", errors="replace"))
    except ValueError as exc:
        raise ProtocolError(f"invalid JSON event: {exc}") from None
    if not isinstance(data, dict) or "Event-Name" not in data:
        raise ProtocolError("JSON event is not an object with Event-Name")
    event_body = data.pop("_body", None)
    headers = Headers()
    for name, value in data.items():
        if isinstance(value, list):
            for item in value:
                headers.add(str(name), str(item))
        else:
            headers.add(str(name), "" if value is None else str(value))
    return Event(headers, None if event_body is None else str(event_body))


class Parser:
    """Incremental ESL reader. `feed(bytes) -> list[Message]`; never touches a socket."""

    def __init__(self, *, max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes
        self._buf = bytearray()
        self._scan = 0                      # where to resume searching for the block end
        self._headers: Headers | None = None  # parsed outer headers awaiting a body
        self._need = 0                      # body bytes still required
        self._ctype: str | None = None      # its Content-Type when taken from the quick match
        self._failed: ProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held that do not yet form a complete message."""
        return len(self._buf)

    @property
    def in_message(self) -> bool:
        """True when a message has started but is not complete (EOF now would truncate it)."""
        return self._headers is not None or bool(self._buf.strip(b"\r\n"))

    def feed(self, data: bytes) -> list[Message]:
        if self._failed is not None:
            raise ProtocolError(f"parser already failed: {self._failed}")
        buf = self._buf
        out: list[Message] = []
        try:
            if buf:
                # a partial message is held: append and go on from the start of the buffer
                buf += data
                if self._headers is not None and len(buf) < self._need:
                    return out                      # a long body still coming in
                pos = self._parse(buf, out)
                if pos:
                    del buf[:pos]
            else:
                # nothing held (the usual case): parse the chunk itself, keep the tail
                pos = self._parse(data, out)
                if pos < len(data):
                    buf += memoryview(data)[pos:]
        except ProtocolError as exc:
            self._failed = exc
            self._buf.clear()
            raise
        return out

    def _parse(self, data: bytes | bytearray, out: list[Message]) -> int:
        """Append the complete messages of `data` to `out`; return how far they reach (the
        rest is a partial message, described by `_scan` / `_headers` / `_need`)."""
        n = len(data)
        pos = 0
        while True:
            if self._headers is None:
                # Blank lines between frames are tolerated (FreeSWITCH's own reader skips them).
                while pos < n and (data[pos] == 0x0A or data[pos] == 0x0D):
                    pos += 1
                    self._scan = 0
                if pos >= n:
                    return pos
                scan = pos + self._scan
                match = _BLOCK_END.search(data, scan - 2 if scan - 2 > pos else pos)
                if match is None:
                    if n - pos > self.max_header_bytes:
                        raise ProtocolError(
                            f"header block exceeds {self.max_header_bytes} bytes without an end")
                    last_nl = data.rfind(b"\n", pos)
                    if last_nl >= scan:
                        # Reject garbage as soon as a complete line is seen, not at the size limit.
                        parse_header_block(bytes(data[scan:last_nl]))
                        self._scan = last_nl + 1 - pos
                    return pos
                start = match.start()
                if start - pos > self.max_header_bytes:
                    raise ProtocolError(f"header block exceeds {self.max_header_bytes} bytes")
                self._scan = 0
                quick = _EVENT_FRAME.fullmatch(data, pos, start)
                if quick is not None:
                    # the envelope of every event and api reply: `Content-Length: N` + type
                    clen, ctype = quick.group(1).decode(), quick.group(2).decode()
                    headers = Headers.__new__(Headers)
                    headers._items = [("Content-Length", clen), ("Content-Type", ctype)]
                    headers._index = {"content-length": clen, "content-type": ctype}
                    headers._text = headers._lower = None
                    length = int(clen)
                    if length > self.max_body_bytes:
                        raise ProtocolError(f"frame body of {length} bytes exceeds the limit of "
                                            f"{self.max_body_bytes}")
                else:
                    headers = parse_header_block(bytes(data[pos:start]), lazy=True)
                    length = _content_length(headers, self.max_body_bytes, "frame")
                    if length is None and "Content-Type" not in headers:
                        raise ProtocolError(
                            "frame without Content-Type: " + ", ".join(headers.names()[:5]))
                pos = match.end()
                if not length:
                    out.append(self._finish(headers, None if length is None else b""))
                    continue
                self._headers, self._need = headers, length
                self._ctype = ctype if quick is not None else None
            need = self._need
            if n - pos < need:
                return pos
            body = bytes(data[pos:pos + need])
            pos += need
            headers, self._headers, self._need = self._headers, None, 0
            out.append(self._finish(headers, body, self._ctype))

    def _finish(self, headers: Headers, body: bytes | None,
                known_ctype: str | None = None) -> Message:
        # `known_ctype`: the Content-Type of the quick envelope (already `[a-z]+/[a-z-]+`)
        raw_ctype = known_ctype or headers.get("Content-Type") or ""
        ctype = known_ctype or raw_ctype.strip().lower()
        event = None
        if ctype == "text/event-plain":
            if not body:
                raise ProtocolError("text/event-plain frame without body")
            event = parse_event_plain(body, self.max_body_bytes)
        elif ctype == "text/event-json":
            if not body:
                raise ProtocolError("text/event-json frame without body")
            event = parse_event_json(body)
        msg = Message(headers, body, event)
        msg._ctype = raw_ctype
        return msg


def _check_line(text: str, what: str) -> str:
    if "\n" in text or "\r" in text:
        raise ValueError(f"{what} must not contain a line break: {text[:60]!r}")
    return text


def encode_command(command: str, headers: Iterable[tuple[str, str]] | dict[str, str] = (),
                   body: str | bytes | None = None) -> bytes:
    """Frame a client command: first line, `Name: value` lines, blank line, optional body.

    Line breaks inside the command, header names or values are refused (ValueError): they would
    split the frame and let text inject other commands.
    """
    items = headers.items() if isinstance(headers, dict) else headers
    lines = [_check_line(command, "command")]
    for name, value in items:
        _check_line(name, "header name")
        if ":" in name or not name:
            raise ValueError(f"invalid header name {name!r}")
        lines.append(f"{name}: {_check_line(str(value), 'header value')}")
    if body is not None:
        raw = body.encode("utf-8") if isinstance(body, str) else body
        lines.append(f"Content-Length: {len(raw)}")
        return ("\n".join(lines) + "\n\n").encode("utf-8") + raw
    return ("\n".join(lines) + "\n\n").encode("utf-8")
