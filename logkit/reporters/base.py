"""What every reporter can be told. Findings stream in; ``finish`` closes the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import IO, Any

from logkit.results import EventFailure, Finding, failure_findings


@dataclass
class Outcome:
    """How a run ended: a one-line summary and the counts behind it."""

    ok: bool
    line: str
    counts: dict[str, Any] = field(default_factory=dict)


class Reporter:
    """Base reporter: events are turned into findings unless a subclass keeps them whole."""

    def __init__(self, out: IO[str], err: IO[str], *, tool: str = "logkit") -> None:
        self.out = out
        self.err = err
        self.tool = tool

    def event(self, failure: EventFailure) -> None:
        for finding in failure_findings(failure):
            self.finding(finding)

    def finding(self, finding: Finding) -> None:
        raise NotImplementedError

    def finish(self, outcome: Outcome) -> None:
        self.out.flush()  # findings before the summary, even when both go to one terminal
        self.err.write(outcome.line + "\n")
