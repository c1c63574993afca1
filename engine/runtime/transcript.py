"""A call record as a readable transcript (what ``ivrflow simulate`` prints)."""

from __future__ import annotations

from typing import Any

from .record import DISPOSITIONS, CallRecord

__all__ = ["render_transcript", "format_time"]


def format_time(t: float) -> str:
    m, s = divmod(t, 60.0)
    return f"{int(m):02d}:{s:06.3f}"


def _kv(d: Any) -> str:
    if not isinstance(d, dict):
        return str(d)
    return ", ".join(f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in d.items())


def _line(ev: dict, positions: bool) -> str | None:
    t = ev["type"]
    where = f"{ev['scope']}." if ev.get("scope") else ""
    if t == "state":
        pos = f"   ({ev['pos']})" if positions else ""
        return f"── {where}{ev['state']} [{ev['kind']}]{pos}"
    if t == "prompt":
        what = ev.get("text") or (f"[{ev['prompt']}]" if ev.get("prompt") else ev.get("file") or f"tone {ev.get('tone')}")
        if ev.get("tone") and not ev.get("text"):
            what = f"(tone {ev['tone']})"
        tag = f"[{ev['prompt']}] " if ev.get("prompt") and ev.get("text") else ""
        extra = ""
        if ev.get("skipped"):
            extra = "  (skipped: the caller typed ahead)"
        elif ev.get("interrupted"):
            extra = f"  (interrupted by {ev['interrupted']})"
        if ev.get("during") == "conference":
            extra += "  (warning, during the conference)"
        return f"   IVR: {tag}{what}{extra}"
    if t == "input":
        r = ev["result"]
        keys = ev.get("keys") or ""
        if r == "no_input":
            return f"   caller: (nothing, timed out)  attempt {ev['attempt']}"
        reason = {"timeout": ", inter-digit timeout", "terminator": "", "max": ""}.get(ev.get("reason"), "")
        label = {"ok": "", "invalid": "  -> invalid", "global_key": "  -> global key"}.get(r, f"  -> {r}")
        return f"   caller: {keys}{label}{reason}  attempt {ev['attempt']}"
    if t == "action":
        out = f"   action {ev['action']}({_kv(ev.get('params', {}))}) -> {ev.get('outcome', '?')}"
        if ev.get("set"):
            out += f"  sets {_kv(ev['set'])}"
        return out
    if t == "set":
        return f"   set {_kv(ev['values'])}"
    if t == "transition":
        via = f" (via {ev['edge']})" if ev.get("edge") not in (ev["outcome"], None) else ""
        return f"   => {ev['outcome']}{via} -> {ev['to']}"
    if t == "jump":
        return f"   => {ev['via']} -> {ev['to']}"
    if t == "call":
        return f"   => call sub-flow {ev['subflow']}"
    if t == "return":
        return f"   <= return {ev['outcome']} to {ev['to']}"
    if t == "hours":
        return f"   local time {ev['local']}: {ev['outcome']}"
    if t == "transfer":
        res = ev.get("result", "?")
        return f"   transfer to {ev['target']}: {res}" + (f" ({ev['reason']})" if ev.get("reason") else "")
    if t == "conference":
        lim = f", limit {ev['limit']:g} s" if ev.get("limit") is not None else ""
        got = f": {ev['result']} after {ev['seconds']:g} s" if "seconds" in ev else f": {ev.get('result', '?')}"
        return f"   conference room {ev['room']} as {ev['role']}{lim}{got}"
    if t == "record":
        if "seconds" not in ev:
            return f"   recording to {ev['path']} ..."
        return f"   recorded {ev['seconds']:g} s ({ev['reason']}) -> {ev['outcome']}  {ev['path']}"
    if t == "error":
        pos = f" at {ev['pos']}" if ev.get("pos") else ""
        return f"   !! {ev['kind']} error{pos}: {ev['message']}"
    if t == "hangup":
        return f"   hangup by {ev['by']} ({ev['cause']})"
    if t == "log":
        return f"   log: {ev['message']}" + (f" {_kv(ev['fields'])}" if ev.get("fields") else "")
    return f"   {t}: {_kv({k: v for k, v in ev.items() if k not in ('t', 'type')})}"


def render_transcript(rec: CallRecord | dict, *, positions: bool = True, variables: bool = False) -> str:
    d = rec.to_dict() if isinstance(rec, CallRecord) else rec
    out = [f"call {d['call_id']}  flow {d['flow']} ({d['flow_file']})  caller {d['caller'] or '-'}"
           f"{'' if d['caller_trusted'] else ' (untrusted)'}  lang {d['lang']}  start {d['started_at']}"]
    for ev in d["events"]:
        line = _line(ev, positions)
        if line is not None:
            out.append(f"[{format_time(ev['t'])}] {line}")
    disp = d["disposition"]
    cause = f", cause {d['hangup_cause']}" if d.get("hangup_cause") else ""
    out.append(f"end: {disp}{cause} after {d['duration']:g} s, {d['steps']} steps, in state {d['final_state']}"
               f"  -- {DISPOSITIONS.get(disp, '')}")
    if d.get("error"):
        e = d["error"]
        out.append(f"error: {e.get('kind')} in state {e.get('state')} at {e.get('pos')}: {e.get('message')}"
                   + (f" ({e['unhandled']})" if e.get("unhandled") else ""))
    if variables:
        out.append("variables: " + _kv(d["variables"]))
    return "\n".join(out)
