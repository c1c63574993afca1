"""The deployment configuration of the integration actions (``http``, ``sql``).

The runtime hands actions a plain mapping (``Interpreter(config=...)``, ``ctx.config``);
``load_config`` reads it from a YAML file (``ivrflow.example.yaml``), with ``${NAME}``
taken from the environment so credentials stay out of files.  ``http_settings`` and
``sql_settings`` turn the ``http`` / ``sql`` sections into checked settings; every problem
is a ``ConfigError`` naming the key.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

__all__ = ["IntegrationError", "ConfigError", "HttpSettings", "SqlSettings", "http_settings", "sql_settings",
           "load_config", "split_host_port", "HTTP_KEYS", "SQL_KEYS"]


class IntegrationError(Exception):
    """A flow or deployment mistake found when an integration action runs (the call goes to
    the state's ``error`` transition or ``on.error``, with this message in the record)."""


class ConfigError(IntegrationError):
    """The deployment configuration is wrong."""


HTTP_KEYS = ("allow_hosts", "resolve", "headers", "timeout", "max_timeout", "max_response_bytes", "retry_backoff",
             "max_redirects", "verify_tls", "ca_file", "https_only")
SQL_KEYS = ("databases", "timeout", "max_timeout", "pool_size")

_HOST_RE = re.compile(r"^(\*\.)?[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$|^\[[0-9A-Fa-f:.]+\]$")
_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def split_host_port(text: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]``, ``[v6]:port`` -> (lower-case host, port or None)."""
    text = text.strip()
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"bad address {text!r}")
        host, rest = text[1:end], text[end + 1:]
        if rest and not rest.startswith(":"):
            raise ValueError(f"bad address {text!r}")
        port = rest[1:] if rest else None
    else:
        host, sep, port = text.rpartition(":") if ":" in text else (text, "", None)
        if sep and not host:
            raise ValueError(f"bad address {text!r}")
    if port is not None:
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"bad port in {text!r}")
        port = int(port)
    if not host:
        raise ValueError(f"bad address {text!r}")
    return host.lower(), port


def _host_ok(host: str) -> bool:
    return bool(_HOST_RE.match(host if ":" not in host else f"[{host}]"))


@dataclass(frozen=True)
class HttpSettings:
    allow_hosts: tuple[tuple[str, int | None], ...] = ()
    resolve: Mapping[str, tuple[str, int | None]] = field(default_factory=dict)
    headers: tuple[tuple[str, int | None, Mapping[str, str]], ...] = ()
    timeout: float = 5.0
    max_timeout: float = 30.0
    max_response_bytes: int = 1_048_576
    retry_backoff: float = 0.2
    max_redirects: int = 3
    verify_tls: bool = True
    ca_file: str | None = None
    https_only: bool = False

    def allowed(self, host: str, port: int) -> bool:
        return any(_match(p, pp, host, port) for p, pp in self.allow_hosts)

    def connect_to(self, host: str, port: int) -> tuple[str, int]:
        """Where to open the TCP connection for host:port (``resolve``, like curl --resolve)."""
        for key in (f"{host}:{port}", host, "*"):
            hit = self.resolve.get(key)
            if hit is not None:
                return hit[0], hit[1] if hit[1] is not None else port
        return host, port

    def extra_headers(self, host: str, port: int) -> dict[str, str]:
        out: dict[str, str] = {}
        for p, pp, hdrs in self.headers:
            if _match(p, pp, host, port):
                out.update(hdrs)
        return out


def _match(pattern: str, pport: int | None, host: str, port: int) -> bool:
    if pport is not None and pport != port:
        return False
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


@dataclass(frozen=True)
class SqlSettings:
    databases: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 5.0
    max_timeout: float = 30.0
    pool_size: int = 5


def _section(config: Mapping[str, Any] | None, name: str, keys: tuple[str, ...]) -> Mapping[str, Any]:
    sec = (config or {}).get(name) if isinstance(config, Mapping) else None
    if sec is None:
        return {}
    if not isinstance(sec, Mapping):
        raise ConfigError(f"config '{name}' must be a mapping")
    for k in sec:
        if k not in keys:
            from engine.flow.diagnostics import did_you_mean

            hint = did_you_mean(str(k), keys)
            raise ConfigError(f"config {name}: unknown key '{k}'" + (f" ({hint})" if hint else ""))
    return sec


def _number(sec: Mapping, name: str, key: str, default: float, lo: float, hi: float, integer: bool = False):
    v = sec.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not isinstance(v, int)):
        raise ConfigError(f"config {name}.{key} must be a{'n integer' if integer else ' number'}, not {v!r}")
    if not lo <= v <= hi:
        raise ConfigError(f"config {name}.{key} must be between {lo:g} and {hi:g}, not {v!r}")
    return v


def _hostlist(v: Any, what: str) -> tuple[tuple[str, int | None], ...]:
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, (list, tuple)):
        raise ConfigError(f"config {what} must be a list of host names (e.g. [dispatch.example, '*.school.example'])")
    out = []
    for item in v:
        if not isinstance(item, str) or "/" in item:
            raise ConfigError(f"config {what}: {item!r} is not a host name (write dispatch.example, not a URL)")
        try:
            host, port = split_host_port(str(item))
        except ValueError as e:
            raise ConfigError(f"config {what}: {e}") from None
        if not _host_ok(host):
            raise ConfigError(f"config {what}: {item!r} is not a host name, '*.domain' or an IP address")
        out.append((host, port))
    return tuple(out)


def http_settings(config: Mapping[str, Any] | None) -> HttpSettings:
    """The checked ``http`` section (defaults for what is missing)."""
    sec = _section(config, "http", HTTP_KEYS)
    allow = _hostlist(sec.get("allow_hosts") or [], "http.allow_hosts")
    resolve: dict[str, tuple[str, int | None]] = {}
    raw = sec.get("resolve") or {}
    if not isinstance(raw, Mapping):
        raise ConfigError("config http.resolve must map host (or host:port, or '*') to address[:port]")
    for k, v in raw.items():
        try:
            kh, kp = split_host_port(str(k)) if k != "*" else ("*", None)
            addr, port = split_host_port(str(v))
        except ValueError as e:
            raise ConfigError(f"config http.resolve: {e}") from None
        resolve[f"{kh}:{kp}" if kp is not None else kh] = (addr, port)
    headers = []
    rawh = sec.get("headers") or {}
    if not isinstance(rawh, Mapping):
        raise ConfigError("config http.headers must map host to {header: value}")
    for k, hv in rawh.items():
        (host, port), = _hostlist([k], "http.headers")
        if not isinstance(hv, Mapping) or not all(isinstance(x, str) and isinstance(y, str) for x, y in hv.items()):
            raise ConfigError(f"config http.headers.{k} must map header names to text values")
        for name, val in hv.items():
            if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name) or "\r" in val or "\n" in val:
                raise ConfigError(f"config http.headers.{k}: bad header {name!r}")
        headers.append((host, port, dict(hv)))
    ca = sec.get("ca_file")
    if ca is not None and (not isinstance(ca, str) or not Path(ca).is_file()):
        raise ConfigError(f"config http.ca_file: {ca!r} is not a readable file")
    for key in ("verify_tls", "https_only"):
        if key in sec and not isinstance(sec[key], bool):
            raise ConfigError(f"config http.{key} must be true or false")
    return HttpSettings(
        allow_hosts=allow, resolve=resolve, headers=tuple(headers),
        timeout=float(_number(sec, "http", "timeout", 5.0, 0.001, 60)),
        max_timeout=float(_number(sec, "http", "max_timeout", 30.0, 0.001, 600)),
        max_response_bytes=int(_number(sec, "http", "max_response_bytes", 1_048_576, 1, 64 * 1_048_576, True)),
        retry_backoff=float(_number(sec, "http", "retry_backoff", 0.2, 0, 10)),
        max_redirects=int(_number(sec, "http", "max_redirects", 3, 0, 10, True)),
        verify_tls=sec.get("verify_tls", True), ca_file=ca, https_only=sec.get("https_only", False))


def sql_settings(config: Mapping[str, Any] | None) -> SqlSettings:
    """The checked ``sql`` section (defaults for what is missing)."""
    sec = _section(config, "sql", SQL_KEYS)
    dbs = sec.get("databases") or {}
    if not isinstance(dbs, Mapping):
        raise ConfigError("config sql.databases must map a name to a SQLAlchemy URL")
    for k, v in dbs.items():
        if not isinstance(v, str) or "://" not in v:
            raise ConfigError(f"config sql.databases.{k} must be a SQLAlchemy URL "
                              "(e.g. postgresql://reader@db.school.example/school or sqlite:////srv/school.db)")
    return SqlSettings(databases=dict(dbs),
                       timeout=float(_number(sec, "sql", "timeout", 5.0, 0.001, 600)),
                       max_timeout=float(_number(sec, "sql", "max_timeout", 30.0, 0.001, 600)),
                       pool_size=int(_number(sec, "sql", "pool_size", 5, 1, 100, True)))


def expand_env(v: Any, where: str, env: Mapping[str, str], error: type[Exception] | None = None) -> Any:
    """Replace ``${NAME}`` in every string of a config tree with the environment's value;
    a missing variable raises ``error`` (default ConfigError) naming the config path."""
    error = error or ConfigError
    if isinstance(v, str):
        def sub(m: re.Match) -> str:
            if m.group(1) not in env:
                raise error(f"{where}: environment variable {m.group(1)} is not set")
            return env[m.group(1)]
        return _ENV_RE.sub(sub, v)
    if isinstance(v, dict):
        return {k: expand_env(x, f"{where}.{k}", env, error) for k, x in v.items()}
    if isinstance(v, list):
        return [expand_env(x, f"{where}[{i}]", env, error) for i, x in enumerate(v)]
    return v


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> dict:
    """Read a deployment configuration file; ``${NAME}`` comes from the environment.
    Raises ConfigError (with file:line:col for YAML problems)."""
    from engine.flow.loader import load

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{p}: cannot read the configuration: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: the configuration is not UTF-8 text") from None
    doc = load(text, str(p))
    if doc.diagnostics:
        d = doc.diagnostics[0]
        raise ConfigError(f"{d.position}: {d.message}")
    if doc.data is None:
        return {}
    if not isinstance(doc.data, dict):
        raise ConfigError(f"{p}: the configuration must be a mapping (http:, sql:, ...)")
    data = expand_env(doc.data, str(p), os.environ if env is None else env)
    try:
        http_settings(data)
        sql_settings(data)
    except ConfigError as e:
        raise ConfigError(f"{p}: {e}") from None
    return data
