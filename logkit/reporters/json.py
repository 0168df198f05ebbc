"""One JSON document on stdout at the end: ``{"ok", "summary", "results"}``. No markup."""

from __future__ import annotations

import json
from typing import IO, Any

from logkit.reporters.base import SURROGATE_ESCAPES, Outcome, Reporter
from logkit.results import EventFailure, Finding, failure_dict


class JsonReporter(Reporter):
    def __init__(self, out: IO[str], err: IO[str], *, tool: str = "logkit") -> None:
        super().__init__(out, err, tool=tool)
        self.results: list[dict[str, Any]] = []

    def event(self, failure: EventFailure) -> None:
        self.results.append(failure_dict(failure))

    def finding(self, finding: Finding) -> None:
        self.results.append(finding.as_dict())

    def finish(self, outcome: Outcome) -> None:
        document = {
            "tool": self.tool,
            "ok": outcome.ok,
            "summary": outcome.counts,
            "results": self.results,
        }
        text = json.dumps(document, ensure_ascii=False, indent=2)
        # A raw surrogate can only sit inside a JSON string, where its \u escape means the same.
        self.out.write(text.translate(SURROGATE_ESCAPES) + "\n")
        self.err.write(outcome.line + "\n")
