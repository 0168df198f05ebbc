"""A JSON-safe YAML loader: YAML in, only what JSON can say out.

Plain ``yaml.safe_load`` turns ``2024-01-02`` into a date, ``on`` into ``True`` and silently keeps
the last of two duplicate keys. Contracts and events must mean the same in YAML as in JSON, so
this loader keeps timestamps as strings, only ``true``/``false`` as booleans, keys as strings,
refuses duplicate keys, and refuses alias expansions big enough to be a "billion laughs" bomb.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import yaml

try:  # the C loader is several times faster; fall back quietly when libyaml is absent
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

#: Nodes an alias-expanded document may have; far above any real contract.
MAX_EXPANDED_NODES = 100_000

_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")


class YamlError(ValueError):
    """A YAML document that cannot be read as JSON data; ``line`` is 1-based or None."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


class _JsonSafeLoader(_BaseLoader):
    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        # The C parser asks for the tag of every node it composes. This is Resolver.resolve for
        # scalars without its per-call list building, and without path resolvers (this loader
        # has none).
        if kind is yaml.ScalarNode:
            if implicit[0]:
                for tag, regexp in _SCALAR_RESOLVERS.get(value[:1], _WILDCARD):
                    if regexp.match(value):
                        return tag
            return self.DEFAULT_SCALAR_TAG
        return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]


# Numbers as JSON writes them (YAML 1.2's core schema), plus YAML's spelled-out infinities and
# NaN so that they are refused rather than read as strings. YAML 1.1's base-60 (`22:22` is
# 1342), leading-zero octal (`0755`), binary and `1_000` forms stay strings.
_INT = re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$")
_FLOAT = re.compile(
    r"""^(?:[-+]?(?:(?:0|[1-9][0-9]*)(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?
                          |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""",
    re.VERBOSE,
)
_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")

# Drop the YAML 1.1 resolvers for timestamps, yes/no/on/off booleans and numbers; keep
# true/false only.
_JsonSafeLoader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:bool", *_NUMBER_TAGS)
    ]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}
for _first in "tTfF":
    _JsonSafeLoader.yaml_implicit_resolvers.setdefault(_first, []).append(
        ("tag:yaml.org,2002:bool", _BOOL)
    )
for _first in "-+0123456789.":
    # Integers first: "12" matches both patterns.
    _JsonSafeLoader.yaml_implicit_resolvers.setdefault(_first, []).extend(
        [("tag:yaml.org,2002:int", _INT), ("tag:yaml.org,2002:float", _FLOAT)]
    )


_STR_TAG = "tag:yaml.org,2002:str"
# Per first character, the implicit resolvers a plain scalar is tried against (the wildcard
# ones last), as Resolver.resolve combines them on every call.
_WILDCARD: list[tuple[str, re.Pattern[str]]] = _JsonSafeLoader.yaml_implicit_resolvers.get(None, [])
_SCALAR_RESOLVERS: dict[str, list[tuple[str, re.Pattern[str]]]] = {
    first: resolvers + _WILDCARD
    for first, resolvers in _JsonSafeLoader.yaml_implicit_resolvers.items()
    if first is not None
}


def _construct_mapping(loader: _JsonSafeLoader, node: yaml.MappingNode) -> dict[str, Any]:
    loader.flatten_mapping(node)
    result: dict[str, Any] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise YamlError(
                "a mapping key must be a plain value, not a list or mapping",
                key_node.start_mark.line + 1,
            )
        # The key as written: `200:` is the property "200", `on:` is "on", `null:` is "null".
        key = str(key_node.value)
        if key in result:
            raise YamlError(f"duplicate key {key!r}", key_node.start_mark.line + 1)
        if isinstance(value_node, yaml.ScalarNode) and value_node.tag == _STR_TAG:
            result[key] = value_node.value  # what construct_object returns, minus its overhead
        else:
            result[key] = loader.construct_object(value_node, deep=True)
    return result


_JsonSafeLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


def _construct_float(loader: _JsonSafeLoader, node: yaml.ScalarNode) -> float:
    value = float(loader.construct_yaml_float(node))
    if value != value or value in (float("inf"), float("-inf")):
        raise YamlError(
            f"{node.value!r} is not a finite number, which JSON cannot represent",
            node.start_mark.line + 1,
        )
    return value


_JsonSafeLoader.add_constructor("tag:yaml.org,2002:float", _construct_float)


