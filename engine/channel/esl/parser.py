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

import json
import re
from collections.abc import Iterable, Iterator
from urllib.parse import unquote

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


def url_encode(value: str) -> str:
    """Encode a header value the way FreeSWITCH serialises events (switch_url_encode)."""
    out = []
    for byte in value.encode("utf-8"):
        if byte < 32 or byte > 126 or byte in _URL_UNSAFE:
            out.append(f"%{byte:02X}")
        else:
            out.append(chr(byte))
    return "".join(out)


class Headers:
    """Ordered header list, names kept as sent; lookups ignore case; duplicates are kept."""

    __slots__ = ("_items", "_index")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = []
        self._index: dict[str, str] = {}
        for name, value in items:
            self.add(name, value)

    def add(self, name: str, value: str) -> None:
        self._items.append((name, value))
        self._index.setdefault(name.lower(), value)

    def get(self, name: str, default: str | None = None) -> str | None:
        """First value of `name` (case-insensitive), else `default`."""
        return self._index.get(name.lower(), default)

    def get_all(self, name: str) -> list[str]:
        key = name.lower()
        return [v for n, v in self._items if n.lower() == key]

    def __getitem__(self, name: str) -> str:
        try:
            return self._index[name.lower()]
        except KeyError:
            raise KeyError(name) from None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._index

    def __iter__(self) -> Iterator[str]:
        return (n for n, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def names(self) -> list[str]:
        return [n for n, _ in self._items]

    def to_dict(self) -> dict[str, str]:
        """Names as sent -> first value."""
        out: dict[str, str] = {}
        for n, v in self._items:
            out.setdefault(n, v)
        return out

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


class Event:
    """A FreeSWITCH event: `name` (Event-Name), ordered `headers`, optional `body`."""

    __slots__ = ("headers", "body")

    def __init__(self, headers: Headers, body: str | None = None) -> None:
        self.headers = headers
        self.body = body

    @property
    def name(self) -> str:
        return self.headers.get("Event-Name", "") or ""

    @property
    def subclass(self) -> str | None:
        return self.headers.get("Event-Subclass")

    @property
    def unique_id(self) -> str | None:
        return self.headers.get("Unique-ID")

    @property
    def application_uuid(self) -> str | None:
        return self.headers.get("Application-UUID")

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

    __slots__ = ("headers", "raw_body", "event")

    def __init__(self, headers: Headers, raw_body: bytes | None = None,
                 event: Event | None = None) -> None:
        self.headers = headers
        self.raw_body = raw_body
        self.event = event

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "") or ""

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


def parse_header_block(block: bytes, *, where: str = "header") -> Headers:
    """Parse `Name: value` lines (no trailing blank line); values URL-decoded after splitting."""
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
    match = _BLOCK_END.search(body)
    if match:
        block, rest = body[:match.start()], body[match.end():]
    else:
        block, rest = body, b""
    headers = parse_header_block(block, where="event header")
    if "Event-Name" not in headers:
        raise ProtocolError("event without Event-Name header")
    length = _content_length(headers, max_body_bytes, "event")
    if length is None:
        if rest.strip(b"\r\n"):
            raise ProtocolError(f"{len(rest)} unexpected bytes after event headers")
        return Event(headers)
    if len(rest) < length:
        raise ProtocolError(
            f"event body has {len(rest)} bytes, its Content-Length says {length}")
    return Event(headers, rest[:length].decode("utf-8", errors="replace"))


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
        self._buf += data
        out: list[Message] = []
        try:
            while True:
                msg = self._next()
                if msg is None:
                    return out
                out.append(msg)
        except ProtocolError as exc:
            self._failed = exc
            self._buf.clear()
            raise

    def _next(self) -> Message | None:
        buf = self._buf
        if self._headers is None:
            # Blank lines between frames are tolerated (FreeSWITCH's own reader skips them).
            skip = 0
            while skip < len(buf) and buf[skip] in (0x0A, 0x0D):
                skip += 1
            if skip:
                del buf[:skip]
                self._scan = 0
            if not buf:
                return None
            match = _BLOCK_END.search(buf, max(self._scan - 2, 0))
            if match is None:
                if len(buf) > self.max_header_bytes:
                    raise ProtocolError(
                        f"header block exceeds {self.max_header_bytes} bytes without an end")
                last_nl = buf.rfind(b"\n")
                if last_nl >= self._scan:
                    # Reject garbage as soon as a complete line is seen, not at the size limit.
                    parse_header_block(bytes(buf[self._scan:last_nl]))
                    self._scan = last_nl + 1
                return None
            if match.start() > self.max_header_bytes:
                raise ProtocolError(f"header block exceeds {self.max_header_bytes} bytes")
            headers = parse_header_block(bytes(buf[:match.start()]))
            del buf[:match.end()]
            self._scan = 0
            if "Content-Type" not in headers and "Content-Length" not in headers:
                raise ProtocolError(
                    "frame without Content-Type: " + ", ".join(headers.names()[:5]))
            length = _content_length(headers, self.max_body_bytes, "frame")
            if not length:
                return self._finish(headers, None if length is None else b"")
            self._headers, self._need = headers, length
        if len(buf) < self._need:
            return None
        body = bytes(buf[:self._need])
        del buf[:self._need]
        headers, self._headers, self._need = self._headers, None, 0
        return self._finish(headers, body)

    def _finish(self, headers: Headers, body: bytes | None) -> Message:
        ctype = (headers.get("Content-Type") or "").strip().lower()
        event = None
        if ctype == "text/event-plain":
            if not body:
                raise ProtocolError("text/event-plain frame without body")
            event = parse_event_plain(body, self.max_body_bytes)
        elif ctype == "text/event-json":
            if not body:
                raise ProtocolError("text/event-json frame without body")
            event = parse_event_json(body)
        return Message(headers, body, event)


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
