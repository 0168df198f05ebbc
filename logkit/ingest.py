"""Lines in -> envelopes and dead letters out, grouped by partition. No I/O, no printing.

A valid event becomes an envelope whose ``payload`` is the event's bytes exactly as they
arrived (no re-encoding, so every number and string round-trips). Anything else becomes a dead
letter holding its reason, its errors and the original line (``raw``, or ``raw_base64`` when it
is not UTF-8). Every non-blank line becomes exactly one of the two.
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import msgspec

from logkit.explain import explain
from logkit.parse import BlockDecoder, ParseProblem, decode, too_large
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


class _Route(NamedTuple):
    """What the hot loop needs of a contract: its validator and its envelope text."""

    contract: Contract
    is_valid: Callable[[Any], bool]
    #: The envelope's text between ``received_at`` and the payload.
    middle: str


class Enveloper:
    """Validates lines with a Checker and turns them into store lines."""

    def __init__(self, checker: Checker, source_name: str | None = None) -> None:
        self.checker = checker
        self.clock = IdClock()
        self._received_ns: int | None = None
        self._routes: dict[tuple[str, Any, type], _Route] = {}
        self._entries: dict[Contract, _Route] = {}

    def block(
        self,
        block: bytes,
        first_line: int,
        source: str,
        received_ns: int | None = None,
        cut_size: int = 0,
    ) -> IngestBlock:
        """Envelopes and dead letters of a block of lines. The block's stamps are one
        microsecond per line from ``received_ns`` (when the block was read) or from now,
        whatever the process and the moment that does the work: blocks enveloped by several
        workers at once then still get increasing stamps in input order. With ``cut_size``,
        the block is one line over the size limit, cut, whose real size that is."""
        self._received_ns = received_ns
        out = IngestBlock(bytes=len(block))
        lines = block.split(b"\n")
        # Line i of the block is stamped base + i (a block of n lines takes n microseconds,
        # as the reader's stamps allot); stamps are made once the valid lines are known.
        base = self.clock.reserve(len(lines) - (lines[-1] == b""), received_ns)
        if cut_size:
            out.lines = 1
            problem = too_large(cut_size, self.checker.limits)
            self._unparsed(out, lines[0], source, first_line, 0, problem, base)
            return out
        decoder = BlockDecoder(block, self.checker.limits)
        forced = None if self.checker.contract is None else self._entry(self.checker.contract)
        valid: list[tuple[int, _Route, bytes]] = []  # (line index, route, payload bytes)
        keep = valid.append
        for index, values in decoder:
            if isinstance(values, ParseProblem):
                out.lines += 1
                self._unparsed(out, lines[index], source, first_line, index, values, base)
                continue
            out.lines += len(values)
            if forced is not None:
                for at, ok in enumerate(map(forced.is_valid, values), index):
                    if ok:
                        keep((at, forced, lines[at].strip()))
                    else:
                        self._invalid(out, lines, at, values[at - index], forced, source,
                                      first_line, base)  # fmt: skip
                continue
            raws = self._raw_payloads(lines, index, len(values))
            routes = self._routes
            for at, value in enumerate(values, index):
                route: _Route | None = None
                if type(value) is dict and "payload" in value and len(value) <= 3:
                    name, version = value.get("contract"), value.get("version")
                    if type(name) is str and len(value) == (2 if version is None else 3):
                        # True == 1 in Python: a bool version never shares version 1's entry.
                        route = routes.get((name, version, type(version)))
                if route is None:
                    found = self._route(value)
                    if isinstance(found, EventFailure):
                        self.dead(out, lines[at], source, first_line + at, found.reason,
                                  found.issues, found.contract, found.version,
                                  micros=base + at)  # fmt: skip
                        continue
                    route = found
                payload = value["payload"]
                if not route.is_valid(payload):
                    self._invalid(out, lines, at, payload, route, source, first_line, base)
                    continue
                raw = raws[at - index] if raws is not None else _raw_payload(lines[at]).payload
                keep((at, route, bytes(raw)))
        self._envelopes(out, valid, base)
        out.blank = decoder.lines - out.lines
        return out

    def event(
        self, line: bytes, received_ns: int | None = None
    ) -> tuple[IngestBlock, str, str] | None:
        """One bare event of the checker's contract (``logkit serve``'s ``POST /log/{name}``),
        when it is valid: exactly what ``block`` makes of it, with the envelope's id and
        receipt time, for a fraction of the work. None when the line is anything else
        (malformed, invalid, blank, over a limit): ``block`` then says what, and stores it."""
        contract = self.checker.contract
        if contract is None:
            raise ValueError("Enveloper.event takes bare events: the checker needs a contract")
        route = self._entry(contract)
        try:
            value = decode(line, self.checker.limits)
        except ParseProblem:
            return None
        if not route.is_valid(value):
            return None
        uid, received_at, dt = self.clock.stamps([self.clock.reserve(1, received_ns)])[0]
        key = (contract.name, contract.version, dt)
        out = IngestBlock(bytes=len(line), lines=1)
        out.events[key] = bytearray(
            f'{{"id":"{uid}","received_at":"{received_at}{route.middle}'.encode()
            + line.strip()
            + b"}\n"
        )
        out.event_lines[key] = 1
        out.outcomes[(contract.name, str(contract.version), STORED)] = 1
        return out, uid, received_at

    def _envelopes(
        self, out: IngestBlock, valid: list[tuple[int, _Route, bytes]], base: int
    ) -> None:
        """Append the envelopes of the valid lines to ``out``, each with its line's stamp."""
        stamps = self.clock.stamps([base + at for at, _, _ in valid])
        events = out.events
        stored: dict[PartitionKey, int] = {}
        last: tuple[_Route, str] | None = None
        buffer = bytearray()
        key: PartitionKey = ("", 0, "")
        for (_, route, raw), (uid, received_at, dt) in zip(valid, stamps, strict=True):
            if last is None or last[0] is not route or last[1] != dt:
                last = (route, dt)
                key = (route.contract.name, route.contract.version, dt)
                buffer = events.setdefault(key, bytearray())
            buffer += f'{{"id":"{uid}","received_at":"{received_at}{route.middle}'.encode()
            buffer += raw
            buffer += b"}\n"
            stored[key] = stored.get(key, 0) + 1
        for key, count in stored.items():
            out.event_lines[key] += count
            out.outcomes[(key[0], str(key[1]), STORED)] += count

    def _invalid(
        self,
        out: IngestBlock,
        lines: list[bytes],
        at: int,
        payload: Any,
        route: _Route,
        source: str,
        first_line: int,
        base: int,
    ) -> None:
        contract = route.contract
        issues = explain(self.checker.registry.validator(contract), payload)
        self.dead(out, lines[at], source, first_line + at, "invalid", issues, contract.name,
                  contract.version, micros=base + at)  # fmt: skip

    def _entry(self, contract: Contract) -> _Route:
        entry = self._entries.get(contract)
        if entry is None:
            entry = self._entries[contract] = _Route(
                contract,
                self.checker.registry.validator(contract).is_valid,
                f'","contract":"{contract.name}","version":{contract.version},"payload":',
            )
        return entry

    def _raw_payloads(self, lines: list[bytes], index: int, count: int) -> list[Any] | None:
        """The payload bytes of routed events ``lines[index:index+count]``, in one call."""
        try:
            joined = b"\n".join(lines[index : index + count])
            return [item.payload for item in _raw_payload_lines(joined)]
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None  # some line is not routed; each is looked at on its own

    def _route(self, value: Any) -> _Route | EventFailure:
        """The route of a routed event the hot loop's cache did not answer, through
        ``Checker.route``; the common shape, ``{contract, version?, payload}``, is remembered
        (for contracts that exist only, and a bounded number of them)."""
        routed = self.checker.route(value)
        if isinstance(routed, EventFailure):
            return routed
        entry = self._entry(routed[0])
        name, version = value.get("contract"), value.get("version")
        if (
            len(value) == (2 if version is None else 3)
            and type(name) is str
            and len(self._routes) < 1024
        ):
            self._routes[(name, version, type(version))] = entry
        return entry

    def _unparsed(
        self,
        out: IngestBlock,
        data: bytes,
        source: str,
        first_line: int,
        index: int,
        problem: ParseProblem,
        base: int,
    ) -> None:
        forced = self.checker.contract
        self.dead(
            out,
            data,
            source,
            first_line + index,
            problem.reason,
            [Issue("", problem.rule, problem.message)],
            forced.name if forced else None,
            forced.version if forced else None,
            micros=base + index,
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
        *,
        micros: int | None = None,
    ) -> None:
        """Add a dead letter for ``data`` to ``out``, with its counts; stamped ``micros`` when
        given (a microsecond reserved for its line), else the clock's next stamp."""
        if micros is None:
            uid, received_at, dt = self.clock.next(self._received_ns)
        else:
            uid, received_at, dt = self.clock.stamps([micros])[0]
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
