"""Compatibility of contract versions: exact verdicts with verified witnesses (no printing)."""

from logkit.compat.check import (
    MODES,
    POLICIES,
    PairResult,
    Verdict,
    Version,
    Witness,
    check_pair,
    plan,
    required_relations,
)
from logkit.compat.rules import RULES, Change, Rule

__all__ = [
    "MODES",
    "POLICIES",
    "RULES",
    "Change",
    "PairResult",
    "Rule",
    "Verdict",
    "Version",
    "Witness",
    "check_pair",
    "plan",
    "required_relations",
]
