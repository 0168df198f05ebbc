"""Events + contracts -> results. No printing, no exits: the command layer renders.

An event is either bare (its contract given by the caller) or routed
(``{"contract": ..., "version": ..., "payload": ...}``). A line that is not an event at all is a
failure with a dead-letter reason, never an exception, so one bad line never stops a stream.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from itertools import compress
from operator import not_
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

from logkit.errors import LogkitError, UnknownContractError
from logkit.explain import explain
from logkit.parse import (
    BlockDecoder,
    Limits,
    ParseProblem,
    deeper_than,
    depth,
    too_deep,
    too_large,
)
from logkit.registry import NAME_RE, Contract, ContractRef, Registry
from logkit.results import EventFailure, Issue

ROUTING_KEYS = frozenset({"contract", "version", "payload"})
#: Envelope fields a routed event may carry along (re-validating a store's output is fine).
ENVELOPE_KEYS = frozenset({"id", "received_at", "source", "producer"})
#: Routes remembered per checker; a registry has far fewer contract versions than this.
MAX_ROUTES = 4096


@dataclass
class BlockResult:
    """What checking one block (or one document) found; ``lines`` counts the block's lines."""

    valid: int = 0
    per_contract: Counter[tuple[str, str]] = field(default_factory=Counter)
    failures: list[EventFailure] = field(default_factory=list)
    lines: int = 0


