"""``logkit diff``: a readable, classified diff of two versions of a contract."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from logkit.compat import Change, PairResult, Version, check_pair
from logkit.compat.check import dereference
from logkit.compat.rules import ANNOTATIONS
from logkit.errors import UsageError
from logkit.registry import ContractRef, Registry, read_document
from logkit.settings import Settings


@dataclass
class DiffOptions:
    settings: Settings
    args: list[str]
    mode: str | None = None
    policy: str = "strict"
    fmt: str = "text"


def _versions(options: DiffOptions) -> tuple[Version, Version, str]:
    """Two versions from ``NAME A B``, ``NAME@A NAME@B`` or ``FILE_A FILE_B``; and the mode."""
    args = options.args
    if len(args) == 3:
        registry = Registry.load(options.settings.registry)
        name = args[0]
        refs = [f"{name}@{v}" for v in args[1:]]
    elif len(args) == 2 and all(Path(a).is_file() for a in args):
        paths = [Path(a) for a in args]
        sides = [Version.from_file(p, read_document(p), str(p)) for p in paths]
        mode = options.mode or _meta_mode(sides[1].schema)
        return sides[0], sides[1], mode
    elif len(args) == 2 and all("@" in a for a in args):
        registry = Registry.load(options.settings.registry)
        refs = list(args)
    else:
        raise UsageError(
            "usage: logkit diff NAME A B, logkit diff NAME@A NAME@B or logkit diff FILE_A FILE_B"
            + (
                f" ({', '.join(a for a in args if not Path(a).exists())} not found)"
                if len(args) == 2
                else ""
            )
        )
    contracts = [registry.get(ContractRef.parse(r)) for r in refs]
    mode = options.mode or contracts[1].compatibility
    old, new = (Version.from_contract(registry, c) for c in contracts)
    return old, new, mode


def _meta_mode(schema: Any) -> str:
    meta = schema.get("x-logkit") if isinstance(schema, dict) else None
    mode = meta.get("compatibility") if isinstance(meta, dict) else None
    return mode if isinstance(mode, str) else "BACKWARD"


def _pointer(path: list[Any]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def raw_changes(old: Any, new: Any, changes: list[Change]) -> list[dict[str, Any]]:
    """deepdiff's list of every edit, each classified by the rule that explains it."""
    from deepdiff import DeepDiff

    diff = DeepDiff(old, new, view="tree", verbose_level=2)
    rows = []
    for kind, items in sorted(diff.items()):
        for item in items:
            pointer = _pointer(item.path(output_format="list"))
            rows.append(
                {
                    "change": kind.replace("dictionary_item_", "")
                    .replace("iterable_item_", "")
                    .replace("values_changed", "changed")
                    .replace("type_changes", "changed"),
                    "pointer": pointer,
                    "old": None if _missing(item.t1) else item.t1,
                    "new": None if _missing(item.t2) else item.t2,
                    "rule": _classify(pointer, changes),
                }
            )
    return rows


def _missing(value: Any) -> bool:
    return type(value).__name__ == "NotPresent"


def _classify(pointer: str, changes: list[Change]) -> str:
    best = ""
    rule = ""
    for change in changes:
        for where in (change.old_pointer, change.new_pointer):
            if (pointer == where or pointer.startswith(where + "/")) and len(where) >= len(best):
                best, rule = where, change.rule
    if rule:
        return rule
    tokens = pointer.split("/")
    if any(t in ANNOTATIONS for t in tokens):
        return "documentation-changed"
    return "structure-changed"


def diff(options: DiffOptions, out: IO[str] | None = None) -> int:
    """Print the diff; always 0 unless the arguments are wrong (check-compat gates)."""
    out = out or sys.stdout
    old, new, mode = _versions(options)
    result = check_pair(old, new, mode=mode.upper(), policy=options.policy)
    rows = raw_changes(dereference(old), dereference(new), result.changes)
    if options.fmt == "json":
        from logkit.commands.compat import change_dict

        document = {
            "old": old.label,
            "new": new.label,
            "mode": result.mode,
            "compatible": result.compatible,
            "relations": {r: v.answer for r, v in result.verdicts.items()},
            "changes": [
                change_dict(result, c, old.label.partition("@")[0]) for c in result.changes
            ],
            "edits": rows,
        }
        out.write(json.dumps(document, ensure_ascii=False, indent=2, default=str) + "\n")
        return 0
    _text(result, rows, out)
    return 0


def _text(result: PairResult, rows: list[dict[str, Any]], out: IO[str]) -> None:
    from logkit.commands.compat import describe

    verdict = "compatible" if result.compatible else "NOT compatible"
    relations = ", ".join(f"{r} {v.answer}" for r, v in result.verdicts.items())
    out.write(
        f"{result.old.label} -> {result.new.label}: {verdict} under {result.mode} ({relations})\n"
    )
    if result.changes:
        out.write("\nchanges:\n")
    for change in result.changes:
        out.write(
            f"  {change.severity:<7} [{change.rule}] "
            f"{change.new_pointer or change.old_pointer or '(root)'}: "
            f"{describe(result, change)}\n"
        )
    if rows:
        out.write("\nedits:\n")
    symbol = {"added": "+", "removed": "-", "changed": "~"}
    for row in rows:
        mark = symbol.get(row["change"], "~")
        if row["change"] == "added":
            value = _short(row["new"])
        elif row["change"] == "removed":
            value = _short(row["old"])
        else:
            value = f"{_short(row['old'])} -> {_short(row['new'])}"
        out.write(f"  {mark} {row['pointer'] or '(root)'}: {value}  [{row['rule']}]\n")


def _short(value: Any, limit: int = 100) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
