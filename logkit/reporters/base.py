"""What every reporter can be told. Findings stream in; ``finish`` closes the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import IO, Any

from logkit.results import EventFailure, Finding, failure_findings

#: A file name that is not UTF-8 reaches us with surrogate escapes (PEP 383), which a UTF-8
#: stream with strict errors cannot write; every reporter writes them as ``\udcff`` instead.
SURROGATE_ESCAPES = {c: f"\\u{c:04x}" for c in range(0xD800, 0xE000)}


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
