"""Lines in -> envelopes and dead letters out, grouped by partition. No I/O, no printing.

A valid event becomes an envelope whose ``payload`` is the event's bytes exactly as they
arrived (no re-encoding, so every number and string round-trips). Anything else becomes a dead
letter holding its reason, its errors and the original line (``raw``, or ``raw_base64`` when it
is not UTF-8). Every non-blank line becomes exactly one of the two.
"""

from __future__ import annotations

import base64
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import msgspec

from logkit.explain import explain
from logkit.parse import BlockDecoder, ParseProblem
from logkit.registry import Contract
from logkit.results import EventFailure, Issue
from logkit.store.ids import IdClock
from logkit.validation import Checker

STORED = "stored"
DEAD = "dead_letter"

PartitionKey = tuple[str, int, str]  # contract, version, dt


class _RawPayload(msgspec.Struct):
    payload: msgspec.Raw


_raw_payload_decoder = msgspec.json.Decoder(_RawPayload)
_raw_payload = _raw_payload_decoder.decode
_raw_payload_lines = _raw_payload_decoder.decode_lines
_encode = msgspec.json.encode


@dataclass
class IngestBlock:
    """The output of one block of input, ready to append to a store (picklable)."""

    events: dict[PartitionKey, bytearray] = field(default_factory=dict)
    event_lines: Counter[PartitionKey] = field(default_factory=Counter)
    dead: dict[str, bytearray] = field(default_factory=dict)
    dead_lines: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    rules: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    lines: int = 0
    blank: int = 0
    bytes: int = 0

    @property
    def stored(self) -> int:
        return sum(self.event_lines.values())

    @property
    def dead_lettered(self) -> int:
        return sum(self.dead_lines.values())


