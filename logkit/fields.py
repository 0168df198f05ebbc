"""A contract -> the rows of its field table (path, type, required, constraints, description).

Follows local ``$ref``s so a field defined in ``_shared/`` shows its real type; a field's own
description wins over the referenced definition's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from logkit.registry import Contract, Registry
from logkit.schemawalk import follow_ref

CONSTRAINTS = (
    "const",
    "enum",
    "format",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "default",
)
MAX_DEPTH = 12


@dataclass(frozen=True, slots=True)
class FieldRow:
    path: str
    type: str
    required: bool
    constraints: str
    description: str


def field_rows(registry: Registry, contract: Contract) -> list[FieldRow]:
    rows: list[FieldRow] = []
    _object_rows(registry, contract.path, contract.schema, contract.schema, "", rows, 0)
    return rows


def _deref(
    registry: Registry, base: Path, root: Any, node: Any, seen: int = 0
) -> tuple[Path, Any, dict[str, Any]]:
    """Merge a node with what its ``$ref`` points at (the node's own keywords win)."""
    if not isinstance(node, dict):
        return base, root, {}
    ref = node.get("$ref")
    if not isinstance(ref, str) or seen > MAX_DEPTH:
        return base, root, node
    try:
        path, document, target = follow_ref(registry, base, ref, root)
    except Exception:  # display only: show the node as written
        return base, root, node
    path, document, resolved = _deref(registry, path, document, target, seen + 1)
    merged = {**resolved, **{k: v for k, v in node.items() if k != "$ref"}}
    return path, document, merged


def _type(node: dict[str, Any]) -> str:
    kind = node.get("type")
    if isinstance(kind, list):
        return " | ".join(str(k) for k in kind)
    if isinstance(kind, str):
        return kind
    for key in ("anyOf", "oneOf"):
        if isinstance(node.get(key), list):
            return key
    if "const" in node:
        return "const"
    if "enum" in node:
        return "enum"
    return "any"


def _constraints(node: dict[str, Any]) -> str:
    parts = []
    for key in CONSTRAINTS:
        if key in node:
            value = node[key]
            shown = (
                value
                if isinstance(value, str) and key in ("format", "pattern")
                else json.dumps(value, ensure_ascii=False)
            )
            parts.append(f"{key}={shown}")
    if node.get("additionalProperties") is False:
        parts.append("closed")
    return ", ".join(parts)


def _object_rows(
    registry: Registry,
    base: Path,
    root: Any,
    node: Any,
    prefix: str,
    rows: list[FieldRow],
    depth: int,
) -> None:
    base, root, node = _deref(registry, base, root, node)
    properties = node.get("properties")
    if not isinstance(properties, dict) or depth > MAX_DEPTH:
        return
    required = set(node.get("required", [])) if isinstance(node.get("required"), list) else set()
    for name, raw in properties.items():
        field_base, field_root, field = _deref(registry, base, root, raw)
        path = f"{prefix}{name}"
        description = field.get("description", "")
        rows.append(
            FieldRow(
                path,
                _type(field),
                name in required,
                _constraints(field),
                description if isinstance(description, str) else "",
            )
        )
        _object_rows(registry, field_base, field_root, field, f"{path}.", rows, depth + 1)
        items = field.get("items")
        if isinstance(items, dict):
            item_base, item_root, item = _deref(registry, field_base, field_root, items)
            if isinstance(item.get("properties"), dict):
                _object_rows(registry, item_base, item_root, item, f"{path}[].", rows, depth + 1)
