"""Results are data: what validation found, ready for any reporter to render."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Issue:
    """One reason an event is invalid: where (JSON pointer), which rule, and why."""

    path: str
    rule: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "rule": self.rule, "message": self.message}


@dataclass(slots=True)
class EventFailure:
    """An event that is not valid, or a line that is not an event at all.

    ``reason`` uses the dead-letter vocabulary of PRODUCT.md: ``invalid`` for a parsed event
    that breaks its contract, ``malformed_json``, ``unknown_contract``, ``too_large``, ...
    """

    source: str
    line: int
    reason: str
    issues: list[Issue]
    contract: str | None = None
    version: int | None = None

    @property
    def label(self) -> str:
        if self.contract is None:
            return "-"
        return self.contract if self.version is None else f"{self.contract}@{self.version}"


@dataclass
class Summary:
    """Counts of one validation run, per contract and version."""

    events: int = 0
    valid: int = 0
    failures: int = 0
    sources: int = 0
    per_contract: Counter[tuple[str, str]] = field(default_factory=Counter)
    stopped_early: bool = False

    @property
    def invalid(self) -> int:
        return self.failures

    def merge(self, valid: int, failures: int, per_contract: Counter[tuple[str, str]]) -> None:
        self.events += valid + failures
        self.valid += valid
        self.failures += failures
        self.per_contract.update(per_contract)


@dataclass(frozen=True, slots=True)
class Finding:
    """One reportable problem, whatever found it (validate, lint, check-compat)."""

    file: str
    line: int | None
    pointer: str
    rule: str
    message: str
    severity: str = "error"  # error | warning | info
    subject: str = ""  # the contract (and version) it concerns, when there is one

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "path": self.pointer,
            "rule": self.rule,
            "message": self.message,
            "severity": self.severity,
            "subject": self.subject,
        }


def failure_findings(failure: EventFailure) -> list[Finding]:
    """One finding per issue of a failed event, for line-oriented reporters."""
    return [
        Finding(
            failure.source,
            failure.line,
            issue.path,
            issue.rule,
            issue.message,
            "error",
            failure.label if failure.contract else failure.reason,
        )
        for issue in failure.issues
    ]


def failure_dict(failure: EventFailure) -> dict[str, object]:
    return {
        "source": failure.source,
        "line": failure.line,
        "contract": failure.contract,
        "version": failure.version,
        "reason": failure.reason,
        "errors": [issue.as_dict() for issue in failure.issues],
    }


def plural(count: int, noun: str) -> str:
    """``plural(1, "event")`` -> ``1 event``; ``plural(3, "event")`` -> ``3 events``."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"
