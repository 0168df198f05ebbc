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
from logkit.parse import ParseProblem, decode
from logkit.results import EventFailure, Issue
from logkit.store.ids import IdClock
from logkit.validation import Checker

STORED = "stored"
DEAD = "dead_letter"

PartitionKey = tuple[str, int, str]  # contract, version, dt


class _RawPayload(msgspec.Struct):
    payload: msgspec.Raw


_raw_payload = msgspec.json.Decoder(_RawPayload).decode
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

    def block(
        self, block: bytes, first_line: int, source: str, received_ns: int | None = None
    ) -> IngestBlock:
        """Envelopes and dead letters of a block of lines. With ``received_ns`` (when the block
        was read) the stamps are that time plus one microsecond per line, whatever the process
        and the moment that does the work: blocks enveloped by several workers at once then
        still get increasing stamps in input order."""
        self._received_ns = received_ns
        out = IngestBlock(bytes=len(block))
        checker = self.checker
        forced = checker.contract
        limits = checker.limits
        pieces = block.split(b"\n")
        if pieces and pieces[-1] == b"":
            pieces.pop()  # the block ends with a newline: no line after it
        line_no = first_line - 1
        for data in pieces:
            line_no += 1
            try:
                value = decode(data, limits)
            except ParseProblem as problem:
                if not data.strip():
                    out.blank += 1
                    continue
                out.lines += 1
                self._dead(
                    out,
                    data,
                    source,
                    line_no,
                    problem.reason,
                    [Issue("", problem.rule, problem.message)],
                    forced.name if forced else None,
                    forced.version if forced else None,
                )
                continue
            out.lines += 1
            if forced is not None:
                contract, payload, raw = forced, value, data.strip()
            else:
                routed = checker.route(value)
                if isinstance(routed, EventFailure):
                    self._dead(
                        out,
                        data,
                        source,
                        line_no,
                        routed.reason,
                        routed.issues,
                        routed.contract,
                        routed.version,
                    )
                    continue
                contract, payload = routed
                raw = bytes(_raw_payload(data).payload)
            validator = checker.registry.validator(contract)
            if not validator.is_valid(payload):
                self._dead(
                    out,
                    data,
                    source,
                    line_no,
                    "invalid",
                    explain(validator, payload),
                    contract.name,
                    contract.version,
                )
                continue
            uid, received_at, dt = self.clock.next(self._received_ns)
            key = (contract.name, contract.version, dt)
            buffer = out.events.get(key)
            if buffer is None:
                buffer = out.events[key] = bytearray()
            buffer += (
                f'{{"id":"{uid}","received_at":"{received_at}","contract":"{contract.name}",'
                f'"version":{contract.version},"payload":'
            ).encode()
            buffer += raw
            buffer += b"}\n"
            out.event_lines[key] += 1
            out.outcomes[(contract.name, str(contract.version), STORED)] += 1
        return out

    def _dead(
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
