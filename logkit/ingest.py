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
from functools import partial
from io import BytesIO
from itertools import chain
from typing import Any

import msgspec

from logkit.explain import explain
from logkit.parse import BlockDecoder, ParseProblem, decode, deeper_than, too_deep, too_large
from logkit.registry import Contract
from logkit.results import EventFailure, Issue
from logkit.store.ids import IdClock
from logkit.validation import Checker, depth_bound

STORED = "stored"
DEAD = "dead_letter"

PartitionKey = tuple[str, int, str]  # contract, version, dt


class _RawPayload(msgspec.Struct):
    payload: msgspec.Raw


_raw_payload_decoder = msgspec.json.Decoder(_RawPayload)
_raw_payload = _raw_payload_decoder.decode
_raw_payload_lines = _raw_payload_decoder.decode_lines
_encode = msgspec.json.encode
_NEWLINE = ord("\n")


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


@dataclass(frozen=True, slots=True, eq=False)  # hashed by identity: one per contract
class _Route:
    """What the hot loop needs of a contract: its validator and its envelope text."""

    contract: Contract
    is_valid: Callable[[Any], bool]
    #: The envelope's text between ``received_at`` and the payload.
    middle: str
    #: Whether no event valid under the contract nests deeper than the limit, as the line it
    #: comes in (routed or bare).
    capped: bool


@dataclass(frozen=True, slots=True, eq=False)
class _Compact:
    """A routed shape seen before, found by the text its compact lines start with."""

    route: _Route
    head: bytes  # that text: the payload starts after it
    skip: int  # its length
    keys: int  # how many keys an event of this shape has


