"""Request bodies -> envelopes and dead letters (ready for the store) plus one answer per event.

No HTTP here: ``logkit.service.app`` reads the body and renders the answers. The work is done
by ingest's own ``Enveloper``, so an event posted to the service and the same event piped into
``logkit ingest`` are stored byte for byte alike. The Enveloper reads lines; a body that spans
lines (a pretty-printed event, an array) is first checked as strict JSON and then put on one line
(outside strings JSON whitespace is all a newline can be), and any dead letter is given back its
original bytes, so a dead letter always keeps the input exactly as received.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from logkit.errors import UnknownContractError
from logkit.ingest import Enveloper, IngestBlock, PartitionKey, dead_letter
from logkit.parse import Limits, ParseProblem, decode
from logkit.registry import NAME_RE, VERSION_RE, Contract, ContractRef, Registry
from logkit.results import Issue
from logkit.store.ids import IdClock
from logkit.validation import Checker

STORED = "stored"
#: The HTTP status an event's outcome maps to; any other dead-letter reason is a 400.
STATUS = {
    STORED: 200,
    "invalid": 422,
    "not_an_object": 422,
    "unknown_contract": 404,
    "too_large": 413,
}
#: Where Enveloper writes an envelope's id and receipt time: at the start of its line.
_HEAD = b'{"id":"'
_STAMP_KEY = b'","received_at":"'
_ID_START = len(_HEAD)
_ID_END = _ID_START + 36
_STAMP_START = _ID_END + len(_STAMP_KEY)
_STAMP_END = _STAMP_START + 27

_decode_record = msgspec.json.Decoder().decode
_raw_items = msgspec.json.Decoder(list[msgspec.Raw]).decode


@dataclass(slots=True)
class Answer:
    """What one event got: stored (``id`` is its envelope's) or dead-lettered (and why)."""

    reason: str  # "stored" or the dead-letter reason
    id: str
    received_at: str
    contract: str | None
    version: int | None
    errors: list[dict[str, Any]] | None = None

    @property
    def status(self) -> int:
        return STATUS.get(self.reason, 400)

    @property
    def stored(self) -> bool:
        return self.reason == STORED

    def as_dict(self) -> dict[str, Any]:
        if self.stored:
            return {
                "status": 200,
                "id": self.id,
                "received_at": self.received_at,
                "contract": self.contract,
                "version": self.version,
            }
        return {
            "status": self.status,
            "reason": self.reason,
            "contract": self.contract,
            "version": self.version,
            "errors": self.errors or [],
            "dead_letter": self.id,
        }


class BatchError(Exception):
    """A batch body that cannot be split into events at all (answered 400 as a whole)."""

    def __init__(self, problem: ParseProblem) -> None:
        super().__init__(problem.message)
        self.problem = problem


@dataclass
class Intake:
    """Turns request bodies into store lines with ingest's Enveloper; one per worker."""

    registry: Registry
    limits: Limits
    clock: IdClock = field(default_factory=IdClock)
    _bare: dict[tuple[str, int], Enveloper] = field(default_factory=dict)
    _routed: Enveloper | None = None
    #: Only names that resolved are remembered, so unknown names cannot grow it.
    _resolved: dict[tuple[str, str | None], Contract] = field(default_factory=dict)

    def _enveloper(self, contract: Contract | None) -> Enveloper:
        if contract is None:
            if self._routed is None:
                self._routed = self._new_enveloper(None)
            return self._routed
        key = (contract.name, contract.version)
        enveloper = self._bare.get(key)
        if enveloper is None:
            enveloper = self._bare[key] = self._new_enveloper(contract)
        return enveloper

    def _new_enveloper(self, contract: Contract | None) -> Enveloper:
        enveloper = Enveloper(Checker(self.registry, contract, self.limits))
        enveloper.clock = self.clock  # one clock per worker: ids increase in arrival order
        return enveloper

    def resolve(self, name: str, version: str | None) -> Contract:
        """The contract a URL names; UnknownContractError (with a hint) when there is none."""
        found = self._resolved.get((name, version))
        if found is None:
            found = self._resolved[(name, version)] = self._resolve(name, version)
        return found

    def _resolve(self, name: str, version: str | None) -> Contract:
        if not NAME_RE.match(name):
            raise UnknownContractError(
                f"{name!r} is not a contract name (lowercase letters, digits and '_', dots for "
                "namespaces); GET /contracts lists the contracts"
            )
        if version is not None and not VERSION_RE.match(version):
            raise UnknownContractError(
                f"{version!r} is not a version: versions are positive integers, e.g. /log/{name}/1"
            )
        return self.registry.get(ContractRef(name, int(version) if version else None))

    # -- one event -----------------------------------------------------------------------

    def single(
        self, name: str, version: str | None, body: bytes, source: str
    ) -> tuple[IngestBlock, Answer]:
        """One bare event posted to ``/log/{name}[/{version}]``."""
        try:
            contract = self.resolve(name, version)
        except UnknownContractError as exc:
            number = int(version) if version and VERSION_RE.match(version) else None
            out = self._dead(
                body, source, 1, "unknown_contract", str(exc), "unknown_contract", name, number
            )
            return out, self.answers(out, [1])[0]
        enveloper = self._enveloper(contract)
        line = self._one_line(body)
        if isinstance(line, ParseProblem):
            out = self._dead(
                body,
                source,
                1,
                line.reason,
                line.message,
                line.rule,
                contract.name,
                contract.version,
            )
        else:
            fast = enveloper.event(line)
            if fast is not None:  # valid: the common case, without block's bookkeeping
                out, uid, received_at = fast
                return out, Answer(STORED, uid, received_at, contract.name, contract.version)
            out = enveloper.block(line, 1, source)
            if line is not body:
                self._restore_raw(out, {1: body}, source)
        if out.lines == 0:  # an empty or blank body is not an event
            out = self._dead(
                body,
                source,
                1,
                "malformed_json",
                "empty event",
                "malformed_json",
                contract.name,
                contract.version,
            )
        return out, self.answers(out, [1])[0]

    # -- a batch -------------------------------------------------------------------------

    def jsonl(self, body: bytes, source: str) -> tuple[IngestBlock, list[Answer], list[int]]:
        """Routed events, one per line; answers in line order, with their line numbers."""
        out = self._enveloper(None).block(body, 1, source)
        lines = _event_lines(body)
        return out, self.answers(out, lines), lines

    def json(self, body: bytes, source: str) -> tuple[IngestBlock, list[Answer], list[int]]:
        """A JSON array of routed events (or one routed event); answers in array order, with
        their indexes. A body that is not strict JSON, or not an array or object, is refused
        whole (BatchError): its events cannot be told apart."""
        limits = Limits(max(len(body), 1), self.limits.max_depth + 1)
        try:
            value = decode(body, limits)
        except ParseProblem as problem:
            raise BatchError(problem) from problem
        if isinstance(value, dict):
            items = [body.strip()]
        elif isinstance(value, list):
            items = [bytes(raw) for raw in _raw_items(body)]
        else:
            raise BatchError(
                ParseProblem(
                    "not_an_object",
                    "a JSON batch is an array of routed events "
                    '([{"contract": ..., "payload": {...}}, ...])',
                    "type",
                )
            )
        flat = [_flatten(item) for item in items]
        out = self._enveloper(None).block(b"".join(item + b"\n" for item in flat), 1, source)
        originals = {i + 1: items[i] for i in range(len(items)) if flat[i] is not items[i]}
        if originals:
            self._restore_raw(out, originals, source)
        return out, self.answers(out, list(range(1, len(items) + 1))), list(range(len(items)))

    # -- reading the Enveloper's output --------------------------------------------------

    def answers(self, out: IngestBlock, lines: list[int]) -> list[Answer]:
        """One answer per event line, in order: envelope ids in id order fill the lines that
        did not become dead letters (ids from one clock increase in the order assigned)."""
        dead = {record["source"]["line"]: record for record in _dead_records(out)}
        stored = _stored(out.events)
        if len(stored) + len(dead) != len(lines):
            raise RuntimeError(
                f"{len(lines)} events in, {len(stored)} stored and {len(dead)} dead letters out"
            )
        if not dead:
            return [Answer(STORED, *head) for head in stored]
        answers: list[Answer] = []
        next_stored = iter(stored)
        for line in lines:
            record = dead.get(line)
            if record is None:
                answers.append(Answer(STORED, *next(next_stored)))
                continue
            answers.append(
                Answer(
                    record["reason"],
                    record["id"],
                    record["received_at"],
                    record["contract"],
                    record["version"],
                    record["errors"],
                )
            )
        return answers

    def _one_line(self, body: bytes) -> bytes | ParseProblem:
        if b"\n" not in body and b"\r" not in body:
            return body
        try:
            decode(body, self.limits)
        except ParseProblem as problem:
            if body.strip():
                return problem
        return _flatten(body)

    def _dead(
        self,
        body: bytes,
        source: str,
        line: int,
        reason: str,
        message: str,
        rule: str,
        contract: str | None,
        version: int | None,
    ) -> IngestBlock:
        out = IngestBlock(bytes=len(body), lines=1)
        # Enveloper._dead fills the buffers and the metric counters exactly as ingest does.
        self._enveloper(None).dead(
            out, body, source, line, reason, [Issue("", rule, message)], contract, version
        )
        return out

    def _restore_raw(self, out: IngestBlock, originals: dict[int, bytes], source: str) -> None:
        """Give dead letters of reflowed input their original bytes back."""
        for dt, buffer in list(out.dead.items()):
            records = bytes(buffer).split(b"\n")[:-1]
            changed = False
            for i, line in enumerate(records):
                record = _decode_record(line)
                original = originals.get(record["source"]["line"])
                if original is None:
                    continue
                issues = [Issue(e["path"], e["rule"], e["message"]) for e in record["errors"]]
                records[i] = dead_letter(
                    record["id"],
                    record["received_at"],
                    original,
                    record["reason"],
                    issues,
                    record["contract"],
                    record["version"],
                    source,
                    record["source"]["line"],
                ).rstrip(b"\n")
                changed = True
            if changed:
                out.dead[dt] = bytearray(b"\n".join(records) + b"\n")


def _flatten(data: bytes) -> bytes:
    """Strict JSON on one line: outside strings a CR or LF can only be whitespace (callers
    pass only data that parsed as strict JSON, or blank data)."""
    if b"\n" not in data and b"\r" not in data:
        return data
    return data.replace(b"\r", b" ").replace(b"\n", b" ")


def _event_lines(body: bytes) -> list[int]:
    """Numbers of the lines that are events (not blank), as the Enveloper counts them."""
    pieces = body.split(b"\n")
    if pieces and pieces[-1] == b"":
        pieces.pop()
    return [number for number, piece in enumerate(pieces, 1) if piece.strip()]


def _dead_records(out: IngestBlock) -> Iterable[dict[str, Any]]:
    for buffer in out.dead.values():
        for line in bytes(buffer).split(b"\n"):
            if line:
                yield _decode_record(line)


def _stored(events: dict[PartitionKey, bytearray]) -> list[tuple[str, str, str, int]]:
    """(id, received_at, contract, version) of every envelope, in the order ids were given."""
    found: list[tuple[str, str, str, int]] = []
    for (name, version, _dt), buffer in events.items():
        for line in bytes(buffer).split(b"\n"):
            if line:
                uid, stamp = _envelope_head(line)
                found.append((uid, stamp, name, version))
    if len(events) > 1:
        found.sort()  # ids of one clock increase in the order given
    return found


def _envelope_head(line: bytes) -> tuple[str, str]:
    """An envelope line's id and received_at, read where Enveloper writes them."""
    if line.startswith(_HEAD) and line[_ID_END:_STAMP_START] == _STAMP_KEY:
        return line[_ID_START:_ID_END].decode(), line[_STAMP_START:_STAMP_END].decode()
    record = _decode_record(line)  # the envelope's layout changed: read it properly
    return record["id"], record["received_at"]
