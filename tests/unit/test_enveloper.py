"""Ingest's Enveloper: each routed line's payload is stored as the bytes it arrived as."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from logkit.ingest import Enveloper
from logkit.registry import Registry
from logkit.validation import Checker

REGISTRY = Registry.load(Path(__file__).resolve().parents[2] / "registry")
CLICK = (
    '{"user_id": "u_1", "query_id": "5b4c1a2e-9d3f-4e8a-b7c6-0123456789ab", '
    '"document_id": "doc_7", "position": 3, "clicked_at": "2026-12-03T10:00:01.000Z"}'
)
COMPACT = json.dumps(json.loads(CLICK), separators=(",", ":"))
ESCAPED = COMPACT.replace("u_1", 'u_\\u00e9 \\"q\\"')  # the user id u_é "q", escaped


class _Payload(msgspec.Struct):
    payload: msgspec.Raw


@pytest.mark.parametrize(
    "line",
    [
        f'{{"contract":"click","version":1,"payload":{COMPACT}}}',
        f'{{"contract":"click","payload":{COMPACT}}}',
        f'{{"contract":"click","version":1,"payload": {CLICK} }}',
        f'{{"contract":"click","version":1,"payload":\t{COMPACT}\t}}\r',
        f'{{"version":1,"contract":"click","payload":{COMPACT}}}',
        f'{{"payload":{COMPACT},"contract":"click","version":1}}',
        f'{{"contract":"\\u0063lick","version":1,"payload":{COMPACT}}}',
        f'{{ "contract" : "click" , "version" : 1 , "payload" : {CLICK} }}',
        f'{{"contract":"click","version":1,"payload":{ESCAPED}}}',
    ],
)
def test_a_routed_payload_is_stored_as_it_arrived(line: str) -> None:
    enveloper = Enveloper(Checker(REGISTRY))
    data = line.encode()
    # Twice in one block: the second line is routed by the cache of shapes the first filled.
    out = enveloper.block(data + b"\n" + data + b"\n", 1, "test")
    assert (out.stored, out.dead_lettered) == (2, 0)
    expected = bytes(msgspec.json.decode(data, type=_Payload).payload)
    for envelope in bytes(next(iter(out.events.values()))).splitlines():
        assert envelope.endswith(b'"payload":' + expected + b"}")
        assert json.loads(envelope)["payload"] == json.loads(CLICK) | (
            {"user_id": 'u_\u00e9 "q"'} if "00e9" in line else {}
        )


def test_a_block_read_just_before_midnight_fills_both_days_partitions() -> None:
    enveloper = Enveloper(Checker(REGISTRY))
    line = f'{{"contract":"click","version":1,"payload":{COMPACT}}}\n'.encode()
    # 2026-12-03T23:59:59.999000Z: a block of 3,000 lines takes 3,000 microseconds.
    out = enveloper.block(line * 3000, 1, "test", received_ns=1_796_342_399_999_000_000)
    assert dict(out.event_lines) == {
        ("click", 1, "2026-12-03"): 1000,
        ("click", 1, "2026-12-04"): 2000,
    }
    for (_, _, dt), buffer in out.events.items():
        stamps = [json.loads(e)["received_at"] for e in bytes(buffer).splitlines()]
        assert len(stamps) == out.event_lines[("click", 1, dt)]
        assert all(stamp.startswith(dt) for stamp in stamps)
        assert stamps == sorted(stamps)
    assert out.outcomes == {("click", "1", "stored"): 3000}


def test_dead_letters_of_every_kind_keep_input_order_and_their_line_stamps() -> None:
    enveloper = Enveloper(Checker(REGISTRY))
    good = f'{{"contract":"click","version":1,"payload":{COMPACT}}}'
    bad = {
        3: good.replace('"position":3', '"position":-3'),  # invalid
        5: good[:70],  # malformed: a line cut short
        6: good.replace('"click"', '"nope"', 1),  # unknown contract
        9: "[1, 2]",  # not an object
        12: good.replace('"position":3', '"position":"3"'),  # invalid
    }
    lines = [bad.get(number, good) for number in range(1, 15)]
    out = enveloper.block("\n".join(lines).encode() + b"\n", 1, "test", 1_796_300_000_000_000_000)
    assert (out.stored, out.dead_lettered) == (14 - len(bad), len(bad))
    records = [json.loads(line) for b in out.dead.values() for line in bytes(b).splitlines()]
    assert [r["source"]["line"] for r in records] == sorted(bad)
    assert [r["reason"] for r in records] == [
        "invalid",
        "malformed_json",
        "unknown_contract",
        "not_an_object",
        "invalid",
    ]
    # Each line is stamped with its own reserved microsecond, whatever it became.
    micros = [int(r["received_at"][20:26]) for r in records]
    assert micros == [number - 1 for number in sorted(bad)]
