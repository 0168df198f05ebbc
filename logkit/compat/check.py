"""Two versions of a contract -> an exact verdict per relation, with proof, and classified changes.

The verdict comes from jsonschema-rs's canonical algebra (``covers``) where it decides, and from
a *verified witness* where it does not: an event one version's real validator accepts and the
other's rejects. ``covers`` answering YES proves compatibility; a witness proves a break; an
UNKNOWN with no witness is ``undecided`` and counts as breaking. The structural diff
(``logkit.compat.rules``) then says where and why, each change graded by the verdicts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property, partial
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from logkit.compat.rules import RULES, Change, run_diff
from logkit.compat.witness import Generator, mutations, witnesses
from logkit.schemawalk import resolve_pointer, unescape

if TYPE_CHECKING:
    from logkit.registry import Contract, Registry

RELATIONS = ("BACKWARD", "FORWARD")
MODES = (
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
    "NONE",
)
POLICIES = ("strict", "lenient")
MAX_WITNESSES = 40
#: Examples of each version whose one-place changes are tried as witnesses, at the most.
MAX_EXAMPLES = 4
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"


def required_relations(mode: str) -> frozenset[str]:
    """Which relations a mode demands: FULL both, NONE neither."""
    base = mode.removesuffix("_TRANSITIVE")
    if base == "FULL":
        return frozenset(RELATIONS)
    if base in RELATIONS:
        return frozenset({base})
    return frozenset()


@dataclass
class Version:
    """One side of a comparison: a schema, where its references resolve, its real validator.

    ``compile`` builds the validator, which only witnesses need: most relations are proved by
    jsonschema-rs's ``covers`` alone, so it runs on first use. ``check`` raises what compiling
    would raise before reading any ``$ref`` (a wrong dialect, a schema its meta-schema rejects),
    at a fraction of the cost; see ``_make_side``.
    """

    label: str
    file: str
    schema: Any
    base_uri: str
    retrieve: Callable[[str], Any]
    compile: Callable[[], Any]
    check: Callable[[], None] = lambda: None
    resources: Any = None  # a jsonschema_rs.Registry of documents references may point into

    @cached_property
    def validator(self) -> Any:
        return self.compile()

    @classmethod
    def from_contract(cls, registry: Registry, contract: Contract) -> Version:
        return cls(
            contract.label,
            str(contract.path),
            contract.schema,
            contract.path.as_uri(),
            registry._retrieve,
            partial(registry.validator, contract),
            partial(registry.check_schema, contract),
            registry.shared_resources(),
        )

    @classmethod
    def from_file(cls, path: Path, schema: Any, label: str | None = None) -> Version:
        """A schema outside any registry; its references resolve to local files, never remote."""
        from logkit.registry import compile_schema, read_document

        def retrieve(uri: str) -> Any:
            from urllib.parse import unquote, urlsplit

            from logkit.errors import RegistryError

            parts = urlsplit(uri)
            target = Path(unquote(parts.path)).resolve()
            if parts.scheme != "file":
                raise RegistryError(
                    f"{path}: $ref {uri!r} is a remote reference; logkit never fetches"
                )
            return read_document(target)

        validator = compile_schema(
            schema, base_uri=path.resolve().as_uri(), retrieve=retrieve, where=str(path)
        )
        return cls(
            label or path.name,
            str(path),
            schema,
            path.resolve().as_uri(),
            retrieve,
            lambda: validator,
        )

    def accepts(self, event: Any) -> bool:
        return bool(self.validator.is_valid(event))


@dataclass
class Witness:
    """A concrete event that one version accepts and the other rejects, checked by both."""

    event: Any
    accepted_by: str
    rejected_by: str
    errors: list[tuple[str, str, str]]  # (instance pointer, schema pointer, message)

    def as_dict(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "accepted_by": self.accepted_by,
            "rejected_by": self.rejected_by,
            "errors": [{"path": p, "schema_path": s, "message": m} for p, s, m in self.errors],
        }


@dataclass
class Verdict:
    """One relation's answer: ``compatible``, ``breaking`` or ``undecided``, and how we know."""

    relation: str
    answer: str
    how: str
    witness: Witness | None = None
    witnesses: list[Witness] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.answer == "compatible"


@dataclass
class PairResult:
    """Everything check-compat knows about ``old`` -> ``new`` under one mode and policy."""

    old: Version
    new: Version
    mode: str
    policy: str
    verdicts: dict[str, Verdict]
    changes: list[Change]

    @property
    def compatible(self) -> bool:
        return all(self.verdicts[r].ok for r in required_relations(self.mode))

    @property
    def errors(self) -> list[Change]:
        return [c for c in self.changes if c.severity == "error"]