class Checker:
    """Checks events against a registry; ``contract`` set means events are bare."""

    def __init__(
        self, registry: Registry, contract: Contract | None = None, limits: Limits | None = None
    ) -> None:
        self.registry = registry
        self.contract = contract
        self.limits = limits or Limits()
        self._routes: dict[tuple[Any, Any], tuple[Contract, Any] | Issue] = {}
        self._depth_capped: bool | None = None  # does the contract cap valid events' depth?

    # -- one value -------------------------------------------------------------------------

    def check_value(self, value: Any, source: str, line: int, result: BlockResult) -> None:
        if self.contract is not None:
            contract, payload = self.contract, value
        else:
            routed = self.route(value)
            if isinstance(routed, EventFailure):
                routed.source, routed.line = source, line
                result.failures.append(routed)
                return
            contract, payload = routed
        validator = self.registry.validator(contract)
        key = (contract.name, str(contract.version))
        if validator.is_valid(payload):
            result.valid += 1
            result.per_contract[key] += 1
            return
        result.per_contract[key] += 0  # the contract shows up in the summary either way
        result.failures.append(
            EventFailure(
                source,
                line,
                "invalid",
                explain(validator, payload),
                contract.name,
                contract.version,
            )
        )

    def route(self, value: Any) -> tuple[Contract, Any] | EventFailure:
        """The contract and payload of a routed event, or why it cannot be routed."""
        if not isinstance(value, dict):
            return _failure(
                "not_an_object",
                "",
                "type",
                f"a routed event is a JSON object, found {type_name(value)}",
            )
        name, version = value.get("contract"), value.get("version")
        if name is None:
            return _failure(
                "invalid",
                "",
                "routing",
                "the event does not name its contract: wrap it as "
                '{"contract": NAME, "payload": {...}} or pass --contract NAME',
            )
        contract_name = name if isinstance(name, str) else None
        # `true == 1` in Python: a bool version must never share version 1's cache entry.
        exact_version = version is None or type(version) is int
        route = (
            self._routes.get((name, version)) if isinstance(name, str) and exact_version else None
        )
        if route is None:
            route = self._resolve(name, version)
            # Only contracts that exist are remembered: a stream naming ever new unknown
            # contracts or versions must not grow memory.
            if not isinstance(route, Issue) and exact_version and len(self._routes) < MAX_ROUTES:
                self._routes[(name, version)] = route
        if isinstance(route, Issue):
            reason = "unknown_contract" if route.rule == "unknown_contract" else "invalid"
            known_version = version if type(version) is int else None
            return EventFailure("", 0, reason, [route], contract_name, known_version)
        contract, _ = route
        extra = value.keys() - ROUTING_KEYS - ENVELOPE_KEYS
        if "payload" not in value or extra:
            message = (
                "the routed event has no 'payload'"
                if "payload" not in value
                else f"unexpected key {sorted(extra)[0]!r} beside contract, version and payload"
            )
            return EventFailure(
                "", 0, "invalid", [Issue("", "routing", message)], contract.name, contract.version
            )
        return contract, value["payload"]

    def _resolve(self, name: Any, version: Any) -> tuple[Contract, Any] | Issue:
        if not isinstance(name, str) or not NAME_RE.match(name):
            return Issue("/contract", "routing", f"{type_name(name)} is not a contract name")
        if version is not None and (
            isinstance(version, bool) or not isinstance(version, int) or version < 1
        ):
            return Issue(
                "/version",
                "routing",
                f"version must be a positive integer, found {type_name(version)}",
            )
        try:
            contract = self.registry.get(ContractRef(name, version))
        except UnknownContractError as exc:
            return Issue("/contract", "unknown_contract", str(exc))
        return contract, None

    # -- a block of JSONL lines ------------------------------------------------------------

    def check_block(
        self, block: bytes, first_line: int, source: str, cut_size: int = 0
    ) -> BlockResult:
        """Check every line of a block; blank lines are skipped. With ``cut_size``, the block
        is one line over the size limit, cut, whose real size that is."""
        result = BlockResult()
        failures = result.failures
        contract, limits = self.contract, self.limits
        if cut_size:
            self._parse_failure(too_large(cut_size, limits), source, first_line, result)
            result.lines = 1
            return result
        decoder = BlockDecoder(block, limits)
        if contract is None:
            for index, decoded in decoder:
                if isinstance(decoded, ParseProblem):
                    self._parse_failure(decoded, source, first_line + index, result)
                    continue
                for offset, value in enumerate(decoded, first_line + index):
                    self.check_value(value, source, offset, result)
            result.lines = decoder.lines
            return result
        # The hot loop for bare events: whole runs of lines are decoded at once and checked
        # with one C-level map; only the invalid ones come back to Python, to be explained.
        # When the contract caps how deep a valid event nests below the limit, only invalid
        # events can be too deep, so only they are measured.
        if self._depth_capped is None:
            self._depth_capped = depth_bound(self.registry, contract) <= limits.max_depth
        decoder.check_depth = not self._depth_capped
        validator = self.registry.validator(contract)
        is_valid = validator.is_valid
        valid = 0
        for index, decoded in decoder:
            if isinstance(decoded, ParseProblem):
                self._parse_failure(decoded, source, first_line + index, result)
                continue
            flags = list(map(is_valid, decoded))
            passed = sum(flags)
            valid += passed
            if passed == len(flags):
                continue
            for offset in compress(range(len(flags)), map(not_, flags)):
                line, value = first_line + index + offset, decoded[offset]
                if self._depth_capped and deeper_than(value, limits.max_depth):
                    self._parse_failure(too_deep(limits), source, line, result)
                else:
                    failures.append(
                        EventFailure(
                            source,
                            line,
                            "invalid",
                            explain(validator, value),
                            contract.name,
                            contract.version,
                        )
                    )
        result.valid = valid
        result.per_contract[(contract.name, str(contract.version))] = valid
        result.lines = decoder.lines
        return result

    def _parse_failure(
        self, problem: ParseProblem, source: str, line: int, result: BlockResult
    ) -> None:
        contract = self.contract
        result.failures.append(
            EventFailure(
                source,
                line,
                problem.reason,
                [Issue("", problem.rule, problem.message)],
                contract.name if contract else None,
                contract.version if contract else None,
            )
        )


