"""Events + contracts -> results. No printing, no exits: the command layer renders.

An event is either bare (its contract given by the caller) or routed
(``{"contract": ..., "version": ..., "payload": ...}``). A line that is not an event at all is a
failure with a dead-letter reason, never an exception, so one bad line never stops a stream.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from logkit.errors import UnknownContractError
from logkit.explain import explain
from logkit.parse import Limits, ParseProblem, decode
from logkit.registry import NAME_RE, Contract, ContractRef, Registry
from logkit.results import EventFailure, Issue

ROUTING_KEYS = frozenset({"contract", "version", "payload"})
#: Envelope fields a routed event may carry along (re-validating a store's output is fine).
ENVELOPE_KEYS = frozenset({"id", "received_at", "source", "producer"})


@dataclass
class BlockResult:
    """What checking one block (or one document) found."""

    valid: int = 0
    per_contract: Counter[tuple[str, str]] = field(default_factory=Counter)
    failures: list[EventFailure] = field(default_factory=list)


class Checker:
    """Checks events against a registry; ``contract`` set means events are bare."""

    def __init__(self, registry: Registry, contract: Contract | None = None,
                 limits: Limits | None = None) -> None:
        self.registry = registry
        self.contract = contract
        self.limits = limits or Limits()
        self._routes: dict[tuple[Any, Any], tuple[Contract, Any] | Issue] = {}

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
        result.failures.append(EventFailure(source, line, "invalid", explain(validator, payload),
                                            contract.name, contract.version))

    def route(self, value: Any) -> tuple[Contract, Any] | EventFailure:
        """The contract and payload of a routed event, or why it cannot be routed."""
        if not isinstance(value, dict):
            return _failure("not_an_object", "", "type",
                            f"a routed event is a JSON object, found {type_name(value)}")
        name, version = value.get("contract"), value.get("version")
        if name is None:
            return _failure("invalid", "", "routing",
                            "the event does not name its contract: wrap it as "
                            '{"contract": NAME, "payload": {...}} or pass --contract NAME')
        contract_name = name if isinstance(name, str) else None
        if isinstance(name, str) and (version is None or isinstance(version, int)):
            route = self._routes.get((name, version))
            if route is None:
                route = self._routes[(name, version)] = self._resolve(name, version)
        else:
            route = self._resolve(name, version)
        if isinstance(route, Issue):
            reason = "unknown_contract" if route.rule == "unknown_contract" else "invalid"
            return EventFailure("", 0, reason, [route], contract_name,
                                version if isinstance(version, int) else None)
        contract, _ = route
        extra = value.keys() - ROUTING_KEYS - ENVELOPE_KEYS
        if "payload" not in value or extra:
            message = ("the routed event has no 'payload'" if "payload" not in value else
                       f"unexpected key {sorted(extra)[0]!r} beside contract, version and "
                       "payload")
            return EventFailure("", 0, "invalid", [Issue("", "routing", message)],
                                contract.name, contract.version)
        return contract, value["payload"]

    def _resolve(self, name: Any, version: Any) -> tuple[Contract, Any] | Issue:
        if not isinstance(name, str) or not NAME_RE.match(name):
            return Issue("/contract", "routing", f"{type_name(name)} is not a contract name")
        if version is not None and (isinstance(version, bool) or not isinstance(version, int)
                                    or version < 1):
            return Issue("/version", "routing",
                         f"version must be a positive integer, found {type_name(version)}")
        try:
            contract = self.registry.get(ContractRef(name, version))
        except UnknownContractError as exc:
            return Issue("/contract", "unknown_contract", str(exc))
        return contract, None

    # -- a block of JSONL lines ------------------------------------------------------------

    def check_block(self, block: bytes, first_line: int, source: str) -> BlockResult:
        """Check every line of a block; blank lines are skipped."""
        result = BlockResult()
        limits = self.limits
        line = first_line - 1
        if self.contract is not None:
            # The hot loop for bare events: one decode and one is_valid per line.
            is_valid = self.registry.validator(self.contract).is_valid
            valid = 0
            for data in block.split(b"\n"):
                line += 1
                if not data:
                    continue
                try:
                    value = decode(data, limits)
                except ParseProblem as problem:
                    self._parse_failure(problem, data, source, line, result)
                    continue
                if is_valid(value):
                    valid += 1
                else:
                    result.valid += valid
                    result.per_contract[(self.contract.name, str(self.contract.version))] \
                        += valid
                    valid = 0
                    self.check_value(value, source, line, result)
            result.valid += valid
            result.per_contract[(self.contract.name, str(self.contract.version))] += valid
            return result
        for data in block.split(b"\n"):
            line += 1
            if not data:
                continue
            try:
                value = decode(data, limits)
            except ParseProblem as problem:
                self._parse_failure(problem, data, source, line, result)
                continue
            self.check_value(value, source, line, result)
        return result

    def _parse_failure(self, problem: ParseProblem, data: bytes, source: str, line: int,
                       result: BlockResult) -> None:
        if not data.strip():
            return  # blank and whitespace-only lines separate events; they are not events
        contract = self.contract
        result.failures.append(EventFailure(
            source, line, problem.reason, [Issue("", problem.rule, problem.message)],
            contract.name if contract else None, contract.version if contract else None))


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
