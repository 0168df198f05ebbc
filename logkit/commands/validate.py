"""``logkit validate``: event files or a stdin stream against their contracts."""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import IO

from logkit import inputs, runner
from logkit.errors import UsageError
from logkit.parse import Limits
from logkit.registry import ContractRef, Registry
from logkit.reporters import make_reporter
from logkit.reporters.base import Outcome
from logkit.settings import Settings


@dataclass
class ValidateOptions:
    paths: list[str]
    settings: Settings
    contract: str | None = None
    max_errors: int | None = None
    fmt: str = "text"
    workers: int | None = None
    color: bool | None = None
    out: IO[str] = field(default_factory=lambda: sys.stdout)
    err: IO[str] = field(default_factory=lambda: sys.stderr)


def validate(options: ValidateOptions) -> int:
    """Check every event; 0 when all are valid, 1 when any is not."""
    paths = options.paths or ([inputs.STDIN] if inputs.stdin_is_piped() else [])
    if not paths:
        raise UsageError(
            "give event files or folders, or pipe events to stdin (see `logkit validate --help`)"
        )
    if options.max_errors is not None and options.max_errors < 1:
        raise UsageError("--max-errors must be at least 1")
    registry = Registry.load(options.settings.registry)
    contract = registry.get(ContractRef.parse(options.contract)) if options.contract else None
    if contract is not None:
        registry.validator(contract)  # a broken contract fails here, once, before any input
    limits = Limits(options.settings.max_line_bytes, options.settings.max_depth)
    from logkit.validation import Checker

    checker = Checker(registry, contract, limits)
    sources = inputs.discover(paths)
    workers = options.workers or runner.auto_workers(sources)
    job = runner.Job(
        registry.root,
        str(contract.label) if contract else None,
        limits.max_line_bytes,
        limits.max_depth,
    )
    reporter = make_reporter(
        options.fmt, options.out, options.err, color=options.color, tool="logkit validate"
    )

    valid = invalid = 0
    per_contract: Counter[tuple[str, str]] = Counter()
    invalid_per_contract: Counter[tuple[str, str]] = Counter()
    stopped = False
    for _source, result in runner.results(checker, job, sources, workers):
        valid += result.valid
        per_contract.update(result.per_contract)
        for failure in result.failures:
            invalid += 1
            # Only contracts that exist are counted: unknown names and versions are data, and
            # a stream of ever new ones must not grow memory.
            if failure.reason == "invalid" and failure.version is not None and failure.contract:
                invalid_per_contract[(failure.contract, str(failure.version))] += 1
            reporter.event(failure)
            if options.max_errors is not None and invalid >= options.max_errors:
                stopped = True
                break
        if stopped:
            break

    total = valid + invalid
    files = len(sources)
    where = f"{files} file{'s' if files != 1 else ''}" if files else "no files"
    if stopped:
        line = (
            f"stopped after {invalid} invalid event{'s' if invalid != 1 else ''} "
            f"(--max-errors {options.max_errors}); {valid} valid before that, in {where}"
        )
    elif total == 0:
        line = f"no events found in {where}"
    elif invalid:
        line = f"{total} event{_s(total)} checked in {where}: {valid} valid, {invalid} invalid"
    else:
        line = f"{total} event{_s(total)} checked in {where}: all valid"
    counts = {
        "events": total,
        "valid": valid,
        "invalid": invalid,
        "files": files,
        "stopped_early": stopped,
        "per_contract": {
            f"{name}@{version}": {
                "valid": per_contract[(name, version)],
                "invalid": invalid_per_contract[(name, version)],
            }
            for name, version in sorted(set(per_contract) | set(invalid_per_contract))
        },
    }
    reporter.finish(Outcome(ok=invalid == 0, line=line, counts=counts))
    return 1 if invalid else 0


def _s(count: int) -> str:
    # Plain digits, no separators: CI scripts grep this line.
    return "" if count == 1 else "s"
