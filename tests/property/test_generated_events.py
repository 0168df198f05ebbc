"""Generated events: what a contract describes, logkit accepts; each kind of mistake, it refuses.

hypothesis-jsonschema generates instances of a schema, but it follows no file ``$ref`` and
speaks draft-07 only. So each contract of the example registry is bundled first (its
``../_shared/...`` references inlined), the generated events logkit's own validator refuses
are set aside (the fraction kept must stay high), and every kept event is then broken in three
ways that ``Registry.validate`` must catch.
"""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag

import jsonschema_rs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from logkit import Registry
from logkit.registry import Contract

REGISTRY = Registry.load(Path(__file__).resolve().parents[2] / "registry")
LABELS = [contract.label for contract in REGISTRY]
# Draft-07 has no "uuid" format; without a hint, hypothesis-jsonschema writes any string.
FORMATS = {"uuid": st.uuids().map(str)}
# One value of each JSON type, to put where a field expects another type.
SAMPLES: dict[str, Any] = {
    "string": "x",
    "integer": 7,
    "number": 2.5,
    "boolean": True,
    "null": None,
    "array": [],
    "object": {},
}


def _at(document: Any, fragment: str) -> Any:
    for token in filter(None, fragment.split("/")):
        token = token.replace("~1", "/").replace("~0", "~")
        document = document[int(token)] if isinstance(document, list) else document[token]
    return document


def bundle(node: Any, base: Path) -> Any:
    """``node`` with every reference to another registry file inlined (as an ``allOf``)."""
    if isinstance(node, list):
        return [bundle(item, base) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: bundle(value, base) for key, value in node.items() if key != "$ref"}
    ref = node.get("$ref")
    if isinstance(ref, str) and not ref.startswith("#"):
        file, fragment = urldefrag(ref)
        target = (base.parent / file).resolve()
        # In 2020-12 a $ref's siblings apply alongside it: an allOf says the same.
        out["allOf"] = [
            *out.get("allOf", []),
            bundle(_at(REGISTRY.document(target), fragment), target),
        ]
    elif ref is not None:
        out["$ref"] = ref
    return out


def bundled(contract: Contract) -> dict[str, Any]:
    schema: dict[str, Any] = bundle(contract.schema, contract.path)
    for key in ("$schema", "x-logkit", "examples"):
        schema.pop(key, None)
    return schema


def declared_types(schema: dict[str, Any]) -> set[str]:
    """The JSON types a (bundled) property schema allows, looking through ``allOf``."""
    found = schema.get("type")
    types = {found} if isinstance(found, str) else set(found or ())
    for part in schema.get("allOf", []):
        types |= declared_types(part)
    return types


def allows(types: set[str], kind: str) -> bool:
    return kind in types or (kind == "integer" and "number" in types)


def test_bundling_leaves_no_file_reference_and_keeps_the_meaning() -> None:
    for contract in REGISTRY:
        schema = bundled(contract)
        assert "../_shared" not in repr(schema)
        alone = jsonschema_rs.validator_for(schema, validate_formats=True)
        examples = contract.schema.get("examples", [])
        assert examples
        for example in examples:
            assert alone.is_valid(example)
            assert REGISTRY.validate(contract, example) == []
            broken = dict(example, user_id=12)
            assert not alone.is_valid(broken)
            assert REGISTRY.validate(contract, broken) != []


@pytest.mark.parametrize("label", LABELS)
def test_generated_events_are_accepted_and_their_mutants_refused(label: str) -> None:
    contract = REGISTRY.get(label)
    schema = bundled(contract)
    required: list[str] = schema["required"]
    properties: dict[str, Any] = schema["properties"]
    assert schema.get("additionalProperties") is False  # the mutations below rely on it
    events = from_schema(schema, custom_formats=FORMATS)
    counts: Counter[str] = Counter()

    @settings(max_examples=40, deadline=None)
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        event = data.draw(events, label="event")
        counts["generated"] += 1
        if REGISTRY.validate(contract, event):
            return  # a draft-07 reading of the schema; counted, then set aside
        counts["kept"] += 1

        # 1. Drop a required key.
        missing = data.draw(st.sampled_from(required), label="drop")
        dropped = {k: v for k, v in event.items() if k != missing}
        issues = REGISTRY.validate(contract, dropped)
        assert ("", "required") in {(i.path, i.rule) for i in issues}
        assert any(repr(missing) in i.message for i in issues)

        # 2. Add a key the contract does not declare.
        extra = data.draw(st.text(max_size=12).filter(lambda k: k not in properties), label="extra")
        added = dict(event, **{extra: data.draw(st.sampled_from(list(SAMPLES.values())))})
        pointer = "/" + extra.replace("~", "~0").replace("/", "~1")
        assert (pointer, "additionalProperties") in {
            (i.path, i.rule) for i in REGISTRY.validate(contract, added)
        }

        # 3. Give a field a value of another JSON type.
        field = data.draw(st.sampled_from(sorted(event)), label="field")
        types = declared_types(properties[field])
        kind = data.draw(
            st.sampled_from([k for k in SAMPLES if not allows(types, k)]), label="kind"
        )
        changed = copy.deepcopy(event)
        changed[field] = SAMPLES[kind]
        assert (f"/{field}", "type") in {
            (i.path, i.rule) for i in REGISTRY.validate(contract, changed)
        }

    check()
    assert counts["generated"] >= 20
    assert counts["kept"] >= 0.8 * counts["generated"], counts
