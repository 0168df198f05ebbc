"""The structural diff: two dereferenced schemas -> keyword-level changes with stable rule ids.

This says *where* and *why*; it does not decide compatibility (``logkit.compat.check`` does,
exactly, with jsonschema-rs and verified witnesses). Each rule names which relation a change can
break on its own: ``B`` (BACKWARD: the new version rejects some event the old one accepted),
``F`` (FORWARD: the new version accepts some event the old one rejected), both, or neither.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from logkit.schemawalk import escape, resolve_pointer

B = frozenset({"BACKWARD"})
F = frozenset({"FORWARD"})
BF = B | F
NONE: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Rule:
    """A kind of change: its id, what it can break, why, and how to avoid breaking."""

    id: str
    breaks: frozenset[str]
    explains: str
    fix: str
    keywords: tuple[str, ...] = ()  # validator keywords whose errors this rule explains


_NARROW_FIX = (
    "keep the old constraint, or publish the change as a new contract "
    "(or set the mode to NONE for this contract)"
)
_WIDEN_FIX = (
    "consumers still on the old version reject such events: upgrade them first, or "
    "use mode BACKWARD if that is the intent"
)

RULES: dict[str, Rule] = {}


def _rule(
    rid: str, breaks: frozenset[str], explains: str, fix: str = "", keywords: tuple[str, ...] = ()
) -> None:
    if not fix:
        fix = (
            _NARROW_FIX
            if breaks == B
            else _WIDEN_FIX
            if breaks == F
            else (
                "publish a new contract, or accept the change with an `ignore` entry and a reason"
            )
        )
    RULES[rid] = Rule(rid, breaks, explains, fix, keywords)


_rule(
    "schema-rejects-everything",
    B,
    "the new schema here is `false`: no value is accepted",
    keywords=("false",),
)
_rule("schema-accepts-everything", F, "the new schema here is `true`: any value is accepted")
_rule(
    "type-narrowed",
    B,
    "the new version accepts fewer JSON types here",
    "keep the removed types in `type`",
    ("type",),
)
_rule("type-widened", F, "the new version accepts more JSON types here", keywords=("type",))
_rule(
    "type-changed",
    BF,
    "the accepted JSON types changed: some added, some removed",
    "keep the old types and add new ones only if consumers are ready",
    ("type",),
)
_rule("const-added", B, "the field is now pinned to one value", keywords=("const",))
_rule("const-removed", F, "the field is no longer pinned to one value", keywords=("const",))
_rule(
    "const-changed",
    BF,
    "the one allowed value changed",
    "keep the old value (use `enum` with both values)",
    ("const",),
)
_rule(
    "enum-added",
    B,
    "the field is now limited to a list of values",
    "add every value already in use to the enum, or drop the enum",
    ("enum",),
)
_rule("enum-removed", F, "the field is no longer limited to a list of values", keywords=("enum",))
_rule(
    "enum-value-removed",
    B,
    "a value the old version allowed is no longer in the enum",
    "keep the removed value in the enum (mark it deprecated in the description)",
    ("enum",),
)
_rule("enum-value-added", F, "the enum allows a value the old version rejects", keywords=("enum",))
for _kw, _kebab, _is_min in (
    ("minimum", "minimum", True),
    ("maximum", "maximum", False),
    ("exclusiveMinimum", "exclusive-minimum", True),
    ("exclusiveMaximum", "exclusive-maximum", False),
    ("minLength", "min-length", True),
    ("maxLength", "max-length", False),
    ("minItems", "min-items", True),
    ("maxItems", "max-items", False),
    ("minProperties", "min-properties", True),
    ("maxProperties", "max-properties", False),
    ("minContains", "min-contains", True),
    ("maxContains", "max-contains", False),
):
    _tighter = "increased" if _is_min else "decreased"
    _looser = "decreased" if _is_min else "increased"
    _rule(f"{_kebab}-added", B, f"a `{_kw}` bound was added", f"drop the new `{_kw}`", (_kw,))
    _rule(f"{_kebab}-removed", F, f"the `{_kw}` bound was removed", keywords=(_kw,))
    _rule(
        f"{_kebab}-{_tighter}",
        B,
        f"the `{_kw}` bound is tighter than before",
        f"keep the old `{_kw}` (widen the bound back)",
        (_kw,),
    )
    _rule(f"{_kebab}-{_looser}", F, f"the `{_kw}` bound is looser than before", keywords=(_kw,))
_rule(
    "multiple-of-added",
    B,
    "values must now be a multiple of `multipleOf`",
    keywords=("multipleOf",),
)
_rule(
    "multiple-of-removed",
    F,
    "values no longer need to be a multiple of `multipleOf`",
    keywords=("multipleOf",),
)
_rule(
    "multiple-of-narrowed",
    B,
    "the new `multipleOf` is a multiple of the old one: fewer values pass",
    keywords=("multipleOf",),
)
_rule(
    "multiple-of-widened",
    F,
    "the new `multipleOf` divides the old one: more values pass",
    keywords=("multipleOf",),
)
_rule(
    "multiple-of-changed", BF, "`multipleOf` changed to an unrelated step", keywords=("multipleOf",)
)
_rule(
    "pattern-added", B, "strings must now match a `pattern`", "drop the new `pattern`", ("pattern",)
)
_rule(
    "pattern-removed", F, "strings no longer need to match the old `pattern`", keywords=("pattern",)
)
_rule(
    "pattern-changed",
    BF,
    "the `pattern` changed; the two regexes are compared exactly when both are regular, and "
    "the strings only one of them matches are shown",
    "keep the old pattern, or make the new one accept everything the old one did",
    ("pattern",),
)
_rule("format-added", B, "strings must now have a `format`", keywords=("format",))
_rule("format-removed", F, "strings no longer need the old `format`", keywords=("format",))
_rule("format-changed", BF, "the string `format` changed", keywords=("format",))
_rule(
    "property-added-to-closed-object",
    F,
    "a new property is allowed in an object that the old version closed "
    "(`additionalProperties: false`)",
    keywords=("additionalProperties", "false"),
)
_rule(
    "property-added-to-open-object",
    B,
    "a new property constrains a name the old open object accepted with any value",
    "under policy lenient this is allowed (producers are assumed not to send undeclared "
    "properties); otherwise give it the widest schema already in use",
    ("additionalProperties",),
)
_rule(
    "property-removed-from-closed-object",
    B,
    "a property the old version accepted is no longer allowed in a closed object",
    "keep the property (optional, marked deprecated in its description)",
    ("additionalProperties", "false", "unevaluatedProperties"),
)
_rule(
    "property-removed",
    F,
    "a property was removed from an open object: any value is now accepted under its name",
    "under policy lenient this is allowed; otherwise keep the property, marked deprecated",
)
_rule(
    "required-added",
    B,
    "a property is now required; events without it become invalid",
    "make the field optional (leave it out of `required`), or give producers a new contract",
    ("required",),
)
_rule("required-removed", F, "a property is no longer required", keywords=("required",))
_rule(
    "additional-properties-closed",
    B,
    "the object is now closed (`additionalProperties: false`): properties it used to accept "
    "with any value are rejected",
    "leave the object open",
    ("additionalProperties", "false"),
)
_rule(
    "additional-properties-opened",
    F,
    "the object is no longer closed: undeclared properties are accepted",
    keywords=("additionalProperties",),
)
_rule(
    "additional-properties-added",
    B,
    "undeclared properties now need to match a schema",
    keywords=("additionalProperties",),
)
_rule(
    "additional-properties-removed",
    F,
    "undeclared properties no longer need to match a schema",
    keywords=("additionalProperties",),
)
_rule(
    "unevaluated-properties-added",
    B,
    "`unevaluatedProperties` now constrains the object",
    keywords=("unevaluatedProperties",),
)
_rule(
    "unevaluated-properties-removed",
    F,
    "`unevaluatedProperties` was removed",
    keywords=("unevaluatedProperties",),
)
_rule(
    "pattern-property-added",
    B,
    "properties whose names match a new pattern are constrained",
    keywords=("patternProperties",),
)
_rule(
    "pattern-property-removed",
    F,
    "a `patternProperties` entry was removed",
    keywords=("patternProperties",),
)
_rule(
    "property-names-added",
    B,
    "property names must now match `propertyNames`",
    keywords=("propertyNames",),
)
_rule(
    "property-names-removed",
    F,
    "property names are no longer constrained",
    keywords=("propertyNames",),
)
_rule(
    "dependent-required-added",
    B,
    "a property now requires other properties to be present",
    keywords=("dependentRequired",),
)
_rule(
    "dependent-required-removed",
    F,
    "a `dependentRequired` entry was relaxed",
    keywords=("dependentRequired",),
)
_rule(
    "dependent-schema-added",
    B,
    "a property's presence now imposes a schema",
    keywords=("dependentSchemas",),
)
_rule(
    "dependent-schema-removed",
    F,
    "a `dependentSchemas` entry was removed",
    keywords=("dependentSchemas",),
)
_rule("items-added", B, "array items must now match `items`", keywords=("items",))
_rule("items-removed", F, "array items are no longer constrained by `items`", keywords=("items",))
_rule(
    "prefix-item-added",
    B,
    "a position of the array is now constrained by `prefixItems`",
    keywords=("prefixItems",),
)
_rule("prefix-item-removed", F, "a `prefixItems` position was removed", keywords=("prefixItems",))
_rule("contains-added", B, "arrays must now contain a matching item", keywords=("contains",))
_rule("contains-removed", F, "arrays no longer need a matching item", keywords=("contains",))
_rule("unique-items-added", B, "array items must now be distinct", keywords=("uniqueItems",))
_rule("unique-items-removed", F, "array items may now repeat", keywords=("uniqueItems",))
_rule("all-of-branch-added", B, "a new `allOf` branch adds a constraint", keywords=("allOf",))
_rule("all-of-branch-removed", F, "an `allOf` branch was removed", keywords=("allOf",))
_rule(
    "any-of-branch-added", F, "a new `anyOf` alternative accepts more values", keywords=("anyOf",)
)
_rule(
    "any-of-branch-removed",
    B,
    "an `anyOf` alternative was removed",
    "keep the removed alternative",
    ("anyOf",),
)
_rule(
    "one-of-changed",
    BF,
    "the `oneOf` alternatives changed (exactly one must match, so "
    "adding or removing one can accept or reject values)",
    keywords=("oneOf",),
)
_rule("not-added", B, "a `not` now rejects some values", keywords=("not",))
_rule("not-removed", F, "a `not` was removed", keywords=("not",))
_rule("not-changed", BF, "the schema under `not` changed", keywords=("not",))
_rule(
    "conditional-added",
    B,
    "an `if`/`then`/`else` now constrains values",
    keywords=("if", "then", "else"),
)
_rule(
    "conditional-removed", F, "an `if`/`then`/`else` was removed", keywords=("if", "then", "else")
)
_rule("conditional-changed", BF, "the `if` condition changed", keywords=("if", "then", "else"))
_rule("reference-changed", BF, "a `$ref` points at a different definition", keywords=("$ref",))
_rule(
    "published-version-changed",
    BF,
    "a version that exists at the `--against` ref now accepts different events",
    "revert the edit and publish the change as a new version",
)
_rule(
    "published-version-deleted",
    B,
    "a version that exists at the `--against` ref was deleted",
    "restore the file; retire a contract by marking it `status: deprecated`",
)
_rule(
    "published-version-renumbered",
    B,
    "a version that exists at the `--against` ref now has another number",
    "restore the original number",
)
_rule(
    "published-version-documentation-changed",
    NONE,
    "a published version was edited, but accepts exactly the same events (documentation only)",
)
_rule(
    "keyword-changed",
    BF,
    "a keyword that logkit does not compare structurally changed "
    "(unevaluatedItems, $dynamicRef, ...); the verdict still comes from the exact check",
)
_rule(
    "documentation-changed",
    NONE,
    "only annotations changed (title, description, examples, default, ...); no event is affected",
    "",
)
_rule("backward-incompatible", B, "the new version rejects some events the old one accepts")
_rule("forward-incompatible", F, "the new version accepts some events the old one rejects")
_rule(
    "undecided",
    BF,
    "the relation could not be decided exactly and no counterexample was "
    "found; it counts as breaking until accepted with an `ignore` entry",
    "check the change by hand, then accept it with an `ignore` entry and a reason",
)

ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "examples",
        "default",
        "deprecated",
        "readOnly",
        "writeOnly",
        "$comment",
        "x-logkit",
        "$schema",
        "$id",
        "$anchor",
        "$defs",
        "definitions",
        "contentMediaType",
        "contentEncoding",
        "contentSchema",
        "$vocabulary",
        "$dynamicAnchor",
    }
)
BOUNDS = {
    "minimum": True,
    "exclusiveMinimum": True,
    "minLength": True,
    "minItems": True,
    "minProperties": True,
    "minContains": True,
    "maximum": False,
    "exclusiveMaximum": False,
    "maxLength": False,
    "maxItems": False,
    "maxProperties": False,
    "maxContains": False,
}
STRUCTURE = frozenset({"$defs", "definitions", "$schema", "$id", "$anchor", "$dynamicAnchor"})
HANDLED = frozenset(
    {
        "type",
        "const",
        "enum",
        "multipleOf",
        "pattern",
        "format",
        "properties",
        "required",
        "additionalProperties",
        "unevaluatedProperties",
        "patternProperties",
        "dependentSchemas",
        "propertyNames",
        "dependentRequired",
        "items",
        "prefixItems",
        "contains",
        "uniqueItems",
        "allOf",
        "anyOf",
        "oneOf",
        "not",
        "if",
        "then",
        "else",
        "$ref",
        *BOUNDS,
    }
)
ALL_TYPES = frozenset({"null", "boolean", "object", "array", "number", "string", "integer"})


def kebab(keyword: str) -> str:
    return "".join("-" + c.lower() if c.isupper() else c for c in keyword)


@dataclass
class Change:
    """One keyword-level change between two versions of a schema."""

    rule: str
    old_pointer: str
    new_pointer: str
    old: Any = None
    new: Any = None
    detail: str = ""
    severity: str = "info"
    witness: Any = field(default=None)
    witness_direction: str = ""  # BACKWARD or FORWARD: which relation the witness breaks
    has_witness: bool = False
    witness_reason: str = ""  # the rejecting validator's message that this change explains
    breaks_here: frozenset[str] | None = None  # set when the context changes what it breaks

    @property
    def info(self) -> Rule:
        return RULES[self.rule]

    @property
    def breaks(self) -> frozenset[str]:
        """What this change can break in its context (the rule's default, or both)."""
        return self.info.breaks if self.breaks_here is None else self.breaks_here

    @property
    def message(self) -> str:
        text = self.info.explains
        return f"{text} ({self.detail})" if self.detail else text


def _types(schema: dict[str, Any]) -> frozenset[str] | None:
    declared = schema.get("type")
    if declared is None:
        return None
    names = [declared] if isinstance(declared, str) else list(declared)
    found = set(names)
    if "number" in found:
        found.add("integer")
    return frozenset(found)


def _num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass
class Differ:
    """Walks two schemas in step; ``changes`` collects what differs."""

    old_root: Any
    new_root: Any
    changes: list[Change] = field(default_factory=list)
    _seen: set[tuple[str, str]] = field(default_factory=set)
    #: > 0 while inside a keyword whose subschemas are not monotone (oneOf, contains with
    #: maxContains, unevaluatedProperties): any change there may break both ways.
    _mixed: int = 0
    truncated: bool = False

    def add(
        self,
        rule: str,
        op: str,
        np: str,
        old: Any = None,
        new: Any = None,
        detail: str = "",
        *,
        both: bool = False,
        breaks: frozenset[str] | None = None,
    ) -> None:
        change = Change(rule, op or "", np or "", old, new, detail)
        if breaks is not None:
            change.breaks_here = breaks
        if both or self._mixed:
            change.breaks_here = BF
        self.changes.append(change)

    def mixed(self, old: Any, new: Any, op: str, np: str, depth: int) -> None:
        self._mixed += 1
        try:
            self.walk(old, new, op, np, depth + 1)
        finally:
            self._mixed -= 1

    def walk(self, old: Any, new: Any, op: str = "", np: str = "", depth: int = 0) -> None:
        if depth > 40:
            self.truncated = True  # the diff is incomplete: no structural proof from it
            return
        if (op, np) in self._seen:
            return
        self._seen.add((op, np))
        if old == new:
            return
        if new is False and old is not False:
            self.add("schema-rejects-everything", op, np, old, new)
            return
        if new is True or new == {}:
            if not (old is True or old == {}):
                self.add("schema-accepts-everything", op, np, old, new)
            return
        if old is True or old == {}:
            old = {}
        if old is False:
            self.add(
                "schema-accepts-everything" if new is True else "type-widened",
                op,
                np,
                old,
                new,
                "the old schema accepted nothing here",
            )
            return
        if not isinstance(old, dict) or not isinstance(new, dict):
            return
        ra, rb = old.get("$ref"), new.get("$ref")
        if (isinstance(ra, str) and ra.startswith("#")) or (
            isinstance(rb, str) and rb.startswith("#")
        ):
            # the same definitions seen again in a non-monotone context must be diffed again
            key = (f"$ref:{ra}:{bool(self._mixed)}", f"$ref:{rb}")
            if key in self._seen:
                return
            self._seen.add(key)
        old = self._deref(old, self.old_root)
        new = self._deref(new, self.new_root)
        self._ref(old, new, op, np)
        self._type(old, new, op, np)
        self._values(old, new, op, np)
        for keyword, is_min in BOUNDS.items():
            self._bound(keyword, is_min, old, new, op, np)
        self._multiple(old, new, op, np)
        self._string(old, new, op, np)
        self._object(old, new, op, np, depth)
        self._array(old, new, op, np, depth)
        self._logic(old, new, op, np, depth)
        for key in sorted(set(old) | set(new)):
            if (
                key not in HANDLED
                and key not in ANNOTATIONS
                and not key.startswith("x-")
                and old.get(key) != new.get(key)
            ):
                self.add(
                    "keyword-changed",
                    op + "/" + key,
                    np + "/" + key,
                    old.get(key),
                    new.get(key),
                    key,
                )
        if not any(c for c in self.changes if c.old_pointer.startswith(op)):
            changed = sorted(
                k
                for k in set(old) | set(new)
                if k in ANNOTATIONS and k not in STRUCTURE and old.get(k) != new.get(k)
            )
            if changed and depth == 0:
                self.add("documentation-changed", op, np, None, None, ", ".join(changed))

    def _deref(self, schema: dict[str, Any], root: Any) -> dict[str, Any]:
        """Inline a local (recursive) ``$ref`` that dereferencing left in place, once."""
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#"):
            try:
                target = resolve_pointer(root, ref[1:])
            except (KeyError, IndexError, ValueError):
                return schema
            if isinstance(target, dict):
                merged = {k: v for k, v in schema.items() if k != "$ref"}
                return {**target, **merged}
        return schema

    def _ref(self, old: dict[str, Any], new: dict[str, Any], op: str, np: str) -> None:
        a, b = old.get("$ref"), new.get("$ref")
        if (
            a != b
            and isinstance(a, str)
            and isinstance(b, str)
            and not a.startswith("#")
            and not b.startswith("#")
        ):
            self.add("reference-changed", op + "/$ref", np + "/$ref", a, b)

    def _type(self, old: dict[str, Any], new: dict[str, Any], op: str, np: str) -> None:
        a, b = _types(old), _types(new)
        if a == b:
            return
        a_all = a if a is not None else ALL_TYPES
        b_all = b if b is not None else ALL_TYPES
        if a_all == b_all:
            return
        if b_all < a_all:
            rule = "type-narrowed"
        elif a_all < b_all:
            rule = "type-widened"
        else:
            rule = "type-changed"
        self.add(rule, op + "/type", np + "/type", old.get("type"), new.get("type"))

    def _values(self, old: dict[str, Any], new: dict[str, Any], op: str, np: str) -> None:
        if "const" in old or "const" in new:
            if "const" not in old:
                self.add("const-added", op, np + "/const", None, new["const"])
            elif "const" not in new:
                self.add("const-removed", op + "/const", np, old["const"], None)
            elif old["const"] != new["const"]:
                self.add("const-changed", op + "/const", np + "/const", old["const"], new["const"])
        a, b = old.get("enum"), new.get("enum")
        if a is None and b is None:
            return
        if a is None:
            self.add("enum-added", op, np + "/enum", None, b)
        elif b is None:
            self.add("enum-removed", op + "/enum", np, a, None)
        elif isinstance(a, list) and isinstance(b, list):
            removed = [v for v in a if v not in b]
            added = [v for v in b if v not in a]
            for value in removed:
                self.add(
                    "enum-value-removed",
                    op + "/enum",
                    np + "/enum",
                    value,
                    None,
                    f"{value!r} removed",
                )
            for value in added:
                self.add(
                    "enum-value-added", op + "/enum", np + "/enum", None, value, f"{value!r} added"
                )

    def _bound(
        self, keyword: str, is_min: bool, old: dict[str, Any], new: dict[str, Any], op: str, np: str
    ) -> None:
        a, b = old.get(keyword), new.get(keyword)
        if a == b:
            return
        name = kebab(keyword)
        if a is None:
            self.add(f"{name}-added", op, np + "/" + keyword, None, b)
        elif b is None:
            self.add(f"{name}-removed", op + "/" + keyword, np, a, None)
        elif _num(a) and _num(b):
            rule = f"{name}-increased" if b > a else f"{name}-decreased"
            self.add(rule, op + "/" + keyword, np + "/" + keyword, a, b, f"{a} -> {b}")

    def _multiple(self, old: dict[str, Any], new: dict[str, Any], op: str, np: str) -> None:
        a, b = old.get("multipleOf"), new.get("multipleOf")
        if a == b:
            return
        if a is None:
            self.add("multiple-of-added", op, np + "/multipleOf", None, b)
        elif b is None:
            self.add("multiple-of-removed", op + "/multipleOf", np, a, None)
        elif _num(a) and _num(b):
            from fractions import Fraction

            fa, fb = Fraction(str(a)), Fraction(str(b))
            if (fb / fa).denominator == 1:
                rule = "multiple-of-narrowed"
            elif (fa / fb).denominator == 1:
                rule = "multiple-of-widened"
            else:
                rule = "multiple-of-changed"
            self.add(rule, op + "/multipleOf", np + "/multipleOf", a, b, f"{a} -> {b}")

    def _string(self, old: dict[str, Any], new: dict[str, Any], op: str, np: str) -> None:
        for keyword in ("pattern", "format"):
            a, b = old.get(keyword), new.get(keyword)
            if a == b:
                continue
            if a is None:
                self.add(f"{keyword}-added", op, np + "/" + keyword, None, b)
            elif b is None:
                self.add(f"{keyword}-removed", op + "/" + keyword, np, a, None)
            elif keyword == "pattern" and isinstance(a, str) and isinstance(b, str):
                self._pattern(a, b, op, np)
            else:
                self.add(f"{keyword}-changed", op + "/" + keyword, np + "/" + keyword, a, b)

    def _pattern(self, a: str, b: str, op: str, np: str) -> None:
        """Two regexes: decided exactly (with example strings) when both are regular enough."""
        from logkit.compat.regexset import relation

        found = relation(a, b)
        if found is None:
            self.add(
                "pattern-changed",
                op + "/pattern",
                np + "/pattern",
                a,
                b,
                "not decided: the regexes use syntax logkit does not model exactly",
            )
            return
        old_only, new_only = found
        breaks = (B if old_only is not None else NONE) | (F if new_only is not None else NONE)
        parts = []
        if old_only is not None:
            parts.append(f"{old_only!r} matched only the old one")
        if new_only is not None:
            parts.append(f"{new_only!r} matches only the new one")
        detail = "; ".join(parts) or "the two patterns accept the same strings"
        self.add("pattern-changed", op + "/pattern", np + "/pattern", a, b, detail, breaks=breaks)

    def _object(
        self, old: dict[str, Any], new: dict[str, Any], op: str, np: str, depth: int
    ) -> None:
        a_props = old.get("properties") if isinstance(old.get("properties"), dict) else {}
        b_props = new.get("properties") if isinstance(new.get("properties"), dict) else {}
        assert isinstance(a_props, dict)
        assert isinstance(b_props, dict)
        a_add, b_add = old.get("additionalProperties"), new.get("additionalProperties")
        a_closed = a_add is False or old.get("unevaluatedProperties") is False
        b_closed = b_add is False or new.get("unevaluatedProperties") is False
        for name in a_props:
            path = f"/properties/{escape(name)}"
            if name in b_props:
                self.walk(a_props[name], b_props[name], op + path, np + path, depth + 1)
            elif b_closed and not self._pattern_covers(new, name):
                self.add(
                    "property-removed-from-closed-object",
                    op + path,
                    np + path,
                    a_props[name],
                    None,
                    f"{name!r}",
                )
            else:
                self.add(
                    "property-removed",
                    op + path,
                    np + path,
                    a_props[name],
                    None,
                    f"{name!r}",
                    both=self._constrains_rest(new, name),
                )
        for name in b_props:
            if name in a_props:
                continue
            path = f"/properties/{escape(name)}"
            if a_closed and not self._pattern_covers(old, name):
                self.add(
                    "property-added-to-closed-object",
                    op + path,
                    np + path,
                    None,
                    b_props[name],
                    f"{name!r}",
                )
            else:
                self.add(
                    "property-added-to-open-object",
                    op + path,
                    np + path,
                    None,
                    b_props[name],
                    f"{name!r}",
                    both=self._constrains_rest(old, name),
                )
        a_req = [r for r in old.get("required", []) if isinstance(r, str)]
        b_req = [r for r in new.get("required", []) if isinstance(r, str)]
        for name in b_req:
            if name not in a_req:
                self.add("required-added", op, np + "/required", None, name, f"{name!r}")
        for name in a_req:
            if name not in b_req:
                self.add("required-removed", op + "/required", np, name, None, f"{name!r}")
        for keyword in ("additionalProperties", "unevaluatedProperties"):
            self._open_closed(keyword, old.get(keyword), new.get(keyword), op, np, depth)
        self._keyed("patternProperties", "pattern-property", old, new, op, np, depth)
        self._keyed("dependentSchemas", "dependent-schema", old, new, op, np, depth)
        self._single("propertyNames", "property-names", old, new, op, np, depth)
        a_dep = old.get("dependentRequired") or {}
        b_dep = new.get("dependentRequired") or {}
        if isinstance(a_dep, dict) and isinstance(b_dep, dict):
            for name in sorted(set(a_dep) | set(b_dep)):
                a_needs = set(a_dep.get(name, []))
                b_needs = set(b_dep.get(name, []))
                path = f"/dependentRequired/{escape(name)}"
                if b_needs - a_needs:
                    self.add(
                        "dependent-required-added",
                        op,
                        np + path,
                        sorted(a_needs),
                        sorted(b_needs),
                        f"{name!r} now needs {sorted(b_needs - a_needs)}",
                    )
                if a_needs - b_needs:
                    self.add(
                        "dependent-required-removed",
                        op + path,
                        np,
                        sorted(a_needs),
                        sorted(b_needs),
                    )

    @classmethod
    def _constrains_rest(cls, schema: dict[str, Any], name: str) -> bool:
        """Is a name left out of ``properties`` still constrained (so not simply free)?"""
        rest = schema.get("additionalProperties")
        return (
            rest not in (None, True, {})
            or "unevaluatedProperties" in schema
            or cls._pattern_covers(schema, name)
        )

    @staticmethod
    def _pattern_covers(schema: dict[str, Any], name: str) -> bool:
        import re

        patterns = schema.get("patternProperties")
        if not isinstance(patterns, dict):
            return False
        for pattern in patterns:
            try:
                if re.search(pattern, name):
                    return True
            except re.error:
                continue
        return False

    def _open_closed(self, keyword: str, a: Any, b: Any, op: str, np: str, depth: int) -> None:
        if a == b:
            return
        name = kebab(keyword)
        path = "/" + keyword
        if b is False and a is not False:
            rule = (
                "additional-properties-closed"
                if keyword == "additionalProperties"
                else "unevaluated-properties-added"
            )
            self.add(rule, op, np + path, a, b)
        elif a is False and b is not False:
            rule = (
                "additional-properties-opened"
                if keyword == "additionalProperties"
                else "unevaluated-properties-removed"
            )
            self.add(rule, op + path, np, a, b)
        elif a is None or a is True:
            self.add(f"{name}-added", op, np + path, a, b)
        elif b is None or b is True:
            self.add(f"{name}-removed", op + path, np, a, b)
        elif keyword == "unevaluatedProperties":
            self.mixed(a, b, op + path, np + path, depth)
        else:
            self.walk(a, b, op + path, np + path, depth + 1)

    def _keyed(
        self,
        keyword: str,
        stem: str,
        old: dict[str, Any],
        new: dict[str, Any],
        op: str,
        np: str,
        depth: int,
    ) -> None:
        a = old.get(keyword) if isinstance(old.get(keyword), dict) else {}
        b = new.get(keyword) if isinstance(new.get(keyword), dict) else {}
        assert isinstance(a, dict)
        assert isinstance(b, dict)
        # a pattern also takes names away from additionalProperties: then it cuts both ways
        rest = keyword == "patternProperties" and any(
            s.get(k) not in (None, True, {})
            for s in (old, new)
            for k in ("additionalProperties", "unevaluatedProperties")
        )
        for key in sorted(set(a) | set(b)):
            path = f"/{keyword}/{escape(key)}"
            if key in a and key in b:
                self.walk(a[key], b[key], op + path, np + path, depth + 1)
            elif key in b:
                self.add(f"{stem}-added", op, np + path, None, b[key], repr(key), both=rest)
            else:
                self.add(f"{stem}-removed", op + path, np, a[key], None, repr(key), both=rest)

    def _single(
        self,
        keyword: str,
        stem: str,
        old: dict[str, Any],
        new: dict[str, Any],
        op: str,
        np: str,
        depth: int,
    ) -> None:
        a, b = old.get(keyword), new.get(keyword)
        if a == b:
            return
        path = "/" + keyword
        if a is None or a is True:
            self.add(f"{stem}-added", op, np + path, a, b)
        elif b is None or b is True:
            self.add(f"{stem}-removed", op + path, np, a, b)
        else:
            self.walk(a, b, op + path, np + path, depth + 1)

    def _array(
        self, old: dict[str, Any], new: dict[str, Any], op: str, np: str, depth: int
    ) -> None:
        a_items, b_items = old.get("items"), new.get("items")
        if a_items != b_items:
            if a_items is None or a_items is True:
                self.add("items-added", op, np + "/items", a_items, b_items)
            elif b_items is None or b_items is True:
                self.add("items-removed", op + "/items", np, a_items, b_items)
            else:
                self.walk(a_items, b_items, op + "/items", np + "/items", depth + 1)
        a_pre = old.get("prefixItems") if isinstance(old.get("prefixItems"), list) else []
        b_pre = new.get("prefixItems") if isinstance(new.get("prefixItems"), list) else []
        assert isinstance(a_pre, list)
        assert isinstance(b_pre, list)
        for i in range(max(len(a_pre), len(b_pre))):
            path = f"/prefixItems/{i}"
            if i < len(a_pre) and i < len(b_pre):
                self.walk(a_pre[i], b_pre[i], op + path, np + path, depth + 1)
            elif i < len(b_pre):
                self.add(
                    "prefix-item-added",
                    op,
                    np + path,
                    None,
                    b_pre[i],
                    both=old.get("items") not in (None, True, {}),
                )
            else:
                self.add(
                    "prefix-item-removed",
                    op + path,
                    np,
                    a_pre[i],
                    None,
                    both=new.get("items") not in (None, True, {}),
                )
        bounded = "maxContains" in old or "maxContains" in new
        self._mixed += bounded
        try:
            self._single("contains", "contains", old, new, op, np, depth)
        finally:
            self._mixed -= bounded
        a_u, b_u = bool(old.get("uniqueItems")), bool(new.get("uniqueItems"))
        if b_u and not a_u:
            self.add("unique-items-added", op, np + "/uniqueItems", a_u, b_u)
        elif a_u and not b_u:
            self.add("unique-items-removed", op + "/uniqueItems", np, a_u, b_u)

    def _logic(
        self, old: dict[str, Any], new: dict[str, Any], op: str, np: str, depth: int
    ) -> None:
        for keyword, stem in (("allOf", "all-of"), ("anyOf", "any-of"), ("oneOf", "one-of")):
            a = old.get(keyword) if isinstance(old.get(keyword), list) else []
            b = new.get(keyword) if isinstance(new.get(keyword), list) else []
            assert isinstance(a, list)
            assert isinstance(b, list)
            if a == b:
                continue
            if len(a) == len(b):
                for i in range(len(a)):
                    path = f"/{keyword}/{i}"
                    if keyword == "oneOf":
                        self.mixed(a[i], b[i], op + path, np + path, depth)
                    else:
                        self.walk(a[i], b[i], op + path, np + path, depth + 1)
                continue
            if keyword == "oneOf":
                self.add("one-of-changed", op + "/oneOf", np + "/oneOf", a, b)
                continue
            for i, branch in enumerate(b):
                if branch not in a:
                    self.add(
                        f"{stem}-branch-added",
                        op + f"/{keyword}",
                        np + f"/{keyword}/{i}",
                        None,
                        branch,
                    )
            for i, branch in enumerate(a):
                if branch not in b:
                    self.add(
                        f"{stem}-branch-removed",
                        op + f"/{keyword}/{i}",
                        np + f"/{keyword}",
                        branch,
                        None,
                    )
        a_not, b_not = old.get("not"), new.get("not")
        if a_not != b_not:
            if a_not is None:
                self.add("not-added", op, np + "/not", None, b_not)
            elif b_not is None:
                self.add("not-removed", op + "/not", np, a_not, None)
            else:
                self.add("not-changed", op + "/not", np + "/not", a_not, b_not)
        a_if = {k: old[k] for k in ("if", "then", "else") if k in old}
        b_if = {k: new[k] for k in ("if", "then", "else") if k in new}
        if a_if != b_if:
            if not a_if:
                self.add("conditional-added", op, np + "/if", None, b_if)
            elif not b_if:
                self.add("conditional-removed", op + "/if", np, a_if, None)
            elif a_if.get("if") != b_if.get("if"):
                self.add(
                    "conditional-changed", op + "/if", np + "/if", a_if.get("if"), b_if.get("if")
                )
            else:
                for key in ("then", "else"):
                    sa, sb = a_if.get(key, True), b_if.get(key, True)
                    self.walk(sa, sb, f"{op}/{key}", f"{np}/{key}", depth + 1)


def diff_schemas(old: Any, new: Any) -> list[Change]:
    """Every keyword-level change from ``old`` to ``new`` (both dereferenced)."""
    return run_diff(old, new).changes


def run_diff(old: Any, new: Any) -> Differ:
    """The walk itself, with ``truncated`` telling whether it saw everything."""
    differ = Differ(old, new)
    differ.walk(old, new)
    return differ


def iter_rules() -> Iterator[Rule]:
    yield from RULES.values()
