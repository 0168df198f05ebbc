"""A property-based oracle for check-compat.

Schema pairs are made by random mutations of the example contracts. Whenever the checker says
every event valid under A is valid under B, events generated from A (hypothesis-jsonschema, kept
only when logkit's own validator accepts them: it knows draft-07 keywords only) must validate
under B; whenever it says not, it must hold a witness that A accepts and B rejects.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from logkit.compat import Version, check_pair
from logkit.registry import Registry
from logkit.schemawalk import resolve_pointer, subschemas

REGISTRY = Path(__file__).resolve().parents[2] / "registry"


def _examples() -> list[dict[str, Any]]:
    registry = Registry.load(REGISTRY)
    found = []
    for contract in registry:
        schema = jsonschema_rs.dereference(
            contract.schema, base_uri=contract.path.as_uri(), retriever=registry._retrieve
        )
        schema.pop("examples", None)
        schema.pop("x-logkit", None)
        found.append(schema)
    return found


EXAMPLES = _examples()


def _mutate(schema: dict[str, Any], pointer: str, kind: str) -> dict[str, Any]:
    out = copy.deepcopy(schema)
    try:
        node = resolve_pointer(out, pointer)
    except (KeyError, IndexError):  # an earlier mutation removed it
        return out
    if not isinstance(node, dict):
        return out
    props = node.get("properties")
    if kind == "drop-required" and node.get("required"):
        node["required"] = node["required"][1:]
    elif kind == "add-required" and isinstance(props, dict):
        missing = [p for p in props if p not in node.get("required", [])]
        if missing:
            node.setdefault("required", []).append(missing[0])
    elif kind == "drop-property" and isinstance(props, dict) and props:
        name = sorted(props)[-1]
        del props[name]
        if name in node.get("required", []):
            node["required"].remove(name)
    elif kind == "add-property" and isinstance(props, dict):
        props["extra"] = {"type": "integer", "maximum": 5}
    elif kind == "toggle-closed" and isinstance(props, dict):
        if node.get("additionalProperties") is False:
            del node["additionalProperties"]
        else:
            node["additionalProperties"] = False
    elif kind == "tighten" and node.get("type") in ("string", "integer", "number", "array"):
        key = {"string": "maxLength", "array": "maxItems"}.get(node["type"], "maximum")
        node[key] = max(0, int(node.get(key, 10)) // 2)
    elif kind == "loosen":
        for key in ("maxLength", "maxItems", "maximum", "minimum", "minLength", "pattern"):
            node.pop(key, None)
    elif kind == "retype" and isinstance(node.get("type"), str):
        node["type"] = {"integer": "number", "number": "integer", "string": ["string", "null"]}.get(
            node["type"], "string"
        )
    elif kind == "enum":
        node["enum"] = ["a", 1, None]
    elif kind == "pattern" and node.get("type") == "string":
        node["pattern"] = {"^[a-z]+$": "^[a-z0-9_]+$", "^[a-z0-9_]+$": "^u_"}.get(
            node.get("pattern", ""), "^[a-z]+$"
        )
    elif kind == "any-of":
        wrapped = dict(node)
        node.clear()
        node["anyOf"] = [wrapped, {"type": "null"}]
    elif kind == "one-of":
        wrapped = dict(node)
        node.clear()
        node["oneOf"] = [wrapped, {"type": ["string", "integer"]}]
    elif kind == "not":
        node["not"] = {"const": 0}
    return out


KINDS = [
    "pattern",
    "any-of",
    "one-of",
    "not",
    "drop-required",
    "add-required",
    "drop-property",
    "add-property",
    "toggle-closed",
    "tighten",
    "loosen",
    "retype",
    "enum",
]


@st.composite
def pairs(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    base = draw(st.sampled_from(EXAMPLES))
    pointers = [p for p, s in subschemas(base) if isinstance(s, dict)]
    a, b = base, base
    for _ in range(draw(st.integers(1, 2))):
        b = _mutate(b, draw(st.sampled_from(pointers)), draw(st.sampled_from(KINDS)))
    if draw(st.booleans()):
        a, b = b, a
    return a, b


@pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(pair=pairs(), data=st.data())
def test_verdicts_agree_with_generated_events(
    pair: tuple[dict[str, Any], dict[str, Any]], data: st.DataObject, tmp_path_factory: Any
) -> None:
    a_schema, b_schema = pair
    folder = tmp_path_factory.mktemp("oracle")
    a = Version.from_file(folder / "a.json", a_schema, "A")
    b = Version.from_file(folder / "b.json", b_schema, "B")
    verdict = check_pair(a, b, mode="BACKWARD").verdicts["BACKWARD"]
    if verdict.answer == "compatible":
        strategy = from_schema(a_schema)
        if strategy.is_empty:  # A admits nothing: trivially compatible
            return
        events = data.draw(st.lists(strategy, max_size=3))
        for event in events:
            if a.accepts(event):
                assert b.accepts(event), event
    elif verdict.answer == "breaking":
        assert verdict.witness is not None
        assert a.accepts(verdict.witness.event)
        assert not b.accepts(verdict.witness.event)
