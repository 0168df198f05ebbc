"""``logkit check-compat``: every contract version against the versions before it, per its mode."""

from __future__ import annotations

import io
import json
import pickle
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Any

from logkit.compat import (
    MODES,
    POLICIES,
    Change,
    PairResult,
    Version,
    check_pair,
    plan,
    required_relations,
)
from logkit.errors import ConfigError, RegistryError, UsageError
from logkit.forking import split_work
from logkit.registry import Contract, Registry, did_you_mean
from logkit.reporters import make_reporter
from logkit.reporters.base import Outcome
from logkit.results import Finding, plural
from logkit.settings import Settings

#: Parsed registry files kept between runs (pre-commit runs the hook again and again).
CACHE = Path(".logkit/cache")


@dataclass(frozen=True)
class Ignore:
    """An accepted break from the settings: which contract, version, rule and pointer, and why."""

    contract: str
    reason: str
    version: int | None = None
    rule: str | None = None
    pointer: str | None = None

    def matches(self, result: PairResult, change: Change, name: str) -> bool:
        new_version = int(result.new.label.rpartition("@")[2] or 0)
        return (
            self.contract == name
            and (self.version is None or self.version == new_version)
            and (self.rule is None or self.rule == change.rule)
            and (self.pointer is None or self.pointer in (change.new_pointer, change.old_pointer))
        )


@dataclass
class CompatOptions:
    """What ``logkit check-compat`` was asked to do, once parsed."""

    settings: Settings
    files: list[str] = field(default_factory=list)
    mode: str | None = None
    policy: str | None = None
    fmt: str = "text"
    color: bool | None = None
    against: str | None = None  # a git ref: published versions must be unchanged since


def _setting(settings: Settings, key: str) -> Any:
    return settings.compat.get(key) if isinstance(settings.compat, dict) else None


def resolve_policy(options: CompatOptions) -> str:
    policy = options.policy or _setting(options.settings, "policy") or "strict"
    if policy not in POLICIES:
        raise UsageError(
            f"unknown policy {policy!r}{did_you_mean(str(policy), POLICIES)}; "
            f"choose one of: {', '.join(POLICIES)}"
        )
    return str(policy)


def _check_mode(mode: Any, origin: str) -> str:
    if not isinstance(mode, str) or mode.upper() not in MODES:
        raise UsageError(
            f"{origin}: unknown compatibility mode {mode!r}"
            f"{did_you_mean(str(mode).upper(), MODES)}; choose one of: {', '.join(MODES)}"
        )
    return mode.upper()


def mode_for(options: CompatOptions, contract: Contract) -> str:
    """``--mode``, then the settings (per contract, then global), then the contract's own."""
    if options.mode:
        return _check_mode(options.mode, "--mode")
    per_contract = _setting(options.settings, "contracts")
    if isinstance(per_contract, dict) and contract.name in per_contract:
        return _check_mode(per_contract[contract.name], f"compat.contracts.{contract.name}")
    if _setting(options.settings, "mode"):
        return _check_mode(_setting(options.settings, "mode"), "compat.mode")
    return _check_mode(contract.compatibility, f"{contract.path}: x-logkit.compatibility")


def load_ignores(settings: Settings) -> list[Ignore]:
    raw = _setting(settings, "ignore") or []
    if not isinstance(raw, list):
        raise ConfigError("compat.ignore must be a list of entries")
    ignores = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict) or not entry.get("contract") or not entry.get("reason"):
            raise ConfigError(
                f"compat.ignore[{i}]: each entry needs a contract and a reason "
                "(and optionally version, rule, pointer)"
            )
        version = entry.get("version")
        ignores.append(
            Ignore(
                str(entry["contract"]),
                str(entry["reason"]),
                int(version) if version is not None else None,
                entry.get("rule"),
                entry.get("pointer"),
            )
        )
    return ignores


