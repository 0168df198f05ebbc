"""Published versions are immutable: compare the registry with itself at a git ref (no printing)."""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from logkit.compat.check import Version, Witness, check_pair
from logkit.errors import UsageError
from logkit.registry import Registry


@dataclass
class PublishedFinding:
    """One problem with a version that already existed at the ref."""

    rule: str
    contract: str
    version: int
    file: str
    message: str
    severity: str = "error"
    witness: Witness | None = None


def _git(cwd: Path, *args: str) -> bytes:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=True)
    except FileNotFoundError as exc:
        raise UsageError("--against needs git, which is not installed") from exc
    except subprocess.CalledProcessError as exc:
        message = exc.stderr.decode(errors="replace").strip().splitlines()
        raise UsageError(f"git {' '.join(args)}: {message[-1] if message else 'failed'}") from exc
    return done.stdout


def registry_at(registry: Registry, ref: str, into: Path) -> Registry | None:
    """The registry folder as it was at ``ref``, written under ``into``; None if absent then."""
    top = Path(_git(registry.root, "rev-parse", "--show-toplevel").decode().strip())
    relative = registry.root.resolve().relative_to(top.resolve()).as_posix()
    _git(top, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    names = _git(top, "ls-tree", "-r", "--name-only", ref, "--", relative).decode().splitlines()
    if not names:
        return None
    for name in names:
        target = into / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(_git(top, "show", f"{ref}:{name}"))
    return Registry.load(into / relative, strict=False)


def _same(a: Any, b: Any) -> bool:
    return bool(a == b)


def compare_published(registry: Registry, ref: str) -> list[PublishedFinding]:
    """Every published version must still exist, unchanged in what it accepts."""
    findings: list[PublishedFinding] = []
    with tempfile.TemporaryDirectory(prefix="logkit-against-") as tmp:
        before = registry_at(registry, ref, Path(tmp))
        if before is None:
            return findings
        for name, versions in before.contracts.items():
            current = registry.contracts.get(name, {})
            for number, old in versions.items():
                file = str(registry.root / name / old.path.name)
                if number not in current:
                    moved = [v for v, c in current.items() if _same(c.schema, old.schema)]
                    if moved:
                        findings.append(
                            PublishedFinding(
                                "published-version-renumbered",
                                name,
                                number,
                                file,
                                f"{name}@{number} (published at {ref}) is now version {moved[0]}; "
                                "published version numbers never change",
                            )
                        )
                    else:
                        findings.append(
                            PublishedFinding(
                                "published-version-deleted",
                                name,
                                number,
                                file,
                                f"{name}@{number} exists at {ref} and was deleted; published "
                                "versions are never removed (mark the contract deprecated)",
                            )
                        )
                    continue
                new = current[number]
                if _same(new.schema, old.schema):
                    continue
                result = check_pair(
                    Version.from_contract(before, old),
                    Version.from_contract(registry, new),
                    mode="FULL",
                )
                if result.compatible:
                    findings.append(
                        PublishedFinding(
                            "published-version-documentation-changed",
                            name,
                            number,
                            str(new.path),
                            f"{name}@{number} was edited since {ref}; it accepts exactly the same "
                            "events",
                            severity="info",
                        )
                    )
                    continue
                witness = next((v.witness for v in result.verdicts.values() if v.witness), None)
                how = "; ".join(f"{r} {v.answer}" for r, v in result.verdicts.items())
                findings.append(
                    PublishedFinding(
                        "published-version-changed",
                        name,
                        number,
                        str(new.path),
                        f"{name}@{number} was published at {ref} and now accepts different events "
                        f"({how}); publish the change as version {max(current) + 1} instead",
                        witness=witness,
                    )
                )
    return findings
