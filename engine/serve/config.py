"""The configuration file of `ivrflow serve` (YAML), checked key by key.

Top-level keys of the serve itself are listed in `SERVE_KEYS`; every other top-level key
(`http`, `sql`, `policy`, a plugin's own section) is handed to the actions as `ctx.config`.
`${NAME}` in values comes from the environment, so passwords stay out of the file.  Every
problem is a `ServeConfigError` naming the key.  Example: docs/freeswitch.md.
"""

from __future__ import annotations

import ipaddress
import os
import re
import zoneinfo
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from engine.channel.freeswitch import FsOptions
from engine.integrations.config import expand_env

__all__ = ["ServeConfig", "ServeConfigError", "Route", "Fallback", "EslAddress", "ExpertsConfig",
           "load_serve_config", "parse_config", "parse_address", "SERVE_KEYS"]

SERVE_KEYS = ("listen", "flows", "db", "timezone", "routes", "flow_variable", "fallback",
              "trusted_networks", "prompts", "recordings", "freeswitch", "experts", "metrics",
              "shutdown", "reload", "logging", "pipeline", "cdr_spool")


class ServeConfigError(ValueError):
    """The serve configuration is wrong (the message names the key)."""


@dataclass(frozen=True)
class Route:
    """A call goes to `flow` when every condition given matches: `destination` (a regular
    expression matched against the whole destination number) and `variable` (the value of the
    channel variable `ivrflow_flow` the dialplan set).  `lang` overrides the flow's first
    language."""

    flow: str
    destination: re.Pattern | None = None
    variable: str | None = None
    lang: str | None = None

    def matches(self, destination: str | None, variable: str | None) -> bool:
        if self.destination is not None and not self.destination.fullmatch(destination or ""):
            return False
        if self.variable is not None and self.variable != variable:
            return False
        return True


@dataclass(frozen=True)
class Fallback:
    """What a call that matches no route gets: an apology, then a person."""

    file: str | None = None                      # an audio file FreeSWITCH can play
    say: Mapping[str, str] = field(default_factory=lambda: {
        "zh-CN": "对不起，您拨打的服务暂时无法接通，正在为您转接人工服务。",
        "en": "Sorry, this service is not available. Connecting you to an operator."})
    lang: str = "zh-CN"
    transfer: str = "operator"                   # extension (or dial string with '/')
    context: str | None = None


@dataclass(frozen=True)
class EslAddress:
    host: str = "127.0.0.1"
    port: int = 8021
    password: str = "ClueCon"


@dataclass(frozen=True)
class ExpertsConfig:
    """Calling an expert's own phone into the consultation room (inbound ESL `originate`)."""

    originate: bool = False
    dial: str = "user/{number}"                  # {number} {phone} {room} are filled in
    phones: Mapping[str, str] = field(default_factory=dict)   # expert number -> phone
    room_pattern: re.Pattern = re.compile(r"^expert-(?P<number>[0-9A-Za-z]+)$")
    caller_id_number: str = "0000"
    timeout: int = 30                            # ring the expert this long (s)
    hold: str | None = "tone_stream://%(1000,4000,450);loops=-1"   # what the caller hears meanwhile


@dataclass(frozen=True)
class ServeConfig:
    listen: tuple[str, int] = ("127.0.0.1", 8084)
    flows: Path = Path("flows")
    db: str | None = None
    timezone: str = "Asia/Shanghai"
    routes: tuple[Route, ...] = ()
    flow_variable: bool = True                   # ivrflow_flow naming a loaded flow selects it
    fallback: Fallback = Fallback()
    trusted_networks: tuple[Any, ...] = ()
    prompts_dir: Path | None = None
    prompt_cache: Path | None = None
    tts: str = "espeak-cli"                      # pyttsx3 | espeak-cli | none
    synth_timeout: float = 3.0
    synthesize: bool = True                      # false: only built/recorded audio, else `speak`
    recordings: str = "/var/lib/ivrflow/recordings"
    freeswitch: FsOptions = FsOptions()
    esl: EslAddress | None = None                # inbound ESL (originate); None: not used
    experts: ExpertsConfig = ExpertsConfig()
    metrics: tuple[str, int] | None = ("127.0.0.1", 9184)
    shutdown_grace: float = 30.0
    reload_interval: float = 2.0
    log_format: str = "json"                     # json | kv
    log_level: str = "INFO"
    pipeline: bool = True                        # first prompt in the handshake's write
    cdr_spool: Path = Path("var/cdr-spool.jsonl")
    action_config: Mapping[str, Any] = field(default_factory=dict)
    source: str = "(defaults)"

    def with_overrides(self, **kw: Any) -> "ServeConfig":
        return replace(self, **{k: v for k, v in kw.items() if v is not None})


