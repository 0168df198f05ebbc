"""``logkit lint``: the registry's health for CI."""

from __future__ import annotations

import sys
from typing import IO

from logkit.lint import lint_registry
from logkit.registry import Registry
from logkit.reporters import make_reporter
from logkit.reporters.base import Outcome
from logkit.results import plural
from logkit.settings import Settings


def lint(
    settings: Settings,
    *,
    fmt: str = "text",
    strict: bool = False,
    color: bool | None = None,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
) -> int:
    """0 when the registry is healthy; 1 on errors (and on warnings with ``strict``)."""
    registry = Registry.load(settings.registry, strict=False)
    findings = lint_registry(registry)
    reporter = make_reporter(
        fmt, out or sys.stdout, err or sys.stderr, color=color, tool="logkit lint"
    )
    for finding in findings:
        reporter.finding(finding)
    errors = sum(f.severity == "error" for f in findings)
    warnings = sum(f.severity == "warning" for f in findings)
    versions = sum(len(v) for v in registry.contracts.values())
    failed = errors > 0 or (strict and warnings > 0)
    line = (
        f"{plural(len(registry.contracts), 'contract')}, {plural(versions, 'version')} "
        f"checked: {plural(errors, 'error')}, {plural(warnings, 'warning')}"
    )
    reporter.finish(
        Outcome(
            ok=not failed,
            line=line,
            counts={
                "contracts": len(registry.contracts),
                "versions": versions,
                "errors": errors,
                "warnings": warnings,
            },
        )
    )
    return 1 if failed else 0