def _pointer(parts: Any) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def dereference(version: Version) -> Any:
    """One self-contained document: every ``$ref`` inlined, recursion under ``$defs``."""
    import jsonschema_rs

    from logkit.compat.inline import CannotInline, inline

    try:
        return inline(version.schema, version.base_uri, version.retrieve)
    except (CannotInline, RecursionError):
        pass
    except Exception:  # a retrieval that failed: the validators already reported it
        pass
    try:
        return jsonschema_rs.dereference(
            version.schema, base_uri=version.base_uri, retriever=version.retrieve
        )
    except Exception:
        return version.schema


def close_objects(schema: Any) -> Any:
    """Policy lenient: every object schema with properties and no rule for undeclared names
    becomes closed, as if producers never sent properties their contract does not declare."""
    if isinstance(schema, list):
        return [close_objects(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {
        k: (v if k in ("enum", "const", "examples", "default", "required") else close_objects(v))
        for k, v in schema.items()
    }
    if isinstance(schema.get("properties"), dict) and not any(
        k in schema for k in ("additionalProperties", "patternProperties", "unevaluatedProperties")
    ):
        out["additionalProperties"] = False
    return out


@dataclass
class _Side:
    version: Version
    deref: Any
    canonical: Any  # CanonicalSchema or None
    source_canonical: Any  # the canonical form used when this side is the producer
    source_accepts: Callable[[Any], bool]
    opaque: bool | None = None  # computed once: may the structural diff miss something?

    def is_opaque(self) -> bool:
        if self.opaque is None:
            self.opaque = _opaque(self.deref, self.deref)
        return self.opaque


def _canonical(schema: Any, version: Version) -> Any:
    import jsonschema_rs

    if version.resources is not None:
        try:
            return jsonschema_rs.canonicalize(
                schema,
                validate_formats=True,
                base_uri=version.base_uri,
                registry=version.resources,
            )
        except Exception:  # decided below, as if the resources had not been prepared
            pass
    try:
        return jsonschema_rs.canonicalize(
            schema, validate_formats=True, base_uri=version.base_uri, retriever=version.retrieve
        )
    except Exception:
        return None


def _side(version: Version, policy: str, cache: dict[Any, _Side] | None = None) -> _Side:
    if cache is None:
        return _make_side(version, policy)
    key = (version.label, version.file, policy)
    if key not in cache:
        cache[key] = _make_side(version, policy)
    return cache[key]


def _make_side(version: Version, policy: str) -> _Side:
    version.check()
    deref = dereference(version)
    canonical = _canonical(version.schema, version)
    if canonical is None:
        # canonicalize refuses what compiling refuses (a $ref that does not resolve, a bad
        # regex): compile now, so that such a schema raises its RegistryError as it always did
        _ = version.validator
    if policy == "lenient":
        import jsonschema_rs

        closed = close_objects(deref)
        source = _canonical(closed, version)
        try:
            closed_validator = jsonschema_rs.validator_for(
                closed, validate_formats=True, base_uri=version.base_uri, retriever=version.retrieve
            )

            def source_accepts(event: Any) -> bool:
                return version.accepts(event) and bool(closed_validator.is_valid(event))
        except Exception:
            source_accepts = version.accepts
        return _Side(version, deref, canonical, source, source_accepts)
    return _Side(version, deref, canonical, canonical, version.accepts)


def _errors(version: Version, event: Any) -> list[tuple[str, str, str]]:
    return [
        (_pointer(e.instance_path), _pointer(e.schema_path), e.message)
        for e in version.validator.iter_errors(event)
    ]


def _decide(
    relation: str,
    producer: _Side,
    consumer: _Side,
    gens: list[Generator],
    monotone: bool,
) -> Verdict:
    """Does every event ``producer`` accepts pass ``consumer``? Prove it either way."""
    answer = "UNKNOWN"
    hints: list[tuple[Any, Any]] = [
        (producer.deref, producer.deref),
        (consumer.deref, consumer.deref),
    ]
    if producer.source_canonical is not None and consumer.canonical is not None:
        try:
            answer = str(consumer.canonical.covers(producer.source_canonical)).upper()
        except Exception:
            answer = "UNKNOWN"
        if answer == "YES":
            return Verdict(relation, "compatible", "proved by jsonschema-rs (covers: YES)")
        try:
            gap = producer.source_canonical.subtract(consumer.canonical).to_json_schema()
            hints.insert(0, (gap, gap))
        except Exception:
            pass
    found: list[Witness] = []
    tried = 0
    # Cheapest first: the gap alone (the events one side admits and the other rejects, when
    # jsonschema-rs could compute it), then both schemas with few candidates per spot, then more.
    stages = [(gens[0], hints[:1])] if len(hints) == 3 else []
    stages += [(gen, hints) for gen in gens]

    def batches() -> Iterator[list[Any]]:
        for gen, stage_hints in stages:
            candidates: list[Any] = []
            for schema, root in stage_hints:
                candidates.extend(gen.candidates([(schema, root)]))
            if len(stage_hints) > 1:
                candidates.extend(gen.candidates(stage_hints))
            for schema, _ in hints[-2:]:
                if isinstance(schema, dict) and isinstance(schema.get("examples"), list):
                    candidates.extend(schema["examples"])
            yield candidates
        # Last, the versions' own examples, each changed in one place: a change deep inside
        # a large object is found there when whole candidate events never satisfy the rest.
        both = hints[-2:]
        examples = [e for schema, _ in both if isinstance(schema, dict)
                    for e in schema.get("examples") or [] if isinstance(e, dict)]  # fmt: skip
        for example in examples[:MAX_EXAMPLES]:
            yield list(mutations(gens[0], example, list(both)))

    for candidates in batches():  # made lazily: a batch only when the ones before found none
        tried += len(candidates)
        events = witnesses(candidates, producer.source_accepts, consumer.version.accepts)
        found = [
            Witness(
                event, producer.version.label, consumer.version.label,
                _errors(consumer.version, event),
            )
            for event in islice(events, MAX_WITNESSES)
        ]  # fmt: skip
        if found:
            break
    if found:
        how = (
            "jsonschema-rs: covers NO; witness verified"
            if answer == "NO"
            else "jsonschema-rs: covers UNKNOWN; a verified witness proves the break"
        )
        return Verdict(relation, "breaking", how, found[0], found)
    if answer == "NO":
        return Verdict(
            relation,
            "breaking",
            "proved by jsonschema-rs (covers: NO); no concrete witness was found",
        )
    if monotone:
        return Verdict(
            relation,
            "compatible",
            "proved structurally: jsonschema-rs answered UNKNOWN, and every change only "
            f"{'widens' if relation == 'BACKWARD' else 'narrows'} a keyword in a monotone "
            "position",
        )
    return Verdict(
        relation,
        "undecided",
        f"jsonschema-rs answered UNKNOWN and no counterexample was found among {tried} candidates",
    )


def _strip_refs(pointer: str) -> str:
    return "/".join(p for p in pointer.split("/") if p != "$ref")


def _at(document: Any, pointer: str) -> Any:
    try:
        return resolve_pointer(document, pointer)
    except (KeyError, IndexError, ValueError):
        return None


def _explains(change: Change, witness: Witness, relation: str) -> str | None:
    """The rejecting validator's message at the change's keyword, if this witness has one."""
    pointer = change.new_pointer if relation == "BACKWARD" else change.old_pointer
    owner = pointer.rsplit("/properties/", 1)[0] if "/properties/" in pointer else pointer
    keywords = RULES[change.rule].keywords
    for instance, schema_path, message in witness.errors:
        path = _strip_refs(schema_path)
        parent, _, keyword = path.rpartition("/")
        if keywords and keyword not in keywords:
            continue
        if (
            keyword in ("additionalProperties", "unevaluatedProperties")
            and "/properties/" in pointer
        ):
            name = unescape(pointer.rsplit("/properties/", 1)[1].split("/")[0])
            target = _at(witness.event, instance)
            if not isinstance(target, dict) or name not in target:
                continue
        if path == pointer or path.startswith(pointer + "/") or parent in (pointer, owner):
            return message
    return None


def grade(result: PairResult) -> None:
    """Severity per change under the mode; witnesses attached; verdict-level findings added."""
    required = required_relations(result.mode)
    relation_changes: dict[str, list[Change]] = {r: [] for r in RELATIONS}
    for change in result.changes:
        broken = {r for r in change.breaks if not result.verdicts[r].ok}
        if broken & required:
            change.severity = "error"
        elif broken:
            change.severity = "warning"
        else:
            change.severity = "info"
        for relation in sorted(broken):
            relation_changes[relation].append(change)
            verdict = result.verdicts[relation]
            if change.has_witness:
                continue
            # the witness that fails for this change alone, or with the fewest other reasons
            matches = [(w, _explains(change, w, relation)) for w in verdict.witnesses]
            explained = [(w, m) for w, m in matches if m is not None]
            if explained:
                witness, message = min(explained, key=lambda pair: len(pair[0].errors))
                change.witness, change.has_witness = witness, True
                change.witness_direction = relation
                change.witness_reason = message or ""
    for relation in RELATIONS:
        verdict = result.verdicts[relation]
        if verdict.ok or verdict.answer == "unchecked":
            continue
        severity = "error" if relation in required else "warning"
        mine = relation_changes[relation]
        if len(mine) == 1 and not mine[0].has_witness and verdict.witness is not None:
            mine[0].witness, mine[0].has_witness = verdict.witness, True
            mine[0].witness_direction = relation
        if verdict.answer == "undecided":
            result.changes.append(
                Change(
                    "undecided", "", "", None, None, f"{relation}: {verdict.how}", severity=severity
                )
            )
        elif not any(c.has_witness for c in mine):
            rid = "backward-incompatible" if relation == "BACKWARD" else "forward-incompatible"
            change = Change(rid, "", "", None, None, verdict.how, severity=severity)
            if verdict.witness is not None:
                change.witness, change.has_witness = verdict.witness, True
                change.witness_direction = relation
            result.changes.append(change)


OPAQUE_KEYWORDS = frozenset(
    {"$dynamicRef", "$recursiveRef", "unevaluatedProperties", "unevaluatedItems"}
)


def _opaque(schema: Any, root: Any) -> bool:
    """Could the structural diff miss something here? A ``$ref`` to another document, a local
    one that does not resolve in this document (dereferencing inlined it from another file),
    or a keyword whose effect depends on evaluation elsewhere."""
    if isinstance(schema, list):
        return any(isinstance(item, (dict, list)) and _opaque(item, root) for item in schema)
    if not isinstance(schema, dict):
        return False
    for key, value in schema.items():
        if key in OPAQUE_KEYWORDS:
            return True
        if key == "$ref" and isinstance(value, str):
            if not value.startswith("#"):
                return True
            try:
                resolve_pointer(root, value[1:])
            except (KeyError, IndexError, ValueError):
                return True
        if (
            isinstance(value, (dict, list))  # anything else holds no keyword
            and key not in ("enum", "const", "examples", "default")
            and _opaque(value, root)
        ):
            return True
    return False


def _structural_proof_applies(a: _Side, b: _Side, policy: str) -> bool:
    if policy != "strict" or a.is_opaque() or b.is_opaque():
        return False
    dialects = {
        s.get("$schema", DRAFT_2020_12) if isinstance(s, dict) else DRAFT_2020_12
        for s in (a.deref, b.deref)
    }
    return dialects == {DRAFT_2020_12}


def check_pair(
    old: Version,
    new: Version,
    *,
    mode: str = "BACKWARD",
    policy: str = "strict",
    cache: dict[Any, Any] | None = None,
    relations: frozenset[str] | None = None,
) -> PairResult:
    """Compare two versions: exact verdicts for BACKWARD and FORWARD, graded changes.

    ``relations`` limits which relations are decided (default: both); check-compat passes the
    ones the mode requires, and the others are ``unchecked``: changes that could break them are
    warnings, without proof.
    ``cache`` lets a run prepare each version once.
    """
    gens = [Generator(per_node=6), Generator(per_node=24)]
    a, b = _side(old, policy, cache), _side(new, policy, cache)
    differ = run_diff(a.deref, b.deref)
    changes = differ.changes
    # Monotonicity: when every change only loosens (or only tightens) keywords whose effect is
    # monotone, the relation holds. Only sound when both sides were fully dereferenced.
    complete = not differ.truncated and _structural_proof_applies(a, b, policy)
    verdicts = {
        relation: _decide(
            relation,
            a if relation == "BACKWARD" else b,
            b if relation == "BACKWARD" else a,
            gens,
            complete and not any(relation in c.breaks for c in changes),
        )
        if relations is None or relation in relations
        else Verdict(relation, "unchecked", f"not required by mode {mode}")
        for relation in RELATIONS
    }
    result = PairResult(old, new, mode, policy, verdicts, changes)
    grade(result)
    return result


def plan(versions: list[int], mode: str) -> list[tuple[int, int]]:
    """The (old, new) pairs a mode asks for: previous only, or every earlier version."""
    pairs: list[tuple[int, int]] = []
    for i, new in enumerate(versions[1:], start=1):
        olds = versions[:i] if mode.endswith("_TRANSITIVE") else [versions[i - 1]]
        pairs.extend((old, new) for old in olds)
    return pairs


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)