def contracts_for_files(registry: Registry, files: list[str]) -> list[str]:
    """The contracts the given files belong to; a shared file means every contract using it."""
    names: set[str] = set()
    for text in files:
        path = Path(text).resolve()
        if not path.is_relative_to(registry.root):
            continue
        parts = path.relative_to(registry.root).parts
        if not parts:
            continue
        if parts[0] == "_shared":
            for contract in registry:
                if path.name in json.dumps(contract.schema):
                    names.add(contract.name)
        elif parts[0] in registry.contracts:
            names.add(parts[0])
    return sorted(names)


def folders_of(registry: Path, files: list[str]) -> set[str] | None:
    """The contract folders ``files`` sit in, which is all ``contracts_for_files`` needs
    loaded; None (load everything) without files or when one is shared, as any contract may
    use it."""
    if not files:
        return None
    root = registry.resolve()
    folders = set()
    for text in files:
        path = Path(text).resolve()
        if not path.is_relative_to(root) or path == root:
            continue
        top = path.relative_to(root).parts[0]
        if top == "_shared":
            return None
        folders.add(top)
    return folders


def strip_docs(value: Any) -> Any:
    """The schema without its annotations: what a reader needs to see of a changed value."""
    from logkit.compat.rules import ANNOTATIONS

    if isinstance(value, dict):
        return {k: strip_docs(v) for k, v in value.items() if k not in ANNOTATIONS}
    if isinstance(value, list):
        return [strip_docs(v) for v in value]
    return value


def _short(value: Any, limit: int = 120) -> str:
    text = json.dumps(strip_docs(value), ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _relative(path: str, cwd: Path | None = None, *, resolved: bool = False) -> str:
    """``path`` relative to the working folder when inside it; ``resolved`` says it already is
    (a contract's path), which saves resolving it again."""
    try:
        real = Path(path) if resolved else Path(path).resolve()
        return str(real.relative_to(cwd or Path.cwd()))
    except ValueError:
        return path


def line_of(
    file: str,
    pointer: str,
    cache: dict[str, dict[str, int]] | None = None,
    registry: Registry | None = None,
) -> int | None:
    """The line of ``pointer`` (or of its nearest ancestor present) in a YAML/JSON file.

    ``cache`` keeps each file's line map for the rest of a run: one parse per file, however
    many findings it has; ``registry`` reads it through the registry's on-disk cache.
    """
    from logkit import yamlsafe

    cache = {} if cache is None else cache
    if file not in cache:
        try:
            if registry is not None:
                cache[file] = registry.pointer_lines(Path(file))
            else:
                cache[file] = yamlsafe.pointer_lines(Path(file).read_bytes())
        except (OSError, ValueError, RegistryError):
            cache[file] = {}
    lines = cache[file]
    while True:
        if pointer in lines:
            return lines[pointer]
        if not pointer:
            return None
        pointer = pointer.rpartition("/")[0]


def describe(result: PairResult, change: Change) -> str:
    """One line: what changed, where in both versions, the witness, and the fix."""
    parts = [change.message + "."]
    if change.old_pointer or change.new_pointer:
        parts.append(
            f"{result.old.label} {change.old_pointer or '(root)'} = {_short(change.old)}; "
            f"{result.new.label} {change.new_pointer or '(root)'} = {_short(change.new)}."
        )
    if change.witness is not None:
        witness = change.witness
        why = change.witness_reason or (witness.errors[0][2] if witness.errors else "rejected")
        parts.append(
            f"Witness {_short(witness.event)} is valid under {witness.accepted_by} and "
            f"rejected by {witness.rejected_by} ({why})."
        )
    if change.severity == "error" and change.info.fix:
        parts.append(f"Fix: {change.info.fix}.")
    proved = [r for r in sorted(change.breaks) if result.verdicts[r].ok]
    if change.severity == "info" and proved:
        parts.append(f"No event is affected: {' and '.join(proved)} holds (proved).")
    return " ".join(parts)


def change_dict(result: PairResult, change: Change, name: str) -> dict[str, Any]:
    return {
        "contract": name,
        "old_version": result.old.label,
        "new_version": result.new.label,
        "mode": result.mode,
        "rule": change.rule,
        "severity": change.severity,
        "old_pointer": change.old_pointer,
        "new_pointer": change.new_pointer,
        "old": change.old,
        "new": change.new,
        "message": change.message,
        "fix": change.info.fix if change.severity == "error" else None,
        "witness": change.witness.as_dict() if change.witness is not None else None,
    }


#: Contract versions from which a second process pays for forking it (~20 ms and the results'
#: trip back through a pipe, against ~1 ms of work per version).
PARALLEL_VERSIONS = 200


def run_pairs(
    registry: Registry, names: list[str], options: CompatOptions
) -> list[tuple[str, PairResult]]:
    """Each contract's version pairs, checked; over two processes for a large registry, with
    the same results (contracts are checked independently)."""

    def work(part: Sequence[str]) -> list[tuple[str, PairResult]]:
        return _run_pairs(registry, part, options)

    return split_work(
        work,
        names,
        [len(registry.versions(name)) for name in names],
        minimum=PARALLEL_VERSIONS,
        encode=_encode_results,
        decode=partial(_decode_results, registry),
    )


class _ResultPickler(pickle.Pickler):
    # A Version holds its registry's callables: it travels as its label, and the other side
    # rebuilds it from its own copy of the registry.
    def persistent_id(self, obj: Any) -> Any:
        return obj.label if isinstance(obj, Version) else None


class _ResultUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, registry: Registry) -> None:
        super().__init__(io.BytesIO(data))
        self.registry = registry

    def persistent_load(self, pid: Any) -> Any:
        return Version.from_contract(self.registry, self.registry.get(str(pid)))