def parse_address(text: Any, what: str) -> tuple[str, int]:
    """`host:port` (or `[v6]:port`) -> (host, port); port 0 = any free port."""
    if not isinstance(text, str) or not text.strip():
        raise ServeConfigError(f"{what} must be 'host:port', not {text!r}")
    text = text.strip()
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d+)|([^:\s]+):(\d+)", text)
    if not m:
        raise ServeConfigError(f"{what} must be 'host:port' (e.g. 127.0.0.1:8084), not {text!r}")
    host = m.group(1) or m.group(3)
    port = int(m.group(2) or m.group(4))
    if port > 65535:
        raise ServeConfigError(f"{what}: port {port} is out of range")
    return host, port


def _map(v: Any, what: str, keys: tuple[str, ...]) -> dict:
    if v is None:
        return {}
    if not isinstance(v, Mapping):
        raise ServeConfigError(f"{what} must be a mapping")
    for k in v:
        if k not in keys:
            from engine.flow.diagnostics import did_you_mean
            hint = did_you_mean(str(k), keys)
            raise ServeConfigError(f"{what}: unknown key '{k}'" + (f" ({hint})" if hint else "")
                                   + f"; known: {', '.join(keys)}")
    return dict(v)


def _num(v: Any, what: str, lo: float, hi: float, integer: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not isinstance(v, int)):
        raise ServeConfigError(f"{what} must be a{'n integer' if integer else ' number'}, not {v!r}")
    if not lo <= v <= hi:
        raise ServeConfigError(f"{what} must be between {lo:g} and {hi:g}, not {v!r}")
    return v


def _str(v: Any, what: str, pattern: str | None = None) -> str:
    if not isinstance(v, str) or not v.strip():
        raise ServeConfigError(f"{what} must be a non-empty text, not {v!r}")
    if pattern and not re.fullmatch(pattern, v):
        raise ServeConfigError(f"{what}: {v!r} is not valid")
    return v


def _bool(v: Any, what: str) -> bool:
    if not isinstance(v, bool):
        raise ServeConfigError(f"{what} must be true or false, not {v!r}")
    return v


def _regex(v: Any, what: str) -> re.Pattern:
    try:
        return re.compile(_str(v, what))
    except re.error as e:
        raise ServeConfigError(f"{what}: bad regular expression {v!r}: {e}") from None


_TOKEN = r"[^\s{}]{1,200}"


def _routes(v: Any) -> tuple[Route, ...]:
    if v is None:
        return ()
    if not isinstance(v, list):
        raise ServeConfigError("routes must be a list of {destination?, variable?, flow, lang?}")
    out = []
    for i, r in enumerate(v):
        what = f"routes[{i}]"
        r = _map(r, what, ("destination", "variable", "flow", "lang"))
        if "flow" not in r:
            raise ServeConfigError(f"{what}: 'flow' is required")
        if "destination" not in r and "variable" not in r:
            raise ServeConfigError(f"{what}: give 'destination' and/or 'variable'")
        dest = r.get("destination")
        if isinstance(dest, int) and not isinstance(dest, bool):
            dest = str(dest)
        out.append(Route(
            flow=_str(r["flow"], f"{what}.flow"),
            destination=_regex(dest, f"{what}.destination") if dest is not None else None,
            variable=_str(str(r["variable"]), f"{what}.variable") if "variable" in r else None,
            lang=_str(r["lang"], f"{what}.lang") if r.get("lang") is not None else None))
    return tuple(out)


def _networks(v: Any) -> tuple[Any, ...]:
    if v is None:
        return ()
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list):
        raise ServeConfigError("trusted_networks must be a list of CIDR networks (e.g. 203.0.113.0/24)")
    out = []
    for i, n in enumerate(v):
        try:
            out.append(ipaddress.ip_network(str(n), strict=False))
        except ValueError as e:
            raise ServeConfigError(f"trusted_networks[{i}]: {e}") from None
    return tuple(out)