def _refuse(loader: _JsonSafeLoader, node: yaml.Node) -> Any:
    # bytes, sets, dates and ordered pairs have no JSON form (and no validator takes them).
    tag = node.tag.replace("tag:yaml.org,2002:", "!!")
    raise YamlError(f"{tag} values cannot be represented as JSON", node.start_mark.line + 1)


for _tag in ("binary", "set", "timestamp", "omap", "pairs"):
    _JsonSafeLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _refuse)


def _check_expansion(node: yaml.Node) -> None:
    """Refuse documents whose aliases expand to more than MAX_EXPANDED_NODES nodes."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(n: yaml.Node) -> int:
        if id(n) in open_nodes:
            raise YamlError(
                "a recursive alias cannot be represented as JSON", n.start_mark.line + 1
            )
        if id(n) in sizes:
            return sizes[id(n)]
        open_nodes.add(id(n))
        total = 1
        if isinstance(n, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in n.value)
        elif isinstance(n, yaml.SequenceNode):
            total += sum(size(item) for item in n.value)
        if total > MAX_EXPANDED_NODES:
            raise YamlError(
                f"aliases expand to more than {MAX_EXPANDED_NODES:,} values (an alias bomb?)",
                n.start_mark.line + 1,
            )
        open_nodes.discard(id(n))
        sizes[id(n)] = total
        return total

    size(node)


def load_all(text: str | bytes) -> Iterator[Any]:
    """Yield each document of a YAML stream as JSON-compatible data."""
    for _line, value in load_all_with_lines(text):
        yield value


def load_all_with_lines(text: str | bytes) -> Iterator[tuple[int, Any]]:
    """Yield ``(first line, data)`` for each document of a YAML stream."""
    # Only an alias can expand a document, and an alias needs an anchor (`&name`) to point at:
    # a text without '&' cannot hold one (UTF-16 keeps the 0x26 byte too), so skip the walk.
    anchored = b"&" in text if isinstance(text, bytes) else "&" in text
    loader = _JsonSafeLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            if anchored:
                _check_expansion(node)
            yield node.start_mark.line + 1, loader.construct_document(node)
    except YamlError:
        raise
    except RecursionError as exc:
        raise YamlError("nesting too deep") from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        raise YamlError(problem, mark.line + 1 if mark else None) from exc
    except yaml.YAMLError as exc:
        raise YamlError(str(exc).splitlines()[0]) from exc
    finally:
        loader.dispose()


def load(text: str | bytes) -> Any:
    """Load a single-document YAML text; an empty document is None."""
    fast = _load_plain(text, None)
    if fast is not _FALLBACK:
        return fast
    docs = list(load_all(text))
    if len(docs) > 1:
        raise YamlError(f"expected one YAML document, found {len(docs)}")
    return docs[0] if docs else None


def load_with_lines(text: str | bytes) -> tuple[Any, dict[str, int]]:
    """``load(text)`` and ``pointer_lines(text)`` from one parse."""
    lines: dict[str, int] = {}
    fast = _load_plain(text, lines)
    if fast is not _FALLBACK:
        return fast, lines
    return load(text), pointer_lines(text)


def pointer_lines(text: str | bytes) -> dict[str, int]:
    """Map each JSON pointer in a single-document YAML text to its 1-based line.

    A member's line is its key's; an empty map when the text is not one YAML document.
    """
    lines: dict[str, int] = {}

    def walk(node: yaml.Node, pointer: str) -> None:
        if pointer.count("/") > 64:  # aliases may nest deeper than the text does
            return
        lines.setdefault(pointer, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                token = str(key.value).replace("~", "~0").replace("/", "~1")
                lines.setdefault(f"{pointer}/{token}", key.start_mark.line + 1)
                walk(value, f"{pointer}/{token}")
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, f"{pointer}/{index}")

    try:
        root = yaml.compose(text, Loader=_JsonSafeLoader)
    except yaml.YAMLError:
        return lines
    if root is not None:
        walk(root, "")
    return lines


# -- the fast path -----------------------------------------------------------------------------
#
# Composing nodes and then constructing values from them costs two walks and a Python object
# per node. Most registry files are plain: one document of mappings, sequences and untagged
# scalars, with no anchors, aliases, merge keys, duplicate keys or deep nesting. Those are
# built straight from the parser's events, in one pass that can also note each pointer's line.
# Anything else (and any error) makes the fast path give up, and the full loader above reads
# the text again: its results and its error messages stay the only ones there are.

_FALLBACK: Any = object()
_FAST_DEPTH = 64  # deeper documents take the full loader, which decides what is too deep


class _GiveUp(Exception):
    pass


def _load_plain(text: str | bytes, lines: dict[str, int] | None) -> Any:
    """The document of a plain single-document ``text`` (None when empty), filling ``lines``
    as ``pointer_lines`` would when given; ``_FALLBACK`` when the full loader must decide."""
    loader = _JsonSafeLoader(text)
    try:
        get: Any = loader.get_event  # events are told apart by type, not by the stubs' unions
        get()  # StreamStartEvent
        event = get()
        if type(event) is yaml.StreamEndEvent:
            return None
        if type(event) is not yaml.DocumentStartEvent:
            raise _GiveUp
        root = get()
        if lines is not None:
            lines[""] = root.start_mark.line + 1
        value = _value(get, root, "", 0, lines)
        if type(get()) is not yaml.DocumentEndEvent or type(get()) is not yaml.StreamEndEvent:
            raise _GiveUp  # a second document: the full loader words the error
        return value
    except Exception:  # the full loader raises the error again, with its own message
        return _FALLBACK
    finally:
        loader.dispose()


def _value(get: Any, event: Any, pointer: str, depth: int, lines: dict[str, int] | None) -> Any:
    kind = type(event)
    if kind is yaml.ScalarEvent:
        return _scalar(event)
    if event.anchor is not None or event.tag is not None or depth >= _FAST_DEPTH:
        raise _GiveUp
    if kind is yaml.MappingStartEvent:
        mapping: dict[str, Any] = {}
        while True:
            key = get()
            if type(key) is not yaml.ScalarEvent:
                if type(key) is yaml.MappingEndEvent:
                    return mapping
                raise _GiveUp  # a non-scalar key or an alias
            name = key.value
            if key.tag is not None or key.anchor is not None or name in mapping:
                raise _GiveUp
            if name in ("<<", "=") and key.implicit[0]:
                raise _GiveUp  # a merge key, or YAML's "value" key
            member = ""
            if lines is not None:
                member = f"{pointer}/{name.replace('~', '~0').replace('/', '~1')}"
                lines[member] = key.start_mark.line + 1  # type: ignore[union-attr]
            item = get()
            if type(item) is yaml.ScalarEvent:
                mapping[name] = _scalar(item)
            else:
                mapping[name] = _value(get, item, member, depth + 1, lines)
    if kind is yaml.SequenceStartEvent:
        sequence: list[Any] = []
        while True:
            item = get()
            kind = type(item)
            if kind is yaml.SequenceEndEvent:
                return sequence
            member = ""
            if lines is not None:
                member = f"{pointer}/{len(sequence)}"
                lines[member] = item.start_mark.line + 1
            if kind is yaml.ScalarEvent:
                sequence.append(_scalar(item))
            else:
                sequence.append(_value(get, item, member, depth + 1, lines))
    raise _GiveUp  # an alias


def _scalar(event: Any) -> Any:
    if event.tag is not None or event.anchor is not None:
        raise _GiveUp
    value: str = event.value
    if not event.implicit[0] or value[:1] in _ONLY_STR:  # quoted, a block, or text
        return value
    tag = _plain_tag(value)
    if tag == _STR_TAG:
        return value
    if tag == "tag:yaml.org,2002:int":
        return int(value)
    if tag == "tag:yaml.org,2002:float":
        number = float(value)
        if number - number != 0.0:  # infinite or NaN: refused, with the full loader's words
            raise _GiveUp
        return number
    if tag == "tag:yaml.org,2002:bool":
        return value[0] in "tT"
    if tag == "tag:yaml.org,2002:null":
        return None
    raise _GiveUp


# First characters no implicit resolver starts with: a plain scalar starting so is a string
# (most are, in a contract: type names, descriptions, formats).
_ONLY_STR = frozenset(
    () if _WILDCARD else (chr(c) for c in range(0x80) if chr(c) not in _SCALAR_RESOLVERS)
)


def _plain_tag(value: str) -> str:
    for tag, regexp in _SCALAR_RESOLVERS.get(value[:1], _WILDCARD):
        if regexp.match(value):
            return tag
    return _STR_TAG
