"""A batch of Kafka messages -> an ``IngestBlock`` whose outputs are named by their messages.

Each message is one raw event, enveloped by ingest's own ``Enveloper``. Then every envelope and
dead letter is restamped from its message: ``received_at`` is the message's Kafka timestamp
(CreateTime or LogAppendTime, as the topic is configured) and the ``id`` a UUIDv7 of that
millisecond whose other bits hash the topic, partition and offset. A message read twice (at
least once: a crash between a write and its commit) so becomes the same envelope twice, same id,
same partition folder: a duplicate by id, which an idempotent sink skips. Dead letters name
their topic, partition and offset instead of a line. No I/O, no printing.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import msgspec

from logkit.ingest import Enveloper, IngestBlock, PartitionKey
from logkit.store.ids import stable_id

_decode = msgspec.json.decode
_encode = msgspec.json.encode
# An envelope line starts {"id":"<36>","received_at":"<27>","contract":...
_AT = slice(43, 60)
_AT_TEXT = b'","received_at":"'
_REST = 87


def envelope_batch(enveloper: Enveloper, messages: list[Any], source: str) -> IngestBlock:
    """The batch as one block of lines (message ``i`` on line ``i + 1``), restamped."""
    values = []
    for message in messages:
        value = message.value() or b""
        # A message is one event: line breaks inside it are JSON whitespace, not separators.
        values.append(value.replace(b"\n", b" ") if b"\n" in value else value)
    block = enveloper.block(b"\n".join(values) + b"\n", 1, source)
    origin = _origins(block, messages, values)
    return _restamp(block, messages, origin, source)


def _origins(block: IngestBlock, messages: list[Any], values: list[bytes]) -> dict[str, Any]:
    """Fresh id -> its message. The ids of one block increase in input order, so sorted they
    line up with the block's non-empty messages. If anything does not add up (a count, a dead
    letter's line, a message without a timestamp, an unexpected line layout), nothing is
    restamped: the fresh ids stay, unique but not stable."""
    fresh = [
        bytes(line[7:43]).decode()
        for data in (*block.events.values(), *block.dead.values())
        for line in bytes(data).splitlines()
    ]
    fresh.sort()
    used = [m for m, v in zip(messages, values, strict=True) if v.strip()]
    if len(used) != len(fresh):
        return {}
    origin = dict(zip(fresh, used, strict=True))
    for message in used:
        kind, stamp = message.timestamp()
        if kind == 0 or stamp < 0:  # TIMESTAMP_NOT_AVAILABLE
            return {}
    for data in block.events.values():
        for line in bytes(data).splitlines():
            if line[_AT] != _AT_TEXT or line[_REST - 1 : _REST] != b"Z":
                return {}
    for data in block.dead.values():
        for line in bytes(data).splitlines():
            record = _decode(line)
            if origin[record["id"]] is not messages[record["source"]["line"] - 1]:
                return {}
    return origin


class _Stamps:
    """``(id, received_at, dt)`` of a message, with the date text cached per second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""
        self._dt = ""

    def of(self, message: Any) -> tuple[str, str, str]:
        stamp = message.timestamp()[1]
        second, ms = divmod(stamp, 1000)
        if second != self._second:
            self._second = second
            moment = datetime.fromtimestamp(second, UTC)
            self._prefix = moment.strftime("%Y-%m-%dT%H:%M:%S")
            self._dt = moment.strftime("%Y-%m-%d")
        name = f"{message.topic()}\0{message.partition()}\0{message.offset()}".encode()
        return stable_id(name, stamp), f"{self._prefix}.{ms * 1000:06d}Z", self._dt


def _restamp(
    block: IngestBlock, messages: list[Any], origin: dict[str, Any], source: str
) -> IngestBlock:
    stamps = _Stamps()
    events: dict[PartitionKey, bytearray] = {}
    event_lines: Counter[PartitionKey] = Counter()
    for (name, version, dt), data in block.events.items():
        for line in bytes(data).splitlines(keepends=True):
            message = origin.get(bytes(line[7:43]).decode())
            if message is None:
                key = (name, version, dt)
                events.setdefault(key, bytearray()).extend(line)
            else:
                uid, received_at, day = stamps.of(message)
                key = (name, version, day)
                events.setdefault(key, bytearray()).extend(
                    b'{"id":"%s%s%s%s'
                    % (uid.encode(), _AT_TEXT, received_at.encode(), line[_REST:])
                )
            event_lines[key] += 1
    dead: dict[str, bytearray] = {}
    dead_lines: Counter[str] = Counter()
    for dt, data in block.dead.items():
        for line in bytes(data).splitlines():
            record = _decode(line)
            message = messages[record["source"]["line"] - 1]
            day = dt
            if origin:
                record["id"], record["received_at"], day = stamps.of(message)
            record["source"] = {
                "file": source,
                "topic": message.topic(),
                "partition": message.partition(),
                "offset": message.offset(),
            }
            dead.setdefault(day, bytearray()).extend(_encode(record) + b"\n")
            dead_lines[day] += 1
    block.events, block.event_lines = events, event_lines
    block.dead, block.dead_lines = dead, dead_lines
    return block