def parse_config(data: Mapping[str, Any] | None, *, source: str = "(config)",
                 env: Mapping[str, str] | None = None, base: Path | None = None) -> ServeConfig:
    """A checked ServeConfig from the parsed YAML mapping (relative paths from `base`)."""
    data = dict(data or {})
    data = expand_env(data, source, os.environ if env is None else env, ServeConfigError)
    base = base or Path.cwd()

    def path(v: Any, what: str) -> Path:
        p = Path(_str(v, what)).expanduser()
        return p if p.is_absolute() else base / p

    cfg: dict[str, Any] = {"source": source}
    if "listen" in data:
        cfg["listen"] = parse_address(data["listen"], "listen")
    if "flows" in data:
        cfg["flows"] = path(data["flows"], "flows")
    if data.get("db") is not None:
        cfg["db"] = _str(data["db"], "db")
    if "timezone" in data:
        tz = _str(data["timezone"], "timezone")
        try:
            zoneinfo.ZoneInfo(tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ServeConfigError(f"timezone: unknown time zone {tz!r}") from None
        cfg["timezone"] = tz
    cfg["routes"] = _routes(data.get("routes"))
    if "flow_variable" in data:
        cfg["flow_variable"] = _bool(data["flow_variable"], "flow_variable")
    if data.get("fallback") is not None:
        fb = _map(data["fallback"], "fallback", ("file", "say", "lang", "transfer", "context"))
        say = fb.get("say", Fallback().say)
        if isinstance(say, str):
            say = {"*": say}
        if not isinstance(say, Mapping) or not all(isinstance(x, str) for x in say.values()):
            raise ServeConfigError("fallback.say must be a text or {language: text}")
        cfg["fallback"] = Fallback(
            file=_str(fb["file"], "fallback.file") if fb.get("file") else None, say=dict(say),
            lang=_str(fb.get("lang", "zh-CN"), "fallback.lang"),
            transfer=_str(str(fb.get("transfer", "operator")), "fallback.transfer", _TOKEN),
            context=_str(fb["context"], "fallback.context", _TOKEN) if fb.get("context") else None)
    cfg["trusted_networks"] = _networks(data.get("trusted_networks"))
    if data.get("prompts") is not None:
        pr = _map(data["prompts"], "prompts", ("dir", "cache", "tts", "timeout", "synthesize"))
        if "synthesize" in pr:
            cfg["synthesize"] = _bool(pr["synthesize"], "prompts.synthesize")
        if pr.get("dir") is not None:
            cfg["prompts_dir"] = path(pr["dir"], "prompts.dir")
        if pr.get("cache") is not None:
            cfg["prompt_cache"] = path(pr["cache"], "prompts.cache")
        if "tts" in pr:
            tts = str(pr["tts"])
            if tts not in ("pyttsx3", "espeak-cli", "none"):
                raise ServeConfigError(f"prompts.tts must be pyttsx3, espeak-cli or none, not {tts!r}")
            cfg["tts"] = tts
        if "timeout" in pr:
            cfg["synth_timeout"] = float(_num(pr["timeout"], "prompts.timeout", 0.1, 60))
    if data.get("recordings") is not None:
        rec = _str(data["recordings"], "recordings")
        if any(c.isspace() for c in rec):
            raise ServeConfigError("recordings: the directory must not contain spaces "
                                   "(FreeSWITCH's record splits its argument on spaces)")
        cfg["recordings"] = str(path(rec, "recordings"))
    if data.get("freeswitch") is not None:
        fs = _map(data["freeswitch"], "freeswitch", (
            "esl", "default_context", "queue_context", "conference_profile", "speak",
            "bridge_timeout", "record_threshold", "transfer_confirm"))
        opts: dict[str, Any] = {}
        for key in ("default_context", "queue_context", "conference_profile"):
            if key in fs:
                opts[key] = _str(fs[key], f"freeswitch.{key}", _TOKEN)
        if fs.get("speak"):
            opts["speak"] = _str(fs["speak"], "freeswitch.speak", r"[A-Za-z0-9_]+")
        if "bridge_timeout" in fs:
            opts["bridge_timeout"] = int(_num(fs["bridge_timeout"], "freeswitch.bridge_timeout", 1, 600, True))
        if "record_threshold" in fs:
            opts["record_threshold"] = int(_num(fs["record_threshold"], "freeswitch.record_threshold",
                                                0, 10000, True))
        if "transfer_confirm" in fs:
            opts["transfer_confirm"] = float(_num(fs["transfer_confirm"], "freeswitch.transfer_confirm", 0, 60))
        cfg["freeswitch"] = FsOptions(**opts)
        if fs.get("esl") is not None:
            e = _map(fs["esl"], "freeswitch.esl", ("host", "port", "password"))
            cfg["esl"] = EslAddress(
                host=_str(str(e.get("host", "127.0.0.1")), "freeswitch.esl.host"),
                port=int(_num(e.get("port", 8021), "freeswitch.esl.port", 1, 65535, True)),
                password=_str(str(e.get("password", "ClueCon")), "freeswitch.esl.password",
                              r"[^\s]+"))
    if data.get("experts") is not None:
        ex = _map(data["experts"], "experts", ("originate", "dial", "phones", "room_pattern",
                                               "caller_id_number", "timeout", "hold"))
        kw: dict[str, Any] = {}
        if "originate" in ex:
            kw["originate"] = _bool(ex["originate"], "experts.originate")
        if "dial" in ex:
            dial = _str(ex["dial"], "experts.dial", r"[^\s,]{1,200}")
            try:
                dial.format(number="1", phone="1", room="r")
            except (KeyError, IndexError, ValueError) as e:
                raise ServeConfigError(f"experts.dial: {dial!r} may only use {{number}}, {{phone}} "
                                       f"and {{room}} ({e})") from None
            kw["dial"] = dial
        if "phones" in ex:
            ph = ex["phones"] or {}
            if not isinstance(ph, Mapping):
                raise ServeConfigError("experts.phones must map an expert number to a phone number")
            kw["phones"] = {str(k): _str(str(x), f"experts.phones.{k}", r"[0-9A-Za-z+*#._@-]{1,64}")
                            for k, x in ph.items()}
        if "room_pattern" in ex:
            pat = _regex(ex["room_pattern"], "experts.room_pattern")
            if "number" not in pat.groupindex:
                raise ServeConfigError("experts.room_pattern needs a group named 'number', "
                                       "e.g. ^expert-(?P<number>\\d+)$")
            kw["room_pattern"] = pat
        if "caller_id_number" in ex:
            kw["caller_id_number"] = _str(str(ex["caller_id_number"]), "experts.caller_id_number",
                                          r"[0-9A-Za-z+]{1,32}")
        if "timeout" in ex:
            kw["timeout"] = int(_num(ex["timeout"], "experts.timeout", 5, 300, True))
        if "hold" in ex:
            kw["hold"] = _str(ex["hold"], "experts.hold", _TOKEN) if ex["hold"] else None
        cfg["experts"] = ExpertsConfig(**kw)
        if cfg["experts"].originate and "esl" not in cfg:
            raise ServeConfigError("experts.originate needs freeswitch.esl (the inbound Event "
                                   "Socket: host, port, password)")
    if "metrics" in data:
        m = data["metrics"]
        cfg["metrics"] = None if m in (None, False, "off") else parse_address(m, "metrics")
    if data.get("shutdown") is not None:
        sd = _map(data["shutdown"], "shutdown", ("grace",))
        if "grace" in sd:
            cfg["shutdown_grace"] = float(_num(sd["grace"], "shutdown.grace", 0, 86400))
    if data.get("reload") is not None:
        rl = _map(data["reload"], "reload", ("interval",))
        if "interval" in rl:
            cfg["reload_interval"] = float(_num(rl["interval"], "reload.interval", 0, 3600))
    if data.get("logging") is not None:
        lg = _map(data["logging"], "logging", ("format", "level"))
        if "format" in lg:
            if lg["format"] not in ("json", "kv"):
                raise ServeConfigError(f"logging.format must be json or kv, not {lg['format']!r}")
            cfg["log_format"] = lg["format"]
        if "level" in lg:
            lvl = str(lg["level"]).upper()
            if lvl not in ("DEBUG", "INFO", "WARNING", "ERROR"):
                raise ServeConfigError(f"logging.level must be DEBUG, INFO, WARNING or ERROR, not {lg['level']!r}")
            cfg["log_level"] = lvl
    if "pipeline" in data:
        cfg["pipeline"] = _bool(data["pipeline"], "pipeline")
    if data.get("cdr_spool") is not None:
        cfg["cdr_spool"] = path(data["cdr_spool"], "cdr_spool")
    actions = {k: v for k, v in data.items() if k not in SERVE_KEYS}
    _check_action_config(actions, source)
    cfg["action_config"] = actions
    return ServeConfig(**cfg)


def _check_action_config(actions: Mapping[str, Any], source: str) -> None:
    """The http/sql sections are checked by their own module when it is there."""
    try:
        from engine.integrations.config import ConfigError, http_settings, sql_settings
    except ImportError:
        return
    try:
        http_settings(actions)
        sql_settings(actions)
    except ConfigError as e:
        raise ServeConfigError(str(e)) from None


def load_serve_config(path: str | Path | None, env: Mapping[str, str] | None = None) -> ServeConfig:
    """Read and check the file (None: the defaults)."""
    if path is None:
        return ServeConfig()
    from engine.flow.loader import load

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ServeConfigError(f"{p}: cannot read the configuration: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ServeConfigError(f"{p}: the configuration is not UTF-8 text") from None
    if not text.strip():
        return parse_config({}, source=str(p), env=env, base=p.resolve().parent)
    doc = load(text, str(p))
    if doc.diagnostics:
        d = doc.diagnostics[0]
        raise ServeConfigError(f"{d.position}: {d.message}")
    if doc.data is not None and not isinstance(doc.data, dict):
        raise ServeConfigError(f"{p}: the configuration must be a mapping (listen:, routes:, ...)")
    try:
        return parse_config(doc.data, source=str(p), env=env, base=p.resolve().parent)
    except ServeConfigError as e:
        raise ServeConfigError(f"{p}: {e}") from None
