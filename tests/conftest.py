"""Shared fixtures: the repository's paths and an environment free of the user's settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_REGISTRY = REPO_ROOT / "registry"
EXAMPLES = REPO_ROOT / "examples"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No LOGKIT_* variable, no NO_COLOR: the outcome depends on the test alone."""
    for name in list(os.environ):
        if name.startswith("LOGKIT_") or name in ("NO_COLOR", "FORCE_COLOR"):
            monkeypatch.delenv(name)


@pytest.fixture
def example_registry() -> Path:
    return EXAMPLE_REGISTRY
