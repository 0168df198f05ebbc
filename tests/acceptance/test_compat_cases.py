"""Data-driven compatibility cases: one folder per case under ``tests/cases/compat/``.

A case folder holds ``old.yaml`` and ``new.yaml`` (two versions of one schema) and
``expected.yaml``:

- ``relations``: the true answer for BACKWARD (every event valid under old is valid under new)
  and FORWARD (the reverse): ``compatible`` or ``breaking``;
- ``modes``: the verdict under BACKWARD, FORWARD, FULL and NONE;
- ``rules``: the rule ids the structural diff must report (order does not matter);
- ``policy`` (optional): ``strict`` (default) or ``lenient``.

Each case also runs reversed (new -> old), where BACKWARD and FORWARD swap. Every witness the
checker returns is validated again here, with validators compiled independently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import jsonschema_rs
import pytest

from logkit import yamlsafe
from logkit.compat import PairResult, Version, Witness, check_pair, required_relations

CASES = Path(__file__).resolve().parent.parent / "cases" / "compat"
STRUCTURAL_ONLY = {"undecided", "backward-incompatible", "forward-incompatible"}


def _cases() -> list[Any]:
    return [pytest.param(p, id=p.name) for p in sorted(CASES.iterdir()) if p.is_dir()]


def _load(path: Path) -> Any:
    return yamlsafe.load(path.read_bytes())


def _validator(case: Path, schema: Any) -> Any:
    """A validator built here, independently of logkit, resolving refs to the case's files."""

    def retrieve(uri: str) -> Any:
        return _load(Path(unquote(urlsplit(uri).path)))

    return jsonschema_rs.validator_for(
        schema, validate_formats=True, base_uri=(case / "old.yaml").as_uri(), retriever=retrieve
    )


def _check_witness(witness: Witness, case: Path, schemas: dict[str, Any]) -> None:
    accepting = _validator(case, schemas[witness.accepted_by])
    rejecting = _validator(case, schemas[witness.rejected_by])
    assert accepting.is_valid(witness.event), witness
    assert not rejecting.is_valid(witness.event), witness


def _all_witnesses(result: PairResult) -> list[Witness]:
    found = [w for v in result.verdicts.values() for w in v.witnesses]
    found += [c.witness for c in result.changes if c.witness is not None]
    return found


@pytest.mark.parametrize("case", _cases())
def test_compat_case(case: Path) -> None:
    expected = _load(case / "expected.yaml")
    policy = expected.get("policy", "strict")
    old_schema, new_schema = _load(case / "old.yaml"), _load(case / "new.yaml")
    old = Version.from_file(case / "old.yaml", old_schema, "old")
    new = Version.from_file(case / "new.yaml", new_schema, "new")
    schemas = {"old": old_schema, "new": new_schema}

    result = check_pair(old, new, mode="FULL", policy=policy)
    for mode, verdict in expected["modes"].items():
        compatible = all(result.verdicts[r].ok for r in required_relations(mode))
        assert compatible == (verdict == "compatible"), (mode, result.verdicts)
    answers = {r: v.answer for r, v in result.verdicts.items()}
    assert answers == expected["relations"]
    rules = sorted({c.rule for c in result.changes} - STRUCTURAL_ONLY)
    assert rules == sorted(expected["rules"])
    for relation, verdict in result.verdicts.items():
        if verdict.answer == "breaking":
            assert verdict.witness is not None, f"{relation}: no witness"
    for witness in _all_witnesses(result):
        _check_witness(witness, case, schemas)

    reverse = check_pair(new, old, mode="FULL", policy=policy)
    swapped = {
        "BACKWARD": expected["relations"]["FORWARD"],
        "FORWARD": expected["relations"]["BACKWARD"],
    }
    assert {r: v.answer for r, v in reverse.verdicts.items()} == swapped
    for witness in _all_witnesses(reverse):
        _check_witness(witness, case, schemas)
