"""Results -> text | json | github | junit. The only modules besides the CLI that write output."""

from __future__ import annotations

from typing import IO

from logkit.reporters.base import Reporter

FORMATS = ("text", "json", "github", "junit")


def make_reporter(
    fmt: str, out: IO[str], err: IO[str], *, color: bool | None = None, tool: str = "logkit"
) -> Reporter:
    """The reporter for a ``--format`` value."""
    if fmt == "json":
        from logkit.reporters.json import JsonReporter

        return JsonReporter(out, err, tool=tool)
    if fmt == "github":
        from logkit.reporters.github import GithubReporter

        return GithubReporter(out, err, tool=tool)
    if fmt == "junit":
        from logkit.reporters.junit import JunitReporter

        return JunitReporter(out, err, tool=tool)
    from logkit.reporters.text import TextReporter

    return TextReporter(out, err, color=color, tool=tool)


__all__ = ["FORMATS", "Reporter", "make_reporter"]