def _encode_results(results: list[tuple[str, PairResult]]) -> bytes:
    out = io.BytesIO()
    _ResultPickler(out, protocol=pickle.HIGHEST_PROTOCOL).dump(results)
    return out.getvalue()


def _decode_results(registry: Registry, data: bytes) -> list[tuple[str, PairResult]]:
    results: list[tuple[str, PairResult]] = _ResultUnpickler(data, registry).load()
    return results


def _run_pairs(
    registry: Registry, names: Sequence[str], options: CompatOptions
) -> list[tuple[str, PairResult]]:
    policy = resolve_policy(options)
    results = []
    cache: dict[Any, Any] = {}  # each version is prepared once, though it sits in two pairs
    for name in names:
        versions = registry.versions(name)
        latest = registry.get(f"{name}@{versions[-1]}")
        pairs = plan(versions, mode_for(options, latest))
        for old_v, new_v in pairs:
            new = registry.get(f"{name}@{new_v}")
            old = registry.get(f"{name}@{old_v}")
            mode = mode_for(options, new)
            result = check_pair(
                Version.from_contract(registry, old),
                Version.from_contract(registry, new),
                mode=mode,
                policy=policy,
                cache=cache,
                relations=required_relations(mode),
            )
            results.append((name, result))
    return results


def _published(
    registry: Registry, ref: str, ignores: list[Ignore]
) -> list[tuple[Finding, dict[str, Any]]]:
    """``--against REF``: each published version still there, accepting the same events."""
    from logkit.compat.published import compare_published
    from logkit.compat.rules import RULES

    out = []
    for item in compare_published(registry, ref):
        severity, message = item.severity, item.message + "."
        for ignore in ignores:
            if (
                ignore.contract == item.contract
                and ignore.version in (None, item.version)
                and ignore.rule in (None, item.rule)
            ):
                severity, message = "info", f"{message} Ignored: {ignore.reason}."
                break
        if item.witness is not None:
            message += (
                f" Witness {_short(item.witness.event)} is valid under "
                f"{item.witness.accepted_by} at one side only."
            )
        if severity == "error":
            message += f" Fix: {RULES[item.rule].fix}."
        label = f"{item.contract}@{item.version}"
        finding = Finding(
            _relative(item.file), None, "", item.rule, message, severity, f"{label} (against {ref})"
        )
        extra = {
            "contract": item.contract,
            "old_version": label,
            "new_version": label,
            "mode": "IMMUTABLE",
            "rule": item.rule,
            "severity": severity,
            "old_pointer": "",
            "new_pointer": "",
            "old": None,
            "new": None,
            "message": message,
            "fix": RULES[item.rule].fix if severity == "error" else None,
            "witness": item.witness.as_dict() if item.witness is not None else None,
        }
        out.append((finding, extra))
    return out


