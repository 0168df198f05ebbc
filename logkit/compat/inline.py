"""Inline every ``$ref`` of a schema, across files, keeping recursion as local references.

``jsonschema_rs.dereference`` leaves a recursive reference as written, so one that came from a
shared file (``#/$defs/node`` inside ``_shared/tree.yaml``) dangles once inlined into a contract.
Here each reference is resolved against the URI of the document it was written in; a reference
back into a definition being inlined becomes ``{"$ref": "#/$defs/<key>"}`` and that definition is
stored once under the result's own ``$defs``. The result is one self-contained document, which
the structural diff and the witness generator can read without a registry.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin

from logkit.schemawalk import LISTS, MAPS, SINGLE, resolve_pointer

_VALUES = frozenset({"enum", "const", "examples", "default"})
_DROP = frozenset({"$defs", "definitions", "$id", "$anchor", "$dynamicAnchor", "$schema"})
_SUB_MAPS = frozenset(k for k in MAPS if k not in ("$defs", "definitions"))
# Sets, not schemawalk's tuples: every key of every node is looked up in them.
_SINGLE, _LISTS = frozenset(SINGLE), frozenset(LISTS)


def _target(base: str, ref: str) -> tuple[str, str, str]:
    """``(target URI, document URI, fragment)`` of ``ref`` written in ``base``.

    Every version repeats the same few references, and URL parsing was most of inlining's time,
    so results are cached. A reference with a path resolves against the base's folder, never its
    last segment (RFC 3986 5.2.3), so for a plain ``file:`` base the folder is the key, and the
    versions side by side in a contract's folder share the entry.
    """
    if ref[:1] not in ("", "#", "?") and base.startswith("file:///") and not _QUERY.search(base):
        base = base[: base.rindex("/") + 1]
    return _joined(base, ref)


_QUERY = re.compile(r"[?#;]")  # parts of a base URI that its last segment would carry


@lru_cache(maxsize=4096)
def _joined(base: str, ref: str) -> tuple[str, str, str]:
    target = urljoin(base, ref)
    document, fragment = urldefrag(target)
    return target, document, fragment


class CannotInline(Exception):
    """A reference this module does not follow ($dynamicRef, anchors, a missing target)."""


def inline(schema: Any, base_uri: str, retrieve: Callable[[str], Any]) -> Any:
    """``schema`` with every reference inlined; recursion kept under ``$defs``."""
    documents: dict[str, Any] = {urldefrag(base_uri)[0]: schema}
    defs: dict[str, Any] = {}
    keys: dict[str, str] = {}

    def document(uri: str) -> Any:
        if uri not in documents:
            documents[uri] = retrieve(uri)
        return documents[uri]

    def walk(node: Any, base: str, stack: tuple[str, ...], depth: int) -> Any:
        if depth > 200:
            raise CannotInline("nesting too deep")
        if not isinstance(node, dict):
            return node
        if "$dynamicRef" in node or "$recursiveRef" in node:
            raise CannotInline("$dynamicRef")
        if isinstance(node.get("$id"), str):
            base = urljoin(base, node["$id"])
            documents.setdefault(urldefrag(base)[0], node)
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in _DROP or key == "$ref":
                continue
            if key in _VALUES:
                out[key] = value
            elif key in _SINGLE and isinstance(value, (dict, bool)):
                out[key] = walk(value, base, stack, depth + 1)
            elif key in _LISTS and isinstance(value, list):
                out[key] = [walk(v, base, stack, depth + 1) for v in value]
            elif key in _SUB_MAPS and isinstance(value, dict):
                out[key] = {k: walk(v, base, stack, depth + 1) for k, v in value.items()}
            else:
                out[key] = value
        ref = node.get("$ref")
        if not isinstance(ref, str):
            return out
        target_uri, doc_uri, fragment = _target(base, ref)
        if fragment and not fragment.startswith("/"):
            raise CannotInline(f"anchor reference {ref!r}")
        try:
            target = resolve_pointer(document(doc_uri), unquote(fragment))
        except (KeyError, IndexError, ValueError) as exc:
            raise CannotInline(f"{ref!r} does not resolve") from exc
        if target_uri in stack:
            key = keys.setdefault(target_uri, f"ref{len(keys)}")
            resolved: Any = {"$ref": f"#/$defs/{key}"}
        else:
            resolved = walk(target, doc_uri, (*stack, target_uri), depth + 1)
            if target_uri in keys:
                defs[keys[target_uri]] = resolved
        if not out:
            return resolved
        # siblings that are only annotations merge; any other keyword may interact with the
        # target's (properties with additionalProperties, ...), so the two stay apart in allOf
        if isinstance(resolved, dict) and set(out) <= _ANNOTATION_KEYS:
            return {**resolved, **out}
        return {**out, "allOf": [*out.get("allOf", []), resolved]}

    result = walk(schema, urldefrag(base_uri)[0], (), 0)
    if defs:
        if not isinstance(result, dict):
            result = {"allOf": [result]}
        result = {**result, "$defs": defs}
    if isinstance(schema, dict) and "$schema" in schema and isinstance(result, dict):
        result = {"$schema": schema["$schema"], **result}
    return result


_ANNOTATION_KEYS = frozenset(
    {"title", "description", "examples", "default", "deprecated", "readOnly", "writeOnly",
     "$comment"}
)  # fmt: skip

__all__ = ["CannotInline", "inline"]
