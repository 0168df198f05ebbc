"""jsonschema-rs errors -> Issues: pointers, rules, readable messages, best-match branches."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest

from logkit.explain import explain, pointer, show
from logkit.results import Issue


def issues(schema: dict[str, Any], instance: Any, limit: int = 50) -> list[Issue]:
    validator = jsonschema_rs.Draft202012Validator(schema, validate_formats=True)
    return explain(validator, instance, limit)


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ([], ""),
        (["a", 0, "b"], "/a/0/b"),
        (["a/b"], "/a~1b"),
        (["c~d"], "/c~0d"),
        (["~/"], "/~0~1"),
        ([""], "/"),
    ],
)
def test_pointer_follows_rfc_6901(parts: list[str | int], expected: str) -> None:
    assert pointer(parts) == expected


def test_show_is_json_and_cut_at_sixty_characters() -> None:
    assert show("x") == '"x"'
    assert show({"a": [1, None, True]}) == '{"a":[1,null,true]}'
    assert show(2**70) == "1180591620717411303424"
    long = show("y" * 100)
    assert len(long) == 60
    assert long == '"' + "y" * 58 + "…"


def test_type_message_names_expected_and_found() -> None:
    assert issues({"properties": {"n": {"type": "integer"}}}, {"n": "0"}) == [
        Issue("/n", "type", 'expected integer, found "0"')
    ]
    assert issues({"type": ["string", "null"]}, 3) == [
        Issue("", "type", "expected null or string, found 3")
    ]


def test_required_and_additional_properties_are_one_issue_per_name() -> None:
    schema = {
        "type": "object",
        "required": ["a", "b"],
        "additionalProperties": False,
        "properties": {"a": {}, "b": {}},
    }
    assert issues(schema, {"x/y": 1, "z": 2}) == [
        Issue("", "required", "missing required property 'a'"),
        Issue("", "required", "missing required property 'b'"),
        Issue("/x~1y", "additionalProperties", "property 'x/y' is not allowed by the contract"),
        Issue("/z", "additionalProperties", "property 'z' is not allowed by the contract"),
    ]


def test_enum_lists_at_most_ten_options() -> None:
    [issue] = issues({"enum": list(range(12))}, 99)
    assert issue == Issue(
        "", "enum", "99 is not one of the allowed values: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, …"
    )


def test_format_and_false_schema_messages() -> None:
    assert issues({"format": "uuid"}, "nope") == [Issue("", "format", '"nope" is not a valid uuid')]
    assert issues({"prefixItems": [{}], "items": False}, [1, 2]) == [
        Issue("/1", "false", "2 is not allowed here (the schema is false)")
    ]


def test_the_limit_caps_the_number_of_issues() -> None:
    schema = {"type": "array", "items": {"type": "integer"}}
    assert len(issues(schema, ["x"] * 80)) == 50
    assert [i.path for i in issues(schema, ["x"] * 80, limit=3)] == ["/0", "/1", "/2"]


def test_a_long_value_is_shortened_in_a_long_message() -> None:
    [issue] = issues({"maxLength": 2}, "z" * 300)
    assert issue.rule == "maxLength"
    assert len(issue.message) < 120
    assert issue.message.endswith("is longer than 2 characters")


# -- anyOf / oneOf: report the closest branch's own errors ---------------------------------


def test_any_of_prefers_the_branch_whose_type_matches() -> None:
    # The object branch has three errors, the string branch one; but the string branch
    # describes another kind of value altogether, so the object branch explains best.
    schema = {"anyOf": [{"type": "object", "required": ["a", "b", "c"]}, {"type": "string"}]}
    note = " (closest of 2 anyOf alternatives)"
    assert issues(schema, {}) == [
        Issue("", "required", f"missing required property {name!r}{note}")
        for name in ("a", "b", "c")
    ]


def test_one_of_prefers_the_branch_with_fewest_errors() -> None:
    schema = {
        "type": "object",
        "properties": {
            "payment": {
                "oneOf": [
                    {"type": "object", "required": ["iban", "bic", "holder"]},
                    {
                        "type": "object",
                        "required": ["card_last4"],
                        "properties": {"card_last4": {"pattern": "^[0-9]{4}$"}},
                    },
                ]
            }
        },
    }
    assert issues(schema, {"payment": {"card_last4": "42x2"}}) == [
        Issue(
            "/payment/card_last4",
            "pattern",
            '"42x2" does not match "^[0-9]{4}$" (closest of 2 oneOf alternatives)',
        )
    ]


def test_best_match_prefers_the_deeper_error_on_a_tie() -> None:
    schema = {
        "anyOf": [
            {"type": "object", "required": ["kind"]},
            {"type": "object", "properties": {"url": {"format": "uri"}}},
        ]
    }
    [issue] = issues(schema, {"url": "not a uri"})
    assert issue.path == "/url"
    assert issue.rule == "format"


def test_one_of_with_two_matches_says_so() -> None:
    schema = {"oneOf": [{"type": "integer"}, {"minimum": 0}]}
    assert issues(schema, 3) == [
        Issue("", "oneOf", "3 matches more than one oneOf alternative; exactly one must match")
    ]


def test_nested_any_of_notes_the_alternatives_once() -> None:
    schema = {
        "anyOf": [
            {"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 2}]},
            {"type": "null"},
        ]
    }
    [issue] = issues(schema, "abc")
    assert issue.rule == "maxLength"
    assert issue.message.count("closest of") == 1, issue.message


# -- keywords whose error kind hides the keyword -------------------------------------------


def test_dependent_required_is_named_as_such() -> None:
    schema = {"dependentRequired": {"card_number": ["billing_address"]}}
    [issue] = issues(schema, {"card_number": "4242"})
    assert issue.path == ""
    assert issue.rule == "dependentRequired"
    assert "'billing_address'" in issue.message


def test_property_names_says_it_is_about_a_name() -> None:
    [issue] = issues({"propertyNames": {"pattern": "^[a-z]+$"}}, {"Abc": 1})
    assert issue.rule == "propertyNames"
    assert issue.message == 'property name "Abc" does not match "^[a-z]+$"'
