"""The compiled flow: an immutable intermediate representation.

Everything here is a frozen dataclass, a tuple or a read-only mapping; every node
carries the source position it came from.  This is what the runtime executes and
what ``ivrflow graph`` draws.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, time
from types import MappingProxyType
from typing import Any, Mapping

from .diagnostics import Position


def frozen_map(d: Mapping | None = None) -> Mapping:
    return MappingProxyType(dict(d or {}))


@dataclass(frozen=True)
class Template:
    """A string that may hold jinja2 markup.  ``expression`` is set when the whole
    string is one ``{{ expr }}``: it then evaluates to a typed value."""

    source: str
    variables: frozenset[str] = frozenset()
    is_template: bool = False
    expression: str | None = None


@dataclass(frozen=True)
class Expr:
    source: str
    variables: frozenset[str] = frozenset()


@dataclass(frozen=True)
class PromptItem:
    kind: str                      # "prompt" | "file" | "tone"
    value: str                     # prompt id, file path (template source) or tone spec
    position: Position
    vars: Mapping[str, Any] = field(default_factory=frozen_map)   # name -> Template | literal
    text: str | None = None        # for files: what they say (simulator)


Prompts = tuple  # tuple[PromptItem, ...]


@dataclass(frozen=True)
class Play:
    prompts: Prompts


@dataclass(frozen=True)
class Say:
    texts: Mapping[str, Template]  # language ("*" = any) -> template


@dataclass(frozen=True)
class Menu:
    prompts: Prompts
    options: Mapping[str, str]     # key -> state
    timeout: float = 5.0
    attempts: int = 3
    invalid: Prompts = ()
    no_input: Prompts = ()
    into: str | None = None


@dataclass(frozen=True)
class Collect:
    prompts: Prompts
    into: str
    min_digits: int = 1
    max_digits: int = 20
    terminator: str = "#"
    timeout: float = 5.0           # first digit
    inter_digit: float = 3.0
    pattern: str | None = None
    attempts: int = 3
    invalid: Prompts = ()
    no_input: Prompts = ()
    mask: bool = False
    keys: bool = True              # global keys active


@dataclass(frozen=True)
class Branch:
    cases: tuple                   # tuple[(Expr, target state, Position)]


@dataclass(frozen=True)
class Set:
    assignments: tuple             # tuple[(name, Template | literal)]


@dataclass(frozen=True)
class ActionCall:
    name: str
    params: Any                    # JSON-like with Template leaves for templated strings


@dataclass(frozen=True)
class Transfer:
    to: Template | None = None
    queue: str | None = None
    priority: Template | int = 0
    context: str | None = None
    announce: Prompts = ()


@dataclass(frozen=True)
class Conference:
    room: Template
    role: str = "member"           # moderator | member | listener
    profile: str | None = None
    limit: Expr | None = None      # seconds the caller may stay
    warn_before: float = 60.0
    warning: Prompts = ()
    into: str | None = None


@dataclass(frozen=True)
class Record:
    into: str
    prompts: Prompts = ()
    max_seconds: float = 60.0
    silence_seconds: float = 5.0
    terminator: str = "#"
    beep: bool = True


@dataclass(frozen=True)
class Call:
    subflow: str


@dataclass(frozen=True)
class Hours:
    timezone: str
    weekly: tuple                  # tuple[(weekday 0=Mon, start time, end time)]
    holidays: tuple                # tuple[(first date, last date)]


@dataclass(frozen=True)
class Hangup:
    cause: str = "NORMAL_CLEARING"
    prompts: Prompts = ()


@dataclass(frozen=True)
class Return:
    outcome: str


#: state kinds that wait for the caller's input
WAITING_KINDS = frozenset({"menu", "collect", "record"})
#: kinds that end the flow (or the sub-flow) on success
TERMINAL_KINDS = frozenset({"hangup", "transfer", "return"})
#: kinds that talk to the caller (not allowed in the on-hangup handler)
INTERACTIVE_KINDS = frozenset({"play", "say", "menu", "collect", "record", "transfer", "conference"})


@dataclass(frozen=True)
class Transition:
    outcome: str                   # "default", "failed", a key, an action outcome, "case1", ...
    target: str
    position: Position
    label: str | None = None       # for drawing (e.g. a branch condition)


@dataclass(frozen=True)
class State:
    name: str
    kind: str
    spec: Any
    position: Position
    transitions: tuple             # tuple[Transition]
    scope: str = ""                # "" for the main flow, the sub-flow's name otherwise
    description: str | None = None

    def target(self, outcome: str) -> str | None:
        for t in self.transitions:
            if t.outcome == outcome:
                return t.target
        for t in self.transitions:
            if t.outcome == "default":
                return t.target
        return None


@dataclass(frozen=True)
class Subflow:
    name: str
    start: str
    states: Mapping[str, State]
    outcomes: frozenset[str]
    position: Position


@dataclass(frozen=True)
class Flow:
    name: str
    file: str
    languages: tuple[str, ...]
    prompts: str | None
    start: str
    states: Mapping[str, State]
    subflows: Mapping[str, Subflow]
    variables: Mapping[str, Any]
    global_keys: Mapping[str, str]
    on_hangup: str | None
    on_error: str | None
    on_failed: str | None
    max_steps: int
    max_duration: float | None
    description: str | None
    prompt_refs: tuple             # tuple[(prompt id, Position)]
    prompt_ref_vars: tuple         # parallel to prompt_refs: frozenset of variable names passed in `vars`
    assigned_variables: frozenset[str]
    source_sha256: str

    def scope_states(self, scope: str) -> Mapping[str, State]:
        return self.states if not scope else self.subflows[scope].states

    def all_states(self):
        yield from self.states.values()
        for sf in self.subflows.values():
            yield from sf.states.values()


#: variables every call has
BUILTIN_VARIABLES = frozenset({
    "caller",         # caller number, only when from a trusted source, else none
    "caller_raw",     # caller number as presented
    "destination", "call_id", "lang", "channel", "now", "today", "flow",
    "last_key",       # the last key the caller pressed
    "hangup_cause",
})
