"""The schema is the one definition of the syntax; the docs must cover all of it."""

import json
import re
from pathlib import Path

import jsonschema

from engine.flow.schema import KIND_KEYS, flow_schema

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "flow-language.md").read_text(encoding="utf-8")


def test_schema_is_valid_draft_2020_12():
    s = json.loads((ROOT / "schema" / "flow.schema.json").read_text(encoding="utf-8"))
    assert s["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(s)


def test_state_kinds_match_schema_and_are_documented():
    props = flow_schema()["$defs"]["state"]["properties"]
    kinds = set(props) - {"next", "params", "description"}
    assert kinds == set(KIND_KEYS)
    headings = set(re.findall(r"^### ([a-z /]+?)(?: —|$)", DOC, re.M))
    documented = {w for h in headings for w in h.split(" / ")}
    assert kinds <= documented, f"undocumented kinds: {kinds - documented}"


def test_top_level_keys_documented():
    for key in flow_schema()["properties"]:
        assert re.search(rf"^{key}:", DOC, re.M) or f"`{key}" in DOC or f"{key}:" in DOC, key


def test_examples_carry_the_modeline():
    for p in (ROOT / "flows").glob("*.yaml"):
        if p.name.endswith(".test.yaml"):      # scenario files, not flows
            continue
        assert p.read_text(encoding="utf-8").startswith("# yaml-language-server: $schema=../schema/flow.schema.json"), p
