"""Plain lines when piped (fast, grep-able); colour through rich on a terminal."""

from __future__ import annotations

import os
import re
from dataclasses import replace
from typing import IO, Any

from logkit.reporters.base import SURROGATE_ESCAPES, Outcome, Reporter
from logkit.results import Finding

_STYLE = {"error": "red", "warning": "yellow", "info": "blue"}

# Event data (property names, contract names read from events, quoted values) reaches these
# lines; a raw control character could drive the terminal or start a forged finding line.
_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}
_CONTROL.update({0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t", 0x2028: "\\u2028", 0x2029: "\\u2029"})
_CONTROL.update(SURROGATE_ESCAPES)


# translate looks every character up in _CONTROL; most lines have nothing to escape
_NEEDS_ESCAPE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def printable(text: str) -> str:
    """``text`` with control characters written as escapes, so it stays one inert line."""
    return text.translate(_CONTROL) if _NEEDS_ESCAPE.search(text) else text


def use_color(stream: IO[str], color: bool | None) -> bool:
    if color is not None:
        return color
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class TextReporter(Reporter):
    """``file:line: subject pointer [rule] message`` per finding; summary on stderr."""

    def __init__(
        self, out: IO[str], err: IO[str], *, color: bool | None = None, tool: str = "logkit"
    ) -> None:
        super().__init__(out, err, tool=tool)
        self.color = use_color(out, color)
        self.err_color = use_color(err, color)
        self._out_console = _console(out) if self.color else None
        self._err_console = _console(err) if self.err_color else None

    def finding(self, finding: Finding) -> None:
        finding = replace(
            finding,
            file=printable(finding.file),
            pointer=printable(finding.pointer),
            rule=printable(finding.rule),
            message=printable(finding.message),
            subject=printable(finding.subject),
        )
        where = finding.file + (f":{finding.line}" if finding.line else "")
        pointer = finding.pointer or "(root)"
        severity = "" if finding.severity == "error" else f"{finding.severity}: "
        if self._out_console is None:
            subject = f" {finding.subject}" if finding.subject else ""
            self.out.write(
                f"{where}:{subject} {pointer} [{finding.rule}] {severity}{finding.message}\n"
            )
            return
        from rich.markup import escape

        style = _STYLE.get(finding.severity, "red")
        subject = f" [cyan]{escape(finding.subject)}[/]" if finding.subject else ""
        self._out_console.print(
            f"[bold]{escape(where)}[/]:{subject} [yellow]{escape(pointer)}[/] "
            f"[dim]\\[{escape(finding.rule)}][/] [{style}]{escape(severity)}[/]"
            f"{escape(finding.message)}"
        )

    def finish(self, outcome: Outcome) -> None:
        self.out.flush()
        if self._err_console is None:
            self.err.write(outcome.line + "\n")
            return
        from rich.markup import escape

        mark = "[green]✓[/]" if outcome.ok else "[red]✗[/]"
        self._err_console.print(f"{mark} {escape(outcome.line)}")


def _console(stream: IO[str]) -> Any:
    from rich.console import Console

    return Console(file=stream, highlight=False, soft_wrap=True, force_terminal=True)