def check_compat(
    options: CompatOptions, out: IO[str] | None = None, err: IO[str] | None = None
) -> int:
    """0 when every checked pair is compatible under its mode; 1 on a breaking change."""
    out, err = out or sys.stdout, err or sys.stderr
    # --against compares every contract with the ref: it needs the whole registry
    only = None if options.against else folders_of(options.settings.registry, options.files)
    registry = Registry.load(
        options.settings.registry,
        cache=CACHE,
        only=only,
        lines=options.fmt != "json",
        parallel=True,
    )
    ignores = load_ignores(options.settings)
    if options.files:
        names = contracts_for_files(registry, options.files)
    else:
        names = registry.names()
    results = run_pairs(registry, names, options)
    records: list[tuple[str, PairResult, Change]] = []
    for name, result in results:
        for change in result.changes:
            for ignore in ignores:
                if change.severity != "info" and ignore.matches(result, change, name):
                    change.severity = "info"
                    change.detail = (change.detail + "; " if change.detail else "") + (
                        f"ignored: {ignore.reason}"
                    )
                    break
            records.append((name, result, change))
    published = _published(registry, options.against, ignores) if options.against else []
    errors = sum(c.severity == "error" for _, _, c in records)
    errors += sum(f.severity == "error" for f, _ in published)
    warnings = sum(c.severity == "warning" for _, _, c in records)
    breaking_pairs = sum(any(c.severity == "error" for c in r.changes) for _, r in results)
    line = (
        f"{plural(len(names), 'contract')}, {plural(len(results), 'version pair')} checked: "
        f"{plural(breaking_pairs, 'breaking pair')}, {plural(errors, 'error')}, "
        f"{plural(warnings, 'warning')}"
    )
    counts = {
        "contracts": len(names),
        "pairs": len(results),
        "breaking_pairs": breaking_pairs,
        "errors": errors,
        "warnings": warnings,
    }
    ok = errors == 0
    if options.fmt == "json":
        document = {
            "tool": "logkit check-compat",
            "ok": ok,
            "summary": counts,
            "pairs": [
                {
                    "contract": name,
                    "old_version": r.old.label,
                    "new_version": r.new.label,
                    "mode": r.mode,
                    "policy": r.policy,
                    "compatible": r.compatible,
                    "relations": {
                        rel: {
                            "answer": v.answer,
                            "how": v.how,
                            "witness": v.witness.as_dict() if v.witness else None,
                        }
                        for rel, v in r.verdicts.items()
                    },
                }
                for name, r in results
            ],
            "results": [change_dict(r, c, name) for name, r, c in records]
            + [extra for _, extra in published],
        }
        out.write(json.dumps(document, ensure_ascii=False, indent=2) + "\n")
        err.write(line + "\n")
        registry.save_cache()
        return 0 if ok else 1
    reporter = make_reporter(options.fmt, out, err, color=options.color, tool="logkit check-compat")
    # A file has many findings: its line map and its relative path are worked out once.
    lines: dict[str, dict[str, int]] = {}
    cwd = Path.cwd()
    relative = {
        file: _relative(file, cwd, resolved=True) for file in {r.new.file for _, r, _ in records}
    }
    for _name, result, change in records:
        if (
            options.fmt == "text"
            and change.severity == "info"
            and change.rule == "documentation-changed"
        ):
            continue
        pointer = change.new_pointer or change.old_pointer
        reporter.finding(
            Finding(
                relative[result.new.file],
                (
                    line_of(result.new.file, change.new_pointer, lines, registry)
                    if change.new_pointer
                    else None
                ),
                pointer,
                change.rule,
                describe(result, change),
                change.severity,
                f"{result.old.label} -> {result.new.label} ({result.mode})",
            )
        )
    for finding, _ in published:
        reporter.finding(finding)
    reporter.finish(Outcome(ok=ok, line=line, counts=counts))
    registry.save_cache()  # after the reports, which read line maps through it
    return 0 if ok else 1
