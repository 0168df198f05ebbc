"""Helpers for users' own tests: ``assert_valid(registry, "search@2", event)``."""

from __future__ import annotations

from typing import Any

from logkit.registry import Registry


def assert_valid(registry: Registry, contract: str, event: Any) -> None:
    """Fail with every issue listed when ``event`` breaks ``contract`` (pytest-friendly)."""
    __tracebackhide__ = True
    issues = registry.validate(contract, event)
    if issues:
        lines = "\n".join(f"  {i.path or '(root)'} [{i.rule}] {i.message}" for i in issues)
        raise AssertionError(f"event is not valid under {contract}:\n{lines}")


def assert_invalid(registry: Registry, contract: str, event: Any, rule: str | None = None) -> None:
    """Fail unless ``event`` breaks ``contract`` (and, if given, breaks ``rule``)."""
    __tracebackhide__ = True
    issues = registry.validate(contract, event)
    if not issues:
        raise AssertionError(f"event is valid under {contract}, expected it not to be")
    if rule is not None and rule not in {i.rule for i in issues}:
        found = ", ".join(sorted({i.rule for i in issues}))
        raise AssertionError(f"expected a {rule!r} issue under {contract}, found: {found}")
