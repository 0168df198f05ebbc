"""The registry's health, as findings: layout, schemas, metadata, references, examples.

Errors make ``logkit lint`` exit 1; warnings (open objects, undocumented fields, unknown
formats) only with ``--strict``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from logkit import ownschemas, yamlsafe
from logkit.errors import RegistryError
from logkit.explain import pointer as make_pointer
from logkit.registry import Contract, Registry
from logkit.results import Finding
from logkit.schemawalk import subschemas

#: Formats logkit asserts; any other name is not checked at all, so it is worth a warning.
KNOWN_FORMATS = frozenset(
    {
        "date-time",
        "date",
        "time",
        "duration",
        "email",
        "idn-email",
        "hostname",
        "idn-hostname",
        "ipv4",
        "ipv6",
        "uri",
        "uri-reference",
        "iri",
        "iri-reference",
        "uuid",
        "uri-template",
        "json-pointer",
        "relative-json-pointer",
        "regex",
    }
)


def meta_schema_problems(schema: Any) -> list[tuple[str, str]]:
    """``(pointer, message)`` for each way ``schema`` breaks the 2020-12 meta-schema."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    validator = Draft202012Validator(Draft202012Validator.META_SCHEMA)
    problems = []
    for error in validator.iter_errors(schema):
        # "is not valid under any of the given schemas" hides the useful part: descend.
        while error.context:
            error = best_match(error.context) or error
            if not error.context:
                break
        problems.append((make_pointer(error.absolute_path), error.message))
    return problems


def lint_registry(registry: Registry) -> list[Finding]:
    """Every finding for the whole registry, in file order."""
    findings = [
        Finding(_rel(registry, p.path), p.line, p.pointer, p.rule, p.message, p.severity)
        for p in registry.problems
    ]
    for path in registry.shared_files:
        findings.extend(_lint_shared(registry, path))
    for contract in registry:
        findings.extend(lint_contract(registry, contract))
    return findings


def _rel(registry: Registry, path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class _Lines:
    """Lines of JSON pointers in one file, computed only when a finding needs one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._map: dict[str, int] | None = None

    def __call__(self, pointer: str) -> int | None:
        if self._map is None:
            try:
                self._map = yamlsafe.pointer_lines(self.path.read_bytes())
            except OSError:
                self._map = {}
        while pointer not in self._map and pointer:
            pointer = pointer.rsplit("/", 1)[0]
        return self._map.get(pointer)


def _lint_shared(registry: Registry, path: Path) -> list[Finding]:
    where = _rel(registry, path)
    try:
        document = registry.document(path)
    except RegistryError as exc:
        return [Finding(where, exc.line, "", "parse", exc.detail or str(exc))]
    lines = _Lines(path)
    return [
        Finding(where, lines(ptr), ptr, "meta-schema", msg)
        for ptr, msg in meta_schema_problems(document)
    ]


def lint_contract(registry: Registry, contract: Contract) -> list[Finding]:
    """Findings for one contract version."""
    where = _rel(registry, contract.path)
    lines = _Lines(contract.path)
    label = contract.label
    findings: list[Finding] = []

    def add(pointer: str, rule: str, message: str, severity: str = "error") -> None:
        findings.append(Finding(where, lines(pointer), pointer, rule, message, severity, label))

    meta = meta_schema_problems(contract.schema)
    for pointer, message in meta:
        add(pointer, "meta-schema", message)
    findings.extend(_metadata(contract, add))
    if meta:
        return findings  # a schema that is not a schema cannot be compiled or walked reliably
    try:
        validator = registry.validator(contract)
    except RegistryError as exc:
        add("", "ref", str(exc).split(": ", 1)[-1])
        return findings
    examples = contract.schema.get("examples", [])
    if isinstance(examples, list):
        for index, example in enumerate(examples):
            if validator.is_valid(example):
                continue
            for issue in registry.validate(contract, example):
                add(
                    f"/examples/{index}",
                    "example",
                    f"example {index} is not valid: {issue.path or '(root)'}: {issue.message}",
                )
    _walk_fields(contract.schema, add)
    return findings


def _metadata(contract: Contract, add: Any) -> list[Finding]:
    from logkit.explain import explain
    from logkit.registry import compile_schema

    own = compile_schema(
        ownschemas.load("contract"),
        base_uri="logkit:contract",
        retrieve=_no_retrieval,
        where="schemas/contract.schema.json",
    )
    if not own.is_valid(contract.schema):
        for issue in explain(own, contract.schema):
            pointer = issue.path
            if issue.rule == "required":
                message = f"contract metadata: {issue.message}"
            else:
                message = f"contract metadata: {pointer}: {issue.message}"
            add(pointer, "metadata", message)
    return []


def _no_retrieval(uri: str) -> Any:
    raise LookupError(uri)


def _walk_fields(schema: Any, add: Any) -> None:
    for pointer, node in subschemas(schema):
        if not isinstance(node, dict) or pointer.startswith("/examples"):
            continue
        is_object = (
            node.get("type") == "object"
            or (isinstance(node.get("type"), list) and "object" in node["type"])
            or "properties" in node
        )
        if (
            is_object
            and node.get("additionalProperties") is not False
            and node.get("unevaluatedProperties") is not False
            and "$ref" not in node
        ):
            add(
                pointer,
                "open-object",
                "object allows undeclared properties; add `additionalProperties: false` so "
                "typos are caught and compatibility checks stay exact",
                "warning",
            )
        fmt = node.get("format")
        if isinstance(fmt, str) and fmt not in KNOWN_FORMATS:
            add(
                f"{pointer}/format",
                "unknown-format",
                f"format {fmt!r} is not one logkit knows, so it is not checked",
                "warning",
            )
        properties = node.get("properties")
        if isinstance(properties, dict):
            for name, sub in properties.items():
                if isinstance(sub, dict) and not isinstance(sub.get("description"), str):
                    add(
                        f"{pointer}/properties/{name}",
                        "missing-description",
                        f"field {name!r} has no description",
                        "warning",
                    )