class Enveloper:
    """Validates lines with a Checker and turns them into store lines."""

    def __init__(self, checker: Checker, source_name: str | None = None) -> None:
        self.checker = checker
        self.clock = IdClock()
        self._received_ns: int | None = None
        self._routes: dict[tuple[Any, Any, type], Contract] = {}

    def block(
        self, block: bytes, first_line: int, source: str, received_ns: int | None = None
    ) -> IngestBlock:
        """Envelopes and dead letters of a block of lines. With ``received_ns`` (when the block
        was read) the stamps are that time plus one microsecond per line, whatever the process
        and the moment that does the work: blocks enveloped by several workers at once then
        still get increasing stamps in input order."""
        self._received_ns = received_ns
        out = IngestBlock(bytes=len(block))
        lines = block.split(b"\n")
        decoder = BlockDecoder(block, self.checker.limits)
        stored: Counter[PartitionKey] = Counter()
        forced = self.checker.contract
        registry = self.checker.registry
        clock_next = self.clock.next
        events = out.events
        # Per contract: its validator's is_valid and the envelope text after received_at.
        known: dict[Contract, tuple[Any, str]] = {}
        for index, values in decoder:
            if isinstance(values, ParseProblem):
                out.lines += 1
                self._unparsed(out, lines[index], source, first_line + index, values)
                continue
            out.lines += len(values)
            raws = None if forced is not None else self._raw_payloads(lines, index, len(values))
            at = index - 1
            for offset, value in enumerate(values):
                at += 1
                if forced is not None:
                    contract, payload, raw = forced, value, lines[at].strip()
                else:
                    route = self._route(value)
                    if isinstance(route, EventFailure):
                        self.dead(
                            out,
                            lines[at],
                            source,
                            first_line + at,
                            route.reason,
                            route.issues,
                            route.contract,
                            route.version,
                        )
                        continue
                    contract, payload = route, value["payload"]
                    raw = bytes(
                        raws[offset] if raws is not None else _raw_payload(lines[at]).payload
                    )
                entry = known.get(contract)
                if entry is None:
                    entry = known[contract] = (
                        registry.validator(contract).is_valid,
                        f'","contract":"{contract.name}","version":{contract.version},"payload":',
                    )
                if not entry[0](payload):
                    self.dead(
                        out,
                        lines[at],
                        source,
                        first_line + at,
                        "invalid",
                        explain(registry.validator(contract), payload),
                        contract.name,
                        contract.version,
                    )
                    continue
                uid, received_at, dt = clock_next(received_ns)
                key = (contract.name, contract.version, dt)
                buffer = events.get(key)
                if buffer is None:
                    buffer = events[key] = bytearray()
                buffer += f'{{"id":"{uid}","received_at":"{received_at}{entry[1]}'.encode()
                buffer += raw
                buffer += b"}\n"
                stored[key] += 1
        out.blank = decoder.lines - out.lines
        for key, count in stored.items():
            out.event_lines[key] += count
            out.outcomes[(key[0], str(key[1]), STORED)] += count
        return out

    def _raw_payloads(self, lines: list[bytes], index: int, count: int) -> list[Any] | None:
        """The payload bytes of routed events ``lines[index:index+count]``, in one call."""
        try:
            joined = b"\n".join(lines[index : index + count])
            return [item.payload for item in _raw_payload_lines(joined)]
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None  # some line is not routed; each is looked at on its own

    def _route(self, value: Any) -> Contract | EventFailure:
        """The contract of a routed event. The common shape, ``{contract, version?, payload}``,
        is looked up in a small cache; anything else goes through ``Checker.route``."""
        if type(value) is dict and "payload" in value and len(value) <= 3:
            version = value.get("version")
            key = (value.get("contract"), version, type(version))  # True is not version 1
            cached = self._routes.get(key)
            if cached is not None and len(value) == (2 if version is None else 3):
                return cached
        else:
            key = None
        routed = self.checker.route(value)
        if isinstance(routed, EventFailure):
            return routed
        if key is not None and len(self._routes) < 1024:
            self._routes[key] = routed[0]
        return routed[0]

    def _unparsed(
        self, out: IngestBlock, data: bytes, source: str, line: int, problem: ParseProblem
    ) -> None:
        forced = self.checker.contract
        self.dead(
            out,
            data,
            source,
            line,
            problem.reason,
            [Issue("", problem.rule, problem.message)],
            forced.name if forced else None,
            forced.version if forced else None,
        )

    def dead(
        self,
        out: IngestBlock,
        data: bytes,
        source: str,
        line: int,
        reason: str,
        issues: list[Issue],
        contract: str | None,
        version: int | None,
    ) -> None:
        """Add a dead letter for ``data`` to ``out``, with its counts."""
        uid, received_at, dt = self.clock.next(self._received_ns)
        out.dead.setdefault(dt, bytearray()).extend(
            dead_letter(uid, received_at, data, reason, issues, contract, version, source, line)
        )
        out.dead_lines[dt] += 1
        label_contract = contract or "-"
        label_version = str(version) if version is not None else "-"
        out.outcomes[(label_contract, label_version, f"{DEAD}:{reason}")] += 1
        for issue in issues:
            out.rules[(label_contract, label_version, issue.rule)] += 1


def dead_letter(
    uid: str,
    received_at: str,
    data: bytes,
    reason: str,
    issues: list[Issue],
    contract: str | None,
    version: int | None,
    source: str | None,
    line: int | None,
    **extra: Any,
) -> bytes:
    """One dead-letter record as a JSONL line (schemas/dead_letter.schema.json)."""
    record: dict[str, Any] = {
        "id": uid,
        "received_at": received_at,
        "contract": contract,
        "version": version,
        "reason": reason,
        "errors": [issue.as_dict() for issue in issues],
    }
    try:
        record["raw"] = data.decode("utf-8")
    except UnicodeDecodeError:
        record["raw_base64"] = base64.b64encode(data).decode("ascii")
    if source is not None:
        record["source"] = {"file": source, "line": line}
    record.update(extra)
    return _encode(record) + b"\n"