def _failure(reason: str, path: str, rule: str, message: str) -> EventFailure:
    return EventFailure("", 0, reason, [Issue(path, rule, message)])


def type_name(value: Any) -> str:
    """A JSON type name with the value, for messages: ``string "x"``, ``an array``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return f"number {value!r}"
    if isinstance(value, str):
        return f"string {value[:40]!r}"
    if isinstance(value, list):
        return "an array"
    return "an object"


# -- how deep a valid event can be ---------------------------------------------------------

_UNBOUNDED = math.inf


def depth_bound(registry: Registry, contract: Contract) -> float:
    """An upper bound on the nesting depth (as ``parse.depth`` counts it) of any event valid
    under ``contract``; infinity when the schema allows any depth or is too clever to tell.

    Every keyword of a schema is a further condition, so each one that caps the depth caps it
    for the whole schema (the smallest cap wins); keywords not understood here cap nothing.
    """
    return _bound(contract.schema, contract.path.as_uri(), registry, frozenset())


def _bound(schema: Any, base: str, registry: Registry, seen: frozenset[str]) -> float:
    if schema is False:
        return 0  # nothing is valid
    if not isinstance(schema, dict) or any(
        key in schema for key in ("$id", "$anchor", "$dynamicRef", "$recursiveRef")
    ):
        return _UNBOUNDED  # resolution rules we do not follow here: claim nothing

    def sub(child: Any) -> float:
        return _bound(child, base, registry, seen)

    found = _UNBOUNDED
    if isinstance(schema.get("$ref"), str):
        found = min(found, _bound_ref(schema["$ref"], base, registry, seen))
    for branch in schema.get("allOf", []) if isinstance(schema.get("allOf"), list) else []:
        found = min(found, sub(branch))
    for keyword in ("anyOf", "oneOf"):
        if isinstance(schema.get(keyword), list) and schema[keyword]:
            found = min(found, max(sub(branch) for branch in schema[keyword]))
    if "const" in schema:
        found = min(found, depth(schema["const"]))
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        found = min(found, max(depth(option) for option in schema["enum"]))
    types = schema.get("type")
    kinds = (
        {types}
        if isinstance(types, str)
        else set(types)
        if isinstance(types, list)
        else {"object", "array", "scalar"}
    )
    own = 0.0
    if "object" in kinds:
        children = _UNBOUNDED
        if "additionalProperties" in schema:
            children = sub(schema["additionalProperties"])
            for keyword in ("properties", "patternProperties"):
                members = schema.get(keyword, {})
                children = (
                    max(children, *(sub(member) for member in members.values()))
                    if isinstance(members, dict) and members
                    else children
                )
        own = max(own, 1 + children)
    if "array" in kinds:
        children = sub(schema["items"]) if "items" in schema else _UNBOUNDED
        prefix = schema.get("prefixItems", [])
        if isinstance(prefix, list) and prefix:
            children = max(children, *(sub(member) for member in prefix))
        own = max(own, 1 + children)
    return min(found, own)


def _bound_ref(ref: str, base: str, registry: Registry, seen: frozenset[str]) -> float:
    uri = urljoin(base, ref)
    if uri in seen:
        return _UNBOUNDED  # a recursive schema
    where, _, fragment = uri.partition("#")
    parts = urlsplit(where)
    if parts.scheme != "file" or (fragment and not fragment.startswith("/")):
        return _UNBOUNDED
    path = Path(unquote(parts.path)).resolve()
    if not path.is_relative_to(registry.root) or not path.is_file():
        return _UNBOUNDED
    try:
        target = registry.document(path)
        for token in fragment.split("/")[1:] if fragment else []:
            token = unquote(token).replace("~1", "/").replace("~0", "~")
            target = target[int(token)] if isinstance(target, list) else target[token]
    except (LogkitError, LookupError, ValueError, TypeError):
        return _UNBOUNDED
    return _bound(target, where, registry, seen | {uri})
