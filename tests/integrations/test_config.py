"""Deployment configuration of the integrations, and JSON paths."""

from pathlib import Path

import pytest

from engine.integrations.config import ConfigError, http_settings, load_config, split_host_port, sql_settings
from engine.integrations.jsonpath import MISSING, PathError, lookup, parse_path

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "integrations.example.yaml"


def test_the_example_file_loads_with_its_environment():
    cfg = load_config(EXAMPLE, env={"DISPATCH_TOKEN": "t0k", "SCHOOL_DB_PASSWORD": "pw"})
    h = http_settings(cfg)
    assert h.allowed("dispatch.example", 80) and h.allowed("lab.his.hospital.example", 443)
    assert not h.allowed("his.hospital.example", 443) and not h.allowed("evil.example", 80)
    assert h.extra_headers("dispatch.example", 443) == {"Authorization": "Bearer t0k"}
    assert (h.timeout, h.max_timeout, h.max_redirects) == (5.0, 10.0, 3)
    s = sql_settings(cfg)
    assert s.databases["school"] == "postgresql://ivr_reader:pw@db.school.example:5432/school"
    assert (s.timeout, s.pool_size) == (3.0, 5)


def test_a_missing_environment_variable_is_named():
    with pytest.raises(ConfigError, match=r"environment variable SCHOOL_DB_PASSWORD is not set"):
        load_config(EXAMPLE, env={"DISPATCH_TOKEN": "x"})


def test_problems_name_the_key(tmp_path):
    def bad(text):
        f = tmp_path / "c.yaml"
        f.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError) as e:
            load_config(f, env={})
        return str(e.value)

    assert "unknown key 'alow_hosts' (did you mean 'allow_hosts'?)" in bad("http: {alow_hosts: [a]}")
    assert "http.timeout must be between" in bad("http: {timeout: 0}")
    assert "http.max_redirects must be an integer" in bad("http: {max_redirects: 1.5}")
    assert "is not a host name" in bad("http: {allow_hosts: ['http://x/']}")
    assert "sql.databases.school must be a SQLAlchemy URL" in bad("sql: {databases: {school: nowhere}}")
    assert "http.verify_tls must be true or false" in bad("http: {verify_tls: 'no'}")
    assert "bad header" in bad("http: {headers: {h.example: {'Bad Name': x}}}")
    msg = bad("http: [unclosed")
    assert msg.startswith(f"{tmp_path / 'c.yaml'}:") and "YAML syntax error" in msg
    assert "must be a mapping" in bad("- a list")
    assert "cannot read" in str(pytest.raises(ConfigError, load_config, tmp_path / "none.yaml").value)


def test_resolve_like_curl():
    h = http_settings({"http": {"resolve": {"a.example": "10.0.0.1", "a.example:8443": "10.0.0.2:9443",
                                            "*": "127.0.0.1:5000"}}})
    assert h.connect_to("a.example", 80) == ("10.0.0.1", 80)          # the URL's port is kept
    assert h.connect_to("a.example", 8443) == ("10.0.0.2", 9443)      # host:port wins over host
    assert h.connect_to("b.example", 443) == ("127.0.0.1", 5000)      # '*': everything else
    assert http_settings({}).connect_to("b.example", 443) == ("b.example", 443)


def test_host_port_parsing():
    assert split_host_port("Dispatch.Example:8080") == ("dispatch.example", 8080)
    assert split_host_port("[::1]:80") == ("::1", 80) and split_host_port("[::1]") == ("::1", None)
    for bad in ("host:0", "host:x", ":80", "[::1"):
        with pytest.raises(ValueError):
            split_host_port(bad)


def test_json_paths():
    doc = {"a": {"b": [10, {"c": None}], "0": "zero"}, "list": [[1, 2], [3]]}
    assert parse_path("a.b[1].c") == ("a", "b", 1, "c")
    assert lookup(doc, "a.b.0") == 10 and lookup(doc, "a.b[-1].c") is None
    assert lookup(doc, "a.0") == "zero" and lookup(doc, "list[1][0]") == 3
    assert lookup(doc, "a.x") is MISSING and lookup(doc, "a.b.5") is MISSING and lookup(doc, "a.b.c") is MISSING
    assert lookup(doc, "a.b.0.x") is MISSING
    for bad in ("", "a..b", "a[x]", "a.b]"):
        with pytest.raises(PathError):
            parse_path(bad)