class Enveloper:
    """Validates lines with a Checker and turns them into store lines."""

    def __init__(self, checker: Checker, source_name: str | None = None) -> None:
        self.checker = checker
        self.clock = IdClock()
        self._received_ns: int | None = None
        #: Routed events' shapes seen, ``(contract, version, type(version))``, with their route.
        self._routes: dict[tuple[str, Any, type], _Route] = {}
        #: The same shapes by the text a compact line of each starts with, up to its payload.
        self._compact: dict[bytes, _Compact] = {}
        self._entries: dict[Contract, _Route] = {}
        #: Whether blocks are decoded with their depth measured: once a contract in use is not
        #: capped (a routed block decoded before its route was known measures its own lines).
        self._check_depth = False

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
        if block and block[-1] != _NEWLINE:
            block += b"\n"  # the last line of an input that does not end with one
        # Each line with its "\n" (a dead letter's raw line is without it): BytesIO finds the
        # ends of lines with memchr, three times as fast as bytes.split looks at every byte.
        lines = BytesIO(block).readlines()
        # Line i of the block is stamped base + i (a block of n lines takes n microseconds,
        # as the reader's stamps allot); stamps are made once the valid lines are known.
        base = self.clock.reserve(len(lines), received_ns)
        if cut_size:
            out.lines = 1
            problem = too_large(cut_size, self.checker.limits)
            self._dead_letters(out, [self._unparsed(lines[0][:-1], 0, problem)], base, source,
                               first_line)  # fmt: skip
            return out
        limits = self.checker.limits
        forced = None if self.checker.contract is None else self._entry(self.checker.contract)
        # Depth is measured by the decoder only while some contract in use lets a valid event
        # nest deeper than the limit; otherwise only the events that are not valid can be too
        # deep, and only they are measured (before anything else is said of them).
        decoder = BlockDecoder(block, limits, check_depth=self._check_depth)
        unchecked = not self._check_depth
        # The valid lines per route: their reserved microseconds and the ends of their
        # envelopes (the payload's bytes, then "}\n").
        valid: dict[_Route, tuple[list[int], list[bytes]]] = {}

        def keep(route: _Route, at: int, tail: bytes) -> None:
            group = valid.get(route)
            if group is None:
                group = valid[route] = ([], [])
            group[0].append(base + at)
            group[1].append(tail)

        # Dead letters are written once the block is decoded, in input order: explaining them
        # among the decoding ran at half the speed (the decoder's work evicts theirs).
        later: list[Callable[[], _Dead]] = []
        defer = later.append

        def too_deep_at(at: int, value: Any) -> bool:
            """Whether line ``at``, not measured by the decoder, is too deep (its dead letter
            then deferred): asked before anything else is said of a line not stored."""
            line = lines[at]
            # A line with no more brackets than the limit (in strings or not) is not too deep.
            if (
                unchecked
                and line.count(b"{") + line.count(b"[") > limits.max_depth
                and deeper_than(value, limits.max_depth)
            ):
                problem = too_deep(limits)
                defer(partial(self._unparsed, line[:-1], at, problem))
                return True
            return False

        # The shape of the last compact line routed (no line of JSON text starts with 0xff).
        last: _Compact | None = None
        last_head = b"\xff"
        last_micros: list[int] = []  # and the lists its stored lines go to (see keep)
        last_tails: list[bytes] = []
        for index, values in decoder:
            if isinstance(values, ParseProblem):
                out.lines += 1
                defer(partial(self._unparsed, lines[index][:-1], index, values))
                continue
            out.lines += len(values)
            if forced is not None:
                for at, ok in enumerate(map(forced.is_valid, values), index):
                    if ok:
                        keep(forced, at, lines[at].strip() + _END)
                    elif not too_deep_at(at, values[at - index]):
                        defer(partial(self._invalid, lines[at], values[at - index], forced, at))
                continue
            raws: list[Any] | None = None  # the payloads' bytes by a second decode, if needed
            routes, compact = self._routes, self._compact
            # In compact lines, the payload is all that follows its key: the line ends with
            # the payload, the routed event's "}" and "\n", and so does its envelope.
            tight = decoder.compact
            for at, value in enumerate(values, index):
                line = lines[at]
                # A compact line of a shape seen before: its text up to the payload names its
                # route, and what follows, up to the last "}", is the payload as it came. Most
                # lines have the shape of the line before: a prefix test, no slice to look up.
                if line.startswith(last_head):
                    known = last
                else:
                    known = compact.get(line[: line.find(b'"payload":') + 10])
                    if known is not None:
                        last, last_head = known, known.head
                        group = valid.get(known.route)
                        if group is None:
                            group = valid[known.route] = ([], [])
                        last_micros, last_tails = group
                if (
                    known is not None
                    and len(value) == known.keys
                    and (tight or line.endswith(b"}\n"))
                ):
                    route, payload = known.route, value["payload"]
                    ok = route.is_valid(payload)
                    if ok and (route.capped or not unchecked):
                        # keep(), written out for the commonest line: the lists of its route
                        last_micros.append(base + at)
                        last_tails.append(
                            line[known.skip :] if tight else line[known.skip : -2].strip() + _END
                        )
                        continue
                else:
                    known = None
                    hit: _Route | None = None
                    if type(value) is dict and "payload" in value and len(value) <= 3:
                        name, version = value.get("contract"), value.get("version")
                        if type(name) is str and (
                            len(value) == 2
                            if version is None
                            else len(value) == 3 and type(version) is int
                        ):
                            # True == 1 in Python: a bool version never shares version 1's.
                            hit = routes.get((name, version, type(version)))
                    if hit is None:
                        found = self._route(value)
                        if isinstance(found, EventFailure):
                            if too_deep_at(at, value):
                                continue
                            defer(partial(_ready, at, line[:-1], found.reason, found.issues,
                                          found.contract, found.version))  # fmt: skip
                            continue
                        hit = found
                    route, payload = hit, value["payload"]
                    ok = route.is_valid(payload)
                if not ok or (unchecked and not route.capped):
                    if too_deep_at(at, value):
                        continue
                    if not ok:
                        defer(partial(self._invalid, line, payload, route, at))
                        continue
                if known is not None:
                    keep(
                        route,
                        at,
                        line[known.skip :] if tight else line[known.skip : -2].strip() + _END,
                    )
                    continue
                if raws is None:
                    raws = self._raw_payloads(lines, index, len(values))
                raw = raws[at - index] if raws is not None else _raw_payload(line).payload
                keep(route, at, bytes(raw) + _END)
        if later:
            self._dead_letters(out, [make() for make in later], base, source, first_line)
        self._envelopes(out, valid)
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
        uid, received_at, dt = self.clock.next(received_ns)
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
        self, out: IngestBlock, valid: dict[_Route, tuple[list[int], list[bytes]]]
    ) -> None:
        """Append the envelopes of the valid lines to ``out``: per route, the microseconds
        reserved for its lines (ascending) and the ends of their envelopes.

        Per route, the envelopes' starts are made in one call and joined with their ends in
        a few C-level calls: ``head + payload + "}\n"`` for each, in input order."""
        for route, (micros, tails) in valid.items():
            if not micros:  # a route whose lines were all dead letters
                continue
            heads, dts = self.clock.heads(micros, route.middle)
            for start, end in _runs(dts):  # one per dt: a block read over midnight has two
                key = (route.contract.name, route.contract.version, dts[start])
                starts = map(str.encode, heads[start:end])
                # One join into a bytearray: half the time of extending one piece by piece (it
                # grows a bit at a time), and no block-sized bytes copied again, as b"".join.
                envelopes = bytearray().join(
                    chain.from_iterable(zip(starts, tails[start:end], strict=True))
                )
                buffer = out.events.get(key)
                if buffer is None:
                    out.events[key] = envelopes
                else:
                    buffer += envelopes
                out.event_lines[key] += end - start
                out.outcomes[(key[0], str(key[1]), STORED)] += end - start

    def _invalid(self, line: bytes, payload: Any, route: _Route, at: int) -> _Dead:
        contract = route.contract
        issues = explain(self.checker.registry.validator(contract), payload)
        return at, line[:-1], "invalid", issues, contract.name, contract.version

    def _entry(self, contract: Contract) -> _Route:
        entry = self._entries.get(contract)
        if entry is None:
            wrapper = 0 if self.checker.contract is not None else 1  # a routed event's level
            bound = depth_bound(self.checker.registry, contract) + wrapper
            entry = self._entries[contract] = _Route(
                contract,
                self.checker.registry.validator(contract).is_valid,
                f'","contract":"{contract.name}","version":{contract.version},"payload":',
                bound <= self.checker.limits.max_depth,
            )
            self._check_depth = self._check_depth or not entry.capped
        return entry

    def _raw_payloads(self, lines: list[bytes], index: int, count: int) -> list[Any] | None:
        """The payload bytes of routed events ``lines[index:index+count]``, in one call."""
        try:
            joined = b"".join(lines[index : index + count])
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
            head = _head(name, version)
            if head != b"\0":
                self._compact[head] = _Compact(entry, head, len(head), len(value))
        return entry

    def _unparsed(self, data: bytes, at: int, problem: ParseProblem) -> _Dead:
        forced = self.checker.contract
        return (
            at,
            data,
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
        *,
        micros: int | None = None,
    ) -> None:
        """Add a dead letter for ``data`` to ``out``, with its counts; stamped ``micros`` when
        given (a microsecond reserved for its line), else the clock's next stamp."""
        if micros is None:
            micros = self.clock.reserve(1, self._received_ns)
        self._dead_letters(out, [(0, data, reason, issues, contract, version)], micros, source,
                           line)  # fmt: skip

    def _dead_letters(
        self, out: IngestBlock, dead: list[_Dead], base: int, source: str, first_line: int
    ) -> None:
        """Add the dead letters of lines ``first_line + at`` to ``out``, with their counts, each
        stamped ``base + at``, as ``dead`` would one by one: their stamps are written out in
        one call, as the envelopes' are."""
        heads, dts = self.clock.heads([base + each[0] for each in dead], '",')
        outcomes, rules = out.outcomes, out.rules
        for head, dt, (at, data, reason, issues, contract, version) in zip(
            heads, dts, dead, strict=True
        ):
            buffer = out.dead.get(dt)
            if buffer is None:
                buffer = out.dead[dt] = bytearray()
            buffer += head.encode()
            # The record after its id and received_at: what follows its "{".
            buffer += memoryview(
                _dead_record(data, reason, issues, contract, version, source, first_line + at)
            )[1:]
            buffer += b"\n"
            out.dead_lines[dt] += 1
            label_contract = contract or "-"
            label_version = str(version) if version is not None else "-"
            outcomes[(label_contract, label_version, f"{DEAD}:{reason}")] += 1
            for issue in issues:
                rules[(label_contract, label_version, issue.rule)] += 1


