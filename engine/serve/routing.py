"""Which flow a call runs, and whether its caller number can be trusted.

Routing: the configured routes in order (destination number and/or the `ivrflow_flow`
channel variable set by the dialplan); then, when `flow_variable` is on, `ivrflow_flow`
naming a loaded flow; then, when no route is configured and exactly one flow is loaded,
that flow; else no flow (the server's fallback: apology, then a person).

Trust: the caller number is used (VIP recognition, `ctx.caller`) only when the dialplan marked
the call `ivrflow_caller_trusted=true` (freeswitch/dialplan sets it from the carrier ACL) or
its signalling address (`network_addr`) is in one of the configured trusted networks.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .config import Route

__all__ = ["Decision", "route_call", "caller_trusted", "FLOW_VARIABLE", "TRUST_VARIABLE"]

FLOW_VARIABLE = "ivrflow_flow"
TRUST_VARIABLE = "ivrflow_caller_trusted"
LANG_VARIABLE = "ivrflow_lang"


@dataclass(frozen=True)
class Decision:
    flow: Any | None            # LoadedFlow
    lang: str | None
    why: str                    # for the log: "route 2", "ivrflow_flow", "no route", ...


def route_call(routes: Sequence[Route], flows: Mapping[str, Any], destination: str | None,
               variables: Mapping[str, str], *, flow_variable: bool = True) -> Decision:
    chosen = (variables.get(FLOW_VARIABLE) or "").strip() or None
    for i, r in enumerate(routes):
        if r.matches(destination, chosen):
            lf = flows.get(r.flow)
            if lf is None:
                return Decision(None, None, f"route {i + 1} names flow '{r.flow}', which is not loaded")
            return Decision(lf, r.lang or _lang(lf, variables), f"route {i + 1}")
    if flow_variable and chosen and chosen in flows:
        lf = flows[chosen]
        return Decision(lf, _lang(lf, variables), FLOW_VARIABLE)
    if not routes and len(flows) == 1:
        lf = next(iter(flows.values()))
        return Decision(lf, _lang(lf, variables), "the only flow")
    what = f"destination {destination!r}" + (f", {FLOW_VARIABLE}={chosen!r}" if chosen else "")
    return Decision(None, None, f"no route for {what}")


def _lang(lf: Any, variables: Mapping[str, str]) -> str | None:
    """`ivrflow_lang` from the dialplan when the flow speaks it, else the flow's first."""
    want = (variables.get(LANG_VARIABLE) or "").strip()
    langs = list(getattr(lf.flow, "languages", ()) or ())
    for lang in langs:
        if want and lang.lower() == want.lower():
            return lang
    return None


def caller_trusted(variables: Mapping[str, str], networks: Sequence[Any]) -> bool:
    if (variables.get(TRUST_VARIABLE) or "").strip().lower() == "true":
        return True
    addr = (variables.get("network_addr") or "").strip()
    if not addr or not networks:
        return False
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return any(ip in net for net in networks if net.version == ip.version)
