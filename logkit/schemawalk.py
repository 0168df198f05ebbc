"""Walking a JSON Schema: every subschema with its JSON pointer, and local ``$ref`` lookup."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

if TYPE_CHECKING:
    from logkit.registry import Registry

#: Keywords whose value is one subschema.
SINGLE = (
    "additionalProperties",
    "items",
    "contains",
    "not",
    "if",
    "then",
    "else",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
    "contentSchema",
)
#: Keywords whose value is a list of subschemas.
LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
#: Keywords whose value maps names to subschemas.
MAPS = ("properties", "patternProperties", "dependentSchemas", "$defs", "definitions")


def escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def subschemas(schema: Any, pointer: str = "") -> Iterator[tuple[str, Any]]:
    """Yield ``(pointer, subschema)`` for the schema and every schema nested in it."""
    stack = [(pointer, schema)]
    while stack:
        here, node = stack.pop()
        yield here, node
        if not isinstance(node, dict):
            continue
        children: list[tuple[str, Any]] = []
        for key in SINGLE:
            if key in node and isinstance(node[key], (dict, bool)):
                children.append((f"{here}/{key}", node[key]))
        for key in LISTS:
            if isinstance(node.get(key), list):
                children.extend(
                    (f"{here}/{key}/{i}", s)
                    for i, s in enumerate(node[key])
                    if isinstance(s, (dict, bool))
                )
        for key in MAPS:
            if isinstance(node.get(key), dict):
                children.extend(
                    (f"{here}/{key}/{escape(name)}", s)
                    for name, s in node[key].items()
                    if isinstance(s, (dict, bool))
                )
        stack.extend(reversed(children))


def resolve_pointer(document: Any, fragment: str) -> Any:
    """The value a JSON pointer fragment (``/$defs/x``) names; KeyError when absent."""
    node = document
    for raw in fragment.split("/")[1:] if fragment else []:
        token = unescape(unquote(raw))
        if isinstance(node, list):
            node = node[int(token)]
        elif isinstance(node, dict):
            node = node[token]
        else:
            raise KeyError(fragment)
    return node


def follow_ref(registry: Registry, base: Path, ref: str, root: Any) -> tuple[Path, Any, Any]:
    """Resolve a local ``$ref`` written in the file ``base``.

    Returns ``(file, document, target)``; raises KeyError or LookupError when it cannot.
    Used for display and analysis only; validation resolves references in jsonschema-rs.
    """
    target, _, fragment = ref.partition("#")
    if target:
        path = (base.parent / unquote(target)).resolve()
        document = registry.document(path)
    else:
        path, document = base, root
    return path, document, resolve_pointer(document, fragment)
