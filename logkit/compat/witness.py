"""Candidate events near the edges of one or more schemas, for finding verified witnesses.

jsonschema-rs decides containment but does not produce instances. Here we build a bounded set
of candidate values from the structure of the schemas involved (their consts, enums, examples,
bounds, lengths, patterns, formats, properties, items), including small mutations of valid
values. Nothing here is trusted: a candidate becomes a witness only after the real validators
of both versions agree that one accepts it and the other rejects it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from logkit.compat import regexgen
from logkit.schemawalk import resolve_pointer

#: A schema together with the document its local ``$ref``s resolve against.
Hint = tuple[Any, Any]

FORMAT_SAMPLES: dict[str, list[str]] = {
    "date-time": ["2026-12-03T17:54:29.412Z", "2026-12-03T18:54:29+01:00"],
    "date": ["2026-12-03"],
    "time": ["17:54:29Z"],
    "duration": ["P1D"],
    "email": ["user@example.com"],
    "idn-email": ["user@example.com"],
    "hostname": ["example.com"],
    "idn-hostname": ["example.com"],
    "ipv4": ["192.0.2.1"],
    "ipv6": ["2001:db8::1"],
    "uri": ["https://example.com/a"],
    "uri-reference": ["/a"],
    "iri": ["https://example.com/a"],
    "iri-reference": ["/a"],
    "uri-template": ["https://example.com/{id}"],
    "uuid": ["9723a714-014d-42d2-9772-db832eb6de0e"],
    "json-pointer": ["/a/b"],
    "relative-json-pointer": ["0/a"],
    "regex": ["^a+$"],
}
TYPE_ORDER = ("object", "array", "string", "integer", "number", "boolean", "null")
MAX_DEPTH = 6
PER_NODE = 24


def _types(schema: dict[str, Any]) -> list[str]:
    declared = schema.get("type")
    if isinstance(declared, str):
        return [declared]
    if isinstance(declared, list):
        return [t for t in declared if isinstance(t, str)]
    inferred = []
    if any(
        k in schema
        for k in (
            "properties",
            "required",
            "additionalProperties",
            "patternProperties",
            "propertyNames",
            "minProperties",
            "maxProperties",
            "dependentRequired",
            "dependentSchemas",
        )
    ):
        inferred.append("object")
    if any(
        k in schema
        for k in ("items", "prefixItems", "contains", "minItems", "maxItems", "uniqueItems")
    ):
        inferred.append("array")
    if any(k in schema for k in ("minLength", "maxLength", "pattern", "format")):
        inferred.append("string")
    if any(
        k in schema
        for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
    ):
        inferred.append("number")
    return inferred


def _key(value: Any) -> str:
    # repr keeps True apart from 1 and 1 apart from 1.0, and is several times faster than
    # json.dumps; two equal objects built in another key order only cost one more validation
    return repr(value)


def _unique(values: Iterable[Any], limit: int) -> list[Any]:
    seen: set[str] = set()
    out = []
    for value in values:
        key = _key(value)
        if key not in seen:
            seen.add(key)
            out.append(value)
            if len(out) >= limit:
                break
    return out


@dataclass
class Generator:
    """Builds candidates; ``valid_for`` picks values a subschema accepts, with a cache."""

    per_node: int = PER_NODE  # candidates kept per spot: small first, larger if none found
    _compiled: dict[str, Any] = field(default_factory=dict)
    _memo: dict[tuple[int, ...], list[Any]] = field(default_factory=dict)
    _busy: set[tuple[int, ...]] = field(default_factory=set)
    _keep: list[Any] = field(default_factory=list)

    # -- hints ------------------------------------------------------------------------------

    def expand(self, hints: Iterable[Hint], depth: int = 0) -> list[tuple[dict[str, Any], Any]]:
        """Flatten references and combinators: every schema object that speaks at this spot."""
        out: list[tuple[dict[str, Any], Any]] = []
        for schema, root in hints:
            if not isinstance(schema, dict) or depth > MAX_DEPTH:
                continue
            out.append((schema, root))
            ref = schema.get("$ref")
            if isinstance(ref, str) and ref.startswith("#"):
                try:
                    target = resolve_pointer(root, ref[1:])
                except (KeyError, IndexError, ValueError):
                    target = None
                if target is not None:
                    out.extend(self.expand([(target, root)], depth + 1))
            for key in ("allOf", "anyOf", "oneOf"):
                branches = schema.get(key)
                if isinstance(branches, list):
                    out.extend(self.expand([(b, root) for b in branches], depth + 1))
            for key in ("if", "then", "else", "not"):
                if key in schema:
                    out.extend(self.expand([(schema[key], root)], depth + 1))
        return out

    # -- values -----------------------------------------------------------------------------

    def candidates(self, hints: list[Hint], depth: int = 0) -> list[Any]:
        """Interesting values for the spot the ``hints`` describe, likeliest-valid first."""
        key = tuple(id(schema) for schema, _ in hints)
        cached = self._memo.get(key)
        if cached is not None:
            return cached
        if depth > MAX_DEPTH or key in self._busy:  # a recursive reference: stop here
            return [None, 0, "", {}, []]
        self._busy.add(key)
        try:
            values = self._candidates(hints, depth)
        finally:
            self._busy.discard(key)
        self._memo[key] = values
        self._keep.append(hints)  # ids in the memo key must not be reused while it lives
        return values

    def _candidates(self, hints: list[Hint], depth: int) -> list[Any]:
        flat = self.expand(hints)
        values: list[Any] = []
        types: list[str] = []
        for schema, _ in flat:
            if "const" in schema:
                values.append(schema["const"])
            if isinstance(schema.get("enum"), list):
                values.extend(schema["enum"])
            for key in ("examples",):
                if isinstance(schema.get(key), list):
                    values.extend(schema[key][:3])
            if "default" in schema:
                values.append(schema["default"])
            types.extend(t for t in _types(schema) if t not in types)
        if not types:  # anything goes: one value of each type, no deeper structure
            values.extend([None, True, 0, 1.5, "x", {}, []])
            return _unique(values, self.per_node * 4)
        # round-robin over the types, so the first few candidates cover every type at this
        # spot (an object type's long list must not crowd out a `null` alternative)
        per_type = [self._typed(kind, flat, depth) for kind in types]
        for i in range(max((len(v) for v in per_type), default=0)):
            values.extend(v[i] for v in per_type if i < len(v))
        # every other JSON type once: a type change is found by these
        values.extend([None, True, 0, 1.5, "x", {}, []])
        return _unique(values, self.per_node * 4)

    def _typed(self, kind: str, flat: list[tuple[dict[str, Any], Any]], depth: int) -> list[Any]:
        if kind == "null":
            return [None]
        if kind == "boolean":
            return [True, False]
        if kind in ("integer", "number"):
            return _numbers(kind, [s for s, _ in flat])
        if kind == "string":
            return _strings([s for s, _ in flat])
        if kind == "array":
            return self._arrays(flat, depth)
        if kind == "object":
            return self._objects(flat, depth)
        return []

    def first_valid(self, hints: list[Hint], depth: int) -> Any:
        """A value the first hint accepts, when one is found; else the first candidate."""
        values = self.candidates(hints, depth + 1)
        schema, root = hints[0]
        for value in values:
            if self.accepts(schema, root, value):
                return value
        return values[0] if values else None

    def accepts(self, schema: Any, root: Any, value: Any) -> bool:
        """Does ``schema`` (a subschema of ``root``) accept ``value``? True when unsure."""
        import jsonschema_rs

        if isinstance(schema, bool):
            return schema
        if schema is root:
            standalone = schema
        else:
            standalone = dict(schema)
            if isinstance(root, dict):
                for key in ("$defs", "definitions"):
                    if key in root and key not in standalone:
                        standalone[key] = root[key]
        key = _key(standalone)
        if key not in self._compiled:
            try:
                self._compiled[key] = jsonschema_rs.validator_for(standalone, validate_formats=True)
            except Exception:  # an unresolvable fragment: cannot tell, so do not filter
                self._compiled[key] = None
        validator = self._compiled[key]
        if validator is None:
            return True
        try:
            return bool(validator.is_valid(value))
        except Exception:
            return True

    def _objects(self, flat: list[tuple[dict[str, Any], Any]], depth: int) -> list[Any]:
        props: dict[str, list[Hint]] = {}
        required: list[list[str]] = []
        extras: list[str] = []
        for schema, root in flat:
            if isinstance(schema.get("properties"), dict):
                for name, sub in schema["properties"].items():
                    props.setdefault(name, []).append((sub, root))
            if isinstance(schema.get("required"), list):
                required.append([r for r in schema["required"] if isinstance(r, str)])
            if isinstance(schema.get("patternProperties"), dict):
                for pattern, sub in schema["patternProperties"].items():
                    for name in regexgen.samples(pattern)[:2]:
                        props.setdefault(name, []).append((sub, root))
            deps = schema.get("dependentRequired")
            if isinstance(deps, dict):
                for name, needs in deps.items():
                    props.setdefault(name, [])
                    for need in needs if isinstance(needs, list) else []:
                        props.setdefault(need, [])
            names = schema.get("propertyNames")
            if isinstance(names, dict):
                keys = self.candidates([(names, root)], depth + 1)
                extras.extend(k for k in keys if isinstance(k, str) and k not in extras)
        extras.extend(["extra_field", "X"])
        for name in list(props):
            props[name] = props[name] or [(True, None)]
        filled = {name: self.first_valid(hints, depth) for name, hints in props.items()}
        sizes: set[int] = set()
        for schema, _ in flat:
            for key in ("minProperties", "maxProperties"):
                bound = schema.get(key)
                if isinstance(bound, int) and not isinstance(bound, bool) and bound < 100:
                    sizes.update(b for b in (bound - 1, bound, bound + 1) if b >= 0)
        bases: list[dict[str, Any]] = []
        for names in [*required, sorted({n for r in required for n in r}), []]:
            bases.append({n: filled.get(n, "x") for n in names})
        bases.append(dict(filled))
        out: list[Any] = list(bases)
        base = bases[0]
        full = bases[-1]
        for name, hints in props.items():
            for value in self.candidates(hints, depth + 1)[: self.per_node]:
                out.append({**base, name: value})
                out.append({**full, name: value})
        for name in [*props, *extras]:
            for start in (base, full):
                if name in start:
                    out.append({k: v for k, v in start.items() if k != name})
        extra_hints = [
            (schema["additionalProperties"], root)
            for schema, root in flat
            if isinstance(schema.get("additionalProperties"), (dict, bool))
        ]
        extra_values: list[Any] = ["x", 0, None, {}]
        if extra_hints:
            extra_values += self.candidates(extra_hints, depth + 1)[: self.per_node]
        for size in sorted(sizes):
            for start in (base, full):
                padded = dict(start)
                names = [n for n in [*props, *extras] if n not in padded]
                names += [f"k{i}" for i in range(size)]
                for name in names[: max(0, size - len(padded))]:
                    padded[name] = filled.get(name, extra_values[0])
                out.append(padded)
                out.append(dict(list(start.items())[:size]))
        for name in extras:
            for value in _unique(extra_values, self.per_node):
                out.append({**base, name: value})
                out.append({**full, name: value})
        return out

    def _arrays(self, flat: list[tuple[dict[str, Any], Any]], depth: int) -> list[Any]:
        item_hints: list[Hint] = []
        prefix: list[list[Hint]] = []
        lengths = {0, 1, 2}
        for schema, root in flat:
            if isinstance(schema.get("items"), (dict, bool)):
                item_hints.append((schema["items"], root))
            if isinstance(schema.get("contains"), (dict, bool)):
                item_hints.append((schema["contains"], root))
            if isinstance(schema.get("prefixItems"), list):
                for i, sub in enumerate(schema["prefixItems"]):
                    while len(prefix) <= i:
                        prefix.append([])
                    prefix[i].append((sub, root))
            for key in ("minItems", "maxItems", "minContains", "maxContains"):
                bound = schema.get(key)
                if isinstance(bound, int) and not isinstance(bound, bool) and bound < 200:
                    lengths.update(b for b in (bound - 1, bound, bound + 1) if b >= 0)
        item_hints = item_hints or [(True, None)]
        items = self.candidates(item_hints, depth + 1)[: self.per_node]
        first = self.first_valid(item_hints, depth)
        head = [self.first_valid(h, depth) for h in prefix]
        out: list[Any] = []
        for n in sorted(lengths):
            body = head[:n] + [first] * max(0, n - len(head))
            out.append(body)
        for value in items:
            out.append([*head, value])
            out.append([value])
            out.append([*head, first, value])
        for i, hints in enumerate(prefix):
            for value in self.candidates(hints, depth + 1)[: self.per_node]:
                out.append([*head[:i], value, *head[i + 1 :]])
        out.append([*head, first, first])
        return out


def _numbers(kind: str, schemas: list[dict[str, Any]]) -> list[Any]:
    points: list[Any] = [0, 1, -1]
    steps: list[Any] = []
    for schema in schemas:
        for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            bound = schema.get(key)
            if isinstance(bound, (int, float)) and not isinstance(bound, bool):
                points.extend([bound, bound - 1, bound + 1])
                if kind == "number":
                    points.extend([bound - 0.5, bound + 0.5])
                if isinstance(bound, float) and bound != int(bound):
                    points.extend([int(bound), int(bound) + 1])
        step = schema.get("multipleOf")
        if isinstance(step, (int, float)) and not isinstance(step, bool) and step > 0:
            steps.append(step)
    for step in steps:
        points.extend([step, step * 2, step * 3, step * 6, step / 2, step + 1])
        for p in list(points[:12]):
            if isinstance(p, (int, float)):
                points.append(round(p / step) * step)
    if kind == "number":
        points.extend([0.5, 1.5, -0.5])
    else:
        points = [int(p) if isinstance(p, float) and p == int(p) else p for p in points]
    points.extend([2**31, 2**53 + 1, -(2**31)])
    return points


def _strings(schemas: list[dict[str, Any]]) -> list[Any]:
    out: list[Any] = []
    lengths = {0, 1, 3}
    patterns = sorted({s["pattern"] for s in schemas if isinstance(s.get("pattern"), str)})
    if len(patterns) > 1:
        from logkit.compat.regexset import relation

        for i, a in enumerate(patterns):
            for b in patterns[i + 1 :]:
                found = relation(a, b)
                out.extend(text for text in found or () if text is not None)
    for schema in schemas:
        fmt = schema.get("format")
        if isinstance(fmt, str):
            out.extend(FORMAT_SAMPLES.get(fmt, []))
        pattern = schema.get("pattern")
        if isinstance(pattern, str):
            out.extend(regexgen.samples(pattern))
        for key in ("minLength", "maxLength"):
            bound = schema.get(key)
            if isinstance(bound, int) and not isinstance(bound, bool) and bound < 10_000:
                lengths.update(b for b in (bound - 1, bound, bound + 1) if b >= 0)
    fills = []
    for n in sorted(lengths):
        fills.append("a" * n)
    # strings that satisfy a format/pattern, stretched and shrunk to the length bounds
    for text in list(out):
        if isinstance(text, str):
            for n in sorted(lengths):
                if n > len(text):
                    fills.append(text + "a" * (n - len(text)))
    out.extend(fills)
    out.extend(["A", "0", "a b", "é"])
    return out


def mutations(gen: Generator, example: Any, hints: list[Hint], per_spot: int = 8) -> Iterator[Any]:
    """Copies of ``example`` with one value replaced, or one missing property added, by a
    candidate for its spot (the subschemas ``hints`` give there, followed along
    ``properties``, ``additionalProperties``, ``prefixItems`` and ``items``).

    A valid event, changed in one place, is the likeliest witness of a change deep inside a
    large object: candidates built from the schemas alone rarely satisfy every other part."""
    stack: list[tuple[tuple[str | int, ...], Any, list[Hint]]] = [((), example, hints)]
    while stack:
        path, value, spot = stack.pop()
        if path:
            for candidate in gen.candidates(spot)[:per_spot]:
                if candidate != value or type(candidate) is not type(value):
                    yield _replaced(example, path, candidate)
        flat = gen.expand(spot)
        if isinstance(value, dict):
            names = {name for s, _ in flat for name in s.get("properties") or {}}
            for name in sorted(names | set(value)):
                sub = [
                    (s["properties"][name], root)
                    for s, root in flat
                    if isinstance(s.get("properties"), dict) and name in s["properties"]
                ]
                if not sub:
                    sub = [(s["additionalProperties"], r) for s, r in flat
                           if isinstance(s.get("additionalProperties"), dict)]  # fmt: skip
                if not sub:
                    continue
                if name in value:
                    stack.append(((*path, name), value[name], sub))
                else:  # an optional property the example leaves out
                    for candidate in gen.candidates(sub)[:per_spot]:
                        yield _replaced(example, (*path, name), candidate)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                sub = []
                for s, root in flat:
                    prefix = s.get("prefixItems")
                    if isinstance(prefix, list) and index < len(prefix):
                        sub.append((prefix[index], root))
                    elif isinstance(s.get("items"), dict):
                        sub.append((s["items"], root))
                if sub:
                    stack.append(((*path, index), item, sub))


def _replaced(document: Any, path: tuple[str | int, ...], value: Any) -> Any:
    """A copy of ``document`` with ``value`` at ``path``, sharing what it does not change."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(document, dict):
        copy = dict(document)
        copy[head] = _replaced(document.get(head), rest, value)
        return copy
    copy_list = list(document)
    copy_list[head] = _replaced(document[head], rest, value)  # type: ignore[index]
    return copy_list


def witnesses(candidates: Iterable[Any], accepts: Any, rejects: Any) -> Iterator[Any]:
    """The candidates ``accepts`` says yes to and ``rejects`` says no to, smallest first."""
    found = [c for c in _unique(candidates, 100_000) if accepts(c) and not rejects(c)]
    yield from sorted(found, key=lambda c: len(_key(c)))


__all__ = ["Generator", "Hint", "mutations", "witnesses"]
