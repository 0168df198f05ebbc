"""The pre-commit files are valid for pre-commit itself and offer the hooks the README names."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
PRE_COMMIT = Path(sys.executable).parent / "pre-commit"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PRE_COMMIT), *args], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )


def test_hook_manifest_is_valid() -> None:
    proc = _run("validate-manifest", ".pre-commit-hooks.yaml")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_project_config_is_valid() -> None:
    proc = _run("validate-config", ".pre-commit-config.yaml")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_published_hooks_are_the_documented_ones() -> None:
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    ids = {hook["id"] for hook in hooks}
    assert ids == {"logkit-lint", "logkit-check-compat", "logkit-validate"}
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for hook_id in ids:
        assert f"id: {hook_id}" in readme
    entries = {hook["id"]: hook["entry"] for hook in hooks}
    assert entries["logkit-check-compat"] == "logkit check-compat"


def test_project_runs_its_own_quality_hooks() -> None:
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    ids = [hook["id"] for repo in config["repos"] for hook in repo["hooks"]]
    for expected in ("ruff", "ruff-format", "mypy", "logkit-lint", "logkit-check-compat"):
        assert expected in ids
    assert all(repo["repo"] == "local" for repo in config["repos"])
