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

_STD = frozenset(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {"message", "asctime", "call_id"}
_UTC = dt.timezone.utc
_second: list = [None, ""]          # the last whole second formatted, and its text


def _timestamp(created: float) -> str:
    """ISO 8601 in UTC with milliseconds (`2026-11-23T16:04:44.718+00:00`); the seconds part
    is formatted once per second."""
    sec = int(created)
    if _second[0] != sec:
        _second[0], _second[1] = sec, dt.datetime.fromtimestamp(sec, _UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{_second[1]}.{int((created - sec) * 1000):03d}+00:00"


class CallIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "call_id", None) is None:
            record.call_id = CALL_ID.get()
        return True


def _fields(record: logging.LogRecord) -> dict:
    out = {"ts": _timestamp(record.created), "level": record.levelname, "logger": record.name}
    attrs = record.__dict__
    call_id = attrs.get("call_id")
    if call_id:
        out["call_id"] = call_id
    out["msg"] = record.getMessage()
    extra = attrs.keys() - _STD
    if extra:
        for k in attrs:                  # in the order given
            if k in extra and not k.startswith("_"):
                v = attrs[k]
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
    # the lines carry no process, thread or source position: don't pay a getpid(), a thread
    # lookup and a walk up the stack per record (the logging docs' "Optimization" knobs)
    logging.logProcesses = logging.logMultiprocessing = logging.logThreads = False
    logging._srcfile = None  # type: ignore[attr-defined]
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
