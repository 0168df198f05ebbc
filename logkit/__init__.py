"""logkit: contracts for the events your services log.

>>> from logkit import Registry
>>> registry = Registry.load("registry")
>>> registry.validate("search@2", {"user_id": "u1"})  # -> list of Issues
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["ContractRef", "Issue", "LogkitError", "Registry", "assert_valid"]

if TYPE_CHECKING:
    from logkit.errors import LogkitError
    from logkit.registry import ContractRef, Registry
    from logkit.results import Issue
    from logkit.testing import assert_valid

_WHERE = {
    "Registry": "logkit.registry",
    "ContractRef": "logkit.registry",
    "Issue": "logkit.results",
    "LogkitError": "logkit.errors",
    "assert_valid": "logkit.testing",
}


def __getattr__(name: str) -> Any:
    # Lazy, so that `logkit --help` does not pay for the validator's import.
    if name in _WHERE:
        from importlib import import_module

        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'logkit' has no attribute {name!r}")
