"""A batch of messages -> a block named by its messages (``logkit.kafkabatch``), without a
broker: the messages are plain objects with the accessors of confluent-kafka's Message."""

from __future__ import annotations

import json
from dataclasses import dataclass

from storekit import REGISTRY, make_lines, seq_of

from logkit.ingest import Enveloper, IngestBlock
from logkit.kafkabatch import envelope_batch
from logkit.registry import Registry
from logkit.validation import Checker

BASE_MS = 1_796_169_599_990  # 2026-12-01T23:59:59.990Z


@dataclass
class Message:
    data: bytes | None
    offset_: int
    stamp: tuple[int, int]
    partition_: int = 0

    def value(self) -> bytes | None:
        return self.data

    def topic(self) -> str:
        return "raw"

    def partition(self) -> int:
        return self.partition_

    def offset(self) -> int:
        return self.offset_

    def timestamp(self) -> tuple[int, int]:
        return self.stamp


def batch(with_timestamps: bool = True) -> list[Message]:
    lines = make_lines(60, seed=21, invalid_rate=0.3)
    messages = [
        Message(line.data, i, (1, BASE_MS + i) if with_timestamps else (0, -1), i % 3)
        for i, line in enumerate(lines)
    ]
    messages.insert(5, Message(None, 999, (1, BASE_MS)))  # a tombstone
    return messages


def outputs(block: IngestBlock) -> list[dict[str, object]]:
    found = [
        json.loads(line) for data in block.events.values() for line in bytes(data).splitlines()
    ]
    found += [json.loads(line) for data in block.dead.values() for line in bytes(data).splitlines()]
    return found


def enveloper() -> Enveloper:
    return Enveloper(Checker(Registry.load(REGISTRY)))


def test_outputs_are_named_by_their_messages() -> None:
    messages = batch()
    first = envelope_batch(enveloper(), messages, "kafka://h:1/raw")
    again = envelope_batch(enveloper(), messages, "kafka://h:1/raw")
    assert first.stored + first.dead_lettered == 60
    assert first.blank == 1
    # Read twice, the same envelopes: same ids, same stamps, same day folders.
    assert sorted(map(str, outputs(first))) == sorted(map(str, outputs(again)))
    assert set(first.events) == set(again.events)
    by_seq = {}
    for record in outputs(first):
        raw = record.get("raw")
        seq = seq_of((raw or json.dumps(record["payload"])).encode())  # type: ignore[arg-type]
        by_seq[seq] = record
        ms = BASE_MS + seq  # make_lines numbers from 0, one message per sequence number
        assert str(record["received_at"]).endswith(f".{ms % 1000 * 1000:06d}Z")
        assert str(record["id"]).startswith(f"{ms:012x}"[:8])
    assert len(by_seq) == 60
    assert len({r["id"] for r in by_seq.values()}) == 60
    assert {key[2] for key in first.events} == {"2026-12-01", "2026-12-02"}
    assert sum(first.event_lines.values()) == first.stored
    assert sum(first.dead_lines.values()) == first.dead_lettered
    for record in outputs(first):
        if "raw" in record:
            source = record["source"]
            assert isinstance(source, dict)
            assert (source["topic"], source["file"]) == ("raw", "kafka://h:1/raw")
            assert (
                messages[source["offset"] + (source["offset"] >= 5)].partition()
                == source["partition"]
            )


def test_messages_without_timestamps_keep_fresh_ids() -> None:
    messages = batch(with_timestamps=False)
    first = envelope_batch(enveloper(), messages, "kafka://h:1/raw")
    again = envelope_batch(enveloper(), messages, "kafka://h:1/raw")
    assert first.stored + first.dead_lettered == 60
    assert {r["id"] for r in outputs(first)}.isdisjoint({r["id"] for r in outputs(again)})
    for record in outputs(first):
        if "raw" in record:
            assert record["source"]["offset"] in range(60)  # type: ignore[index]
