"""The Python API: ``from logkit import Registry``; ``logkit.testing`` for users' own tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import logkit
from logkit import ContractRef, Issue, LogkitError, Registry, assert_valid
from logkit.errors import UnknownContractError
from logkit.testing import assert_invalid

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "examples" / "events.jsonl"


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.load(REPO / "registry")


def routed(line: int) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(EVENTS.read_text().splitlines()[line - 1])
    return event


def label(event: dict[str, Any]) -> str:
    version = event.get("version")
    return event["contract"] + (f"@{version}" if version else "")


def test_the_public_names_import_lazily() -> None:
    for name in logkit.__all__:
        assert getattr(logkit, name) is not None
    assert Registry.__module__ == "logkit.registry"
    assert issubclass(UnknownContractError, LogkitError)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = logkit.nope  # type: ignore[attr-defined]


@pytest.mark.parametrize("line", [1, 2, 5, 10])
def test_valid_events_have_no_issues(registry: Registry, line: int) -> None:
    event = routed(line)
    assert registry.validate(label(event), event["payload"]) == []


@pytest.mark.parametrize(
    ("line", "path", "rule"),
    [
        (3, "", "required"),
        (4, "/position", "type"),
        (6, "/position", "minimum"),
        (7, "/session_id", "additionalProperties"),
        (8, "/clicked_at", "format"),
        (9, "/query_id", "format"),
    ],
)
def test_invalid_events_return_issues(registry: Registry, line: int, path: str, rule: str) -> None:
    # The mistakes examples/README.md documents for examples/events.jsonl.
    event = routed(line)
    issues = registry.validate(label(event), event["payload"])
    assert [(i.path, i.rule) for i in issues] == [(path, rule)]
    [issue] = issues
    assert isinstance(issue, Issue)
    assert issue.as_dict() == {"path": path, "rule": rule, "message": issue.message}
    assert issue.message


def test_the_contract_can_be_named_in_every_way(registry: Registry) -> None:
    payload = routed(1)["payload"]
    assert registry.validate("search", payload) == []
    assert registry.validate(ContractRef("search", 2), payload) == []
    assert registry.validate(registry.get("search@2"), payload) == []
    # version 1 has no locale or occurred_at: the same event breaks it
    rules = {i.rule for i in registry.validate("search@1", payload)}
    assert rules == {"additionalProperties"}


def test_an_unknown_contract_raises(registry: Registry) -> None:
    with pytest.raises(UnknownContractError, match="did you mean 'search'"):
        registry.validate("serch", {})


def test_every_contract_example_is_valid(registry: Registry) -> None:
    checked = 0
    for contract in registry:
        for example in contract.schema.get("examples", []):
            assert registry.validate(contract, example) == [], contract.label
            checked += 1
    assert checked >= 6


def test_the_api_never_prints(registry: Registry, capsys: pytest.CaptureFixture[str]) -> None:
    registry.validate("click", routed(4)["payload"])
    registry.validate("click", {"nothing": True})
    assert capsys.readouterr() == ("", "")


def test_integers_beyond_64_bits_are_compared_exactly(tmp_path: Path) -> None:
    (tmp_path / "big").mkdir()
    (tmp_path / "big" / "1.yaml").write_text(
        "type: object\nproperties:\n  n: {type: integer, maximum: 1180591620717411303424}\n"
    )
    big = Registry.load(tmp_path)
    assert big.validate("big", {"n": 2**70}) == []
    [issue] = big.validate("big", {"n": 2**70 + 1})
    assert (issue.path, issue.rule) == ("/n", "maximum")
    assert "1180591620717411303425" in issue.message


# -- logkit.testing ----------------------------------------------------------------------------


def test_assert_valid_passes_quietly(registry: Registry) -> None:
    assert_valid(registry, "click@1", routed(2)["payload"])


def test_assert_valid_lists_every_issue(registry: Registry) -> None:
    payload = dict(routed(2)["payload"], position=-1, extra=1)
    with pytest.raises(AssertionError) as info:
        assert_valid(registry, "click@1", payload)
    assert str(info.value) == (
        "event is not valid under click@1:\n"
        "  /position [minimum] -1 is less than the minimum of 0\n"
        "  /extra [additionalProperties] property 'extra' is not allowed by the contract"
    )


def test_assert_invalid(registry: Registry) -> None:
    bad = routed(4)["payload"]
    assert_invalid(registry, "click@1", bad)
    assert_invalid(registry, "click@1", bad, rule="type")
    with pytest.raises(
        AssertionError, match=r"expected a 'minimum' issue under click@1, found: type"
    ):
        assert_invalid(registry, "click@1", bad, rule="minimum")
    with pytest.raises(AssertionError, match="event is valid under click@1, expected it not to be"):
        assert_invalid(registry, "click@1", routed(2)["payload"])


def test_the_helpers_hide_their_own_frames() -> None:
    # pytest shows the user's line, not the helper's, when an assertion fails.
    import logkit.testing

    for helper in (logkit.testing.assert_valid, logkit.testing.assert_invalid):
        assert "__tracebackhide__" in helper.__code__.co_varnames
