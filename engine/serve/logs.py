"""Structured logs: one JSON object (or key=value line) per record, with the call's UUID.

The per-call task sets `CALL_ID`; every record logged from that task (the interpreter, the
actions, the channel) carries it as `call_id`.  ESL protocol messages logged outside the task
name the call in their text (`call <uuid>: ...`).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import sys
from typing import IO

__all__ = ["CALL_ID", "CallIdFilter", "JsonFormatter", "KvFormatter", "setup_logging"]

CALL_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("ivrflow_call_id", default=None)

_STD = set(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {"message", "asctime", "call_id"}


class CallIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "call_id", None) is None:
            record.call_id = CALL_ID.get()
        return True


def _fields(record: logging.LogRecord) -> dict:
    out = {"ts": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
           "level": record.levelname, "logger": record.name}
    call_id = getattr(record, "call_id", None)
    if call_id:
        out["call_id"] = call_id
    out["msg"] = record.getMessage()
    for k, v in vars(record).items():
        if k not in _STD and not k.startswith("_"):
            out[k] = v if isinstance(v, (str, int, float, bool)) or v is None else str(v)
    if record.exc_info:
        out["exc"] = logging.Formatter().formatException(record.exc_info)
    return out


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(record), ensure_ascii=False)


class KvFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        parts = []
        for k, v in _fields(record).items():
            text = str(v)
            if not text or any(c in text for c in ' ="\n'):
                text = json.dumps(text, ensure_ascii=False)
            parts.append(f"{k}={text}")
        return " ".join(parts)


def setup_logging(fmt: str = "json", level: str = "INFO", stream: IO[str] | None = None) -> logging.Handler:
    """Route the `ivrflow` loggers to `stream` (stderr) in the chosen format."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else KvFormatter())
    handler.addFilter(CallIdFilter())
    root = logging.getLogger("ivrflow")
    for h in list(root.handlers):
        if getattr(h, "_ivrflow_serve", False):
            root.removeHandler(h)
    handler._ivrflow_serve = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    root.propagate = False
    return handler
