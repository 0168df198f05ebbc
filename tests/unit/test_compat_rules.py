"""The rule table: stable kebab-case ids, each documented with an example, each with a fix."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from logkit.compat import RULES, Version, check_pair
from logkit.compat.regexgen import samples
from logkit.compat.rules import diff_schemas

DOCS = Path(__file__).resolve().parents[2] / "docs" / "compat-rules.md"


def test_every_rule_is_documented_with_an_example() -> None:
    text = DOCS.read_text(encoding="utf-8")
    sections = dict(re.findall(r"^### `([a-z0-9-]+)`\n(.*?)(?=^### |\Z)", text, re.M | re.S))
    assert set(RULES) <= set(sections)
    for rule_id in RULES:
        assert "Example" in sections[rule_id], rule_id


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_rule_ids_are_kebab_case_and_explained(rule_id: str) -> None:
    rule = RULES[rule_id]
    assert re.fullmatch(r"[a-z]+(-[a-z]+)*", rule_id)
    assert rule.explains
    if rule.breaks:
        assert rule.fix


def test_regex_samples_match_their_pattern() -> None:
    for pattern in ("^[a-z]{2}(-[A-Z]{2})?$", r"^u_[a-z0-9]+$", r"^(foo|bar)\d+", "[^x]+"):
        found = samples(pattern)
        assert found
        assert all(re.search(pattern, text) for text in found), (pattern, found)


def test_structural_diff_pointers_in_both_versions() -> None:
    old = {"type": "object", "properties": {"a": {"type": "integer", "maximum": 9}}}
    new = {"type": "object", "properties": {"a": {"type": "integer", "maximum": 3}}}
    (change,) = diff_schemas(old, new)
    assert (change.rule, change.old_pointer, change.new_pointer) == (
        "maximum-decreased",
        "/properties/a/maximum",
        "/properties/a/maximum",
    )
    assert (change.old, change.new) == (9, 3)


def test_breaking_change_gets_its_own_witness(tmp_path: Path) -> None:
    old = {"type": "object", "properties": {"a": {"type": "integer", "maximum": 9}, "b": {}}}
    new = {
        "type": "object",
        "required": ["b"],
        "properties": {"a": {"type": "integer", "maximum": 3}, "b": {}},
    }
    result = check_pair(
        Version.from_file(tmp_path / "1.yaml", old, "demo@1"),
        Version.from_file(tmp_path / "2.yaml", new, "demo@2"),
    )
    assert not result.compatible
    by_rule = {c.rule: c for c in result.changes}
    assert by_rule["maximum-decreased"].severity == "error"
    assert by_rule["required-added"].severity == "error"
    # each witness fails the new version at its own keyword
    maximum = by_rule["maximum-decreased"].witness
    required = by_rule["required-added"].witness
    assert maximum is not None
    assert required is not None
    assert any(path.endswith("/maximum") for _, path, _ in maximum.errors)
    assert any(path.endswith("/required") for _, path, _ in required.errors)


@pytest.mark.parametrize(
    ("old", "new", "old_only", "new_only"),
    [
        ("^[a-z]+$", "^[a-c]+$", True, False),
        ("^[a-z]{2}$", "^[a-z]{2}(-[A-Z]{2})?$", False, True),
        (r"^\d{3}$", "^[0-9]{3}$", False, False),
        ("u_", "^u_", True, False),
        ("^a+$", "^b+$", True, True),
        (".", "^.*$", True, True),
        (r"^\S+$", "^[^ ]+$", False, True),
    ],
)
def test_regex_inclusion_is_exact_and_its_examples_are_real(
    old: str, new: str, old_only: bool, new_only: bool
) -> None:
    import jsonschema_rs

    from logkit.compat.regexset import relation

    found = relation(old, new)
    assert found is not None
    assert (found[0] is not None, found[1] is not None) == (old_only, new_only)
    for text, accepting, rejecting in ((found[0], old, new), (found[1], new, old)):
        if text is not None:
            assert jsonschema_rs.validator_for({"pattern": accepting}).is_valid(text)
            assert not jsonschema_rs.validator_for({"pattern": rejecting}).is_valid(text)


@pytest.mark.parametrize("pattern", ["(?=a)", r"(a)\1", r"\bx", "a{,3}", r"\p{L}", "(?i)a"])
def test_regex_outside_the_modelled_subset_is_undecided(pattern: str) -> None:
    from logkit.compat.regexset import relation

    assert relation(pattern, "^a$") is None


def test_inline_keeps_recursion_across_files_under_defs(tmp_path: Path) -> None:
    import yaml

    from logkit.compat.inline import inline
    from logkit.registry import read_document

    (tmp_path / "tree.yaml").write_text(
        yaml.safe_dump(
            {
                "$defs": {
                    "node": {
                        "type": "object",
                        "properties": {
                            "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}
                        },
                    }
                }
            }
        )
    )
    schema = {"properties": {"t": {"$ref": "tree.yaml#/$defs/node", "required": ["kids"]}}}

    def retrieve(uri: str) -> object:
        return read_document(Path(uri.removeprefix("file://")))

    out = inline(schema, (tmp_path / "c.yaml").as_uri(), retrieve)
    (key,) = out["$defs"]
    node = out["$defs"][key]
    assert node["properties"]["kids"]["items"] == {"$ref": f"#/$defs/{key}"}
    # a non-annotation sibling of $ref stays apart from the target (they may interact)
    assert out["properties"]["t"] == {"required": ["kids"], "allOf": [node]}


def test_inline_refuses_anchors() -> None:
    from logkit.compat.inline import CannotInline, inline

    with pytest.raises(CannotInline):
        inline({"$defs": {"a": {"$anchor": "x"}}, "$ref": "#x"}, "file:///c.yaml", print)


def test_plan_pairs_per_mode() -> None:
    from logkit.compat import plan

    assert plan([1, 2, 3], "BACKWARD") == [(1, 2), (2, 3)]
    assert plan([1, 2, 3], "FULL_TRANSITIVE") == [(1, 2), (1, 3), (2, 3)]
    assert plan([4], "FORWARD") == []


def _order(label_max: int) -> dict[str, object]:
    """An order event: many constrained required fields, and an optional label deep inside."""
    item = {
        "type": "object",
        "additionalProperties": False,
        "required": ["sku", "quantity"],
        "properties": {
            "sku": {"type": "string", "pattern": "^SKU-[0-9]{4}$"},
            "quantity": {"type": "integer", "minimum": 1, "maximum": 999},
            "unit_price": {
                "type": "object",
                "additionalProperties": False,
                "required": ["amount", "currency"],
                "properties": {
                    "amount": {"type": "number", "exclusiveMinimum": 0},
                    "currency": {"enum": ["EUR", "USD", "GBP"]},
                },
            },
            "label": {"type": "string", "maxLength": label_max},
        },
    }
    address = {
        "type": "object",
        "additionalProperties": False,
        "required": ["country", "city"],
        "properties": {
            "country": {"type": "string", "pattern": "^[A-Z]{2}$"},
            "city": {"type": "string", "minLength": 1},
        },
    }
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["event_id", "channel", "session_id", "occurred_at", "address", "line_items"],
        "properties": {
            "event_id": {"type": "string", "format": "uuid"},
            "channel": {"enum": ["email", "sms", "push"]},
            "session_id": {"type": "string", "pattern": "^s_[0-9a-f]{16}$"},
            "occurred_at": {"type": "string", "format": "date-time"},
            "address": address,
            "line_items": {"type": "array", "minItems": 1, "items": item},
        },
        "examples": [
            {
                "event_id": "3f8e2a4c-9b71-4d0e-8c55-0a6f1e7d2b94",
                "channel": "email",
                "session_id": "s_4b1d9e0c7a2f6e83",
                "occurred_at": "2026-12-03T10:00:00Z",
                "address": {"country": "GB", "city": "Leeds"},
                "line_items": [{"sku": "SKU-4821", "quantity": 2}],
            }
        ],
    }


def test_a_break_deep_in_a_large_event_is_witnessed_by_changing_an_example(
    tmp_path: Path,
) -> None:
    """Whole candidate events rarely satisfy every constrained field at once: the witness of
    the label's tighter bound is the version's own example with one label added (without that
    stage, this pair was ``undecided``)."""
    result = check_pair(
        Version.from_file(tmp_path / "1.yaml", _order(80), "order@1"),
        Version.from_file(tmp_path / "2.yaml", _order(40), "order@2"),
    )
    assert [(c.rule, c.severity) for c in result.changes] == [("max-length-decreased", "error")]
    witness = result.changes[0].witness
    assert witness is not None
    (item,) = witness.event["line_items"]
    assert 40 < len(item["label"]) <= 80
    assert witness.event["session_id"] == "s_4b1d9e0c7a2f6e83"  # the example, changed once
    assert any(path.endswith("/maxLength") for _, path, _ in witness.errors)