_END = b"}\n"  # what ends each envelope, after its payload

#: A dead letter to write: its line's index in the block, its bytes (without the newline), its
#: reason and errors, and its contract and version when known.
_Dead = tuple[int, bytes, str, list[Issue], str | None, int | None]


def _ready(*dead: Any) -> _Dead:
    """A dead letter already known, for the block's list of those to write."""
    return dead


def _runs(dts: list[str]) -> list[tuple[int, int]]:
    """``(start, end)`` of each run of equal dts (they only grow: usually there is one)."""
    if not dts or dts[0] == dts[-1]:
        return [(0, len(dts))]
    runs, start = [], 0
    for index in range(1, len(dts)):
        if dts[index] != dts[start]:
            runs.append((start, index))
            start = index
    runs.append((start, len(dts)))
    return runs


def _head(name: str, version: Any) -> bytes:
    """The text a compact routed event with these fields starts with, up to its payload."""
    if version is None:
        return b'{"contract":' + _encode(name) + b',"payload":'
    if type(version) is not int:
        return b"\0"  # no line starts with it: such an event's payload is decoded on its own
    return b'{"contract":' + _encode(name) + b',"version":' + str(version).encode() + b',"payload":'


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
    record = _dead_record(data, reason, issues, contract, version, source, line, **extra)
    return (
        b'{"id":' + _encode(uid) + b',"received_at":' + _encode(received_at) + b","
        + record[1:] + b"\n"
    )  # fmt: skip


def _dead_record(
    data: bytes,
    reason: str,
    issues: list[Issue],
    contract: str | None,
    version: int | None,
    source: str | None,
    line: int | None,
    **extra: Any,
) -> bytes:
    """A dead-letter record without its id and received_at, which come first in it."""
    record: dict[str, Any] = {
        "contract": contract,
        "version": version,
        "reason": reason,
        "errors": issues,  # msgspec writes each Issue as {path, rule, message}
    }
    try:
        record["raw"] = data.decode("utf-8")
    except UnicodeDecodeError:
        record["raw_base64"] = base64.b64encode(data).decode("ascii")
    if source is not None:
        record["source"] = {"file": source, "line": line}
    record.update(extra)
    return _encode(record)
