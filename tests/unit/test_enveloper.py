"""Ingest's Enveloper: each routed line's payload is stored as the bytes it arrived as."""

from __future__ import annotations

import json
import random
from pathlib import Path

import msgspec
import pytest

from logkit.ingest import Enveloper
from logkit.parse import Limits
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
        # A compact shape's start, then more: a key after the payload, a space after the "}".
        f'{{"contract":"click","version":1,"payload":{COMPACT},"id":"x"}}',
        f'{{"contract":"click","version":1,"payload":{COMPACT}}} ',
    ],
)
def test_a_routed_payload_is_stored_as_it_arrived(line: str) -> None:
    enveloper = Enveloper(Checker(REGISTRY))
    data = line.encode()
    # Twice in one block: the second line is routed by the cache of shapes the first filled;
    # after the commonest shape, whose compact lines are then known by their start.
    plain = f'{{"contract":"click","version":1,"payload":{COMPACT}}}'.encode()
    for block in (data + b"\n" + data, plain + b"\n" + data + b"\n" + data):
        out = Enveloper(Checker(REGISTRY)).block(block + b"\n", 1, "test")
        assert out.stored == block.count(b"\n") + 1
        assert out.dead_lettered == 0
        envelopes = bytes(next(iter(out.events.values()))).splitlines()
        for envelope, sent in zip(envelopes, block.split(b"\n"), strict=True):
            expected = bytes(msgspec.json.decode(sent, type=_Payload).payload)
            assert envelope.endswith(b'"payload":' + expected + b"}")
    out = enveloper.block(data + b"\n" + data + b"\n", 1, "test")
    for envelope in bytes(next(iter(out.events.values()))).splitlines():
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


def caps_registry(root: Path) -> Registry:
    """``flat`` caps a valid event's depth at 1, ``open`` lets it nest as deep as it likes."""
    schemas = {
        "flat": {"type": "object", "additionalProperties": False, "properties": {"a": {}}},
        "open": {"type": "object"},
    }
    for name, schema in schemas.items():
        (root / name).mkdir(parents=True)
        (root / name / "1.json").write_text(
            json.dumps({"$schema": "https://json-schema.org/draft/2020-12/schema", **schema})
        )
    return Registry.load(root)


@pytest.mark.parametrize("routed", [True, False])
@pytest.mark.parametrize("name", ["flat", "open"])
def test_too_deep_lines_are_found_whether_or_not_the_contract_caps_depth(
    tmp_path: Path, routed: bool, name: str
) -> None:
    registry = caps_registry(tmp_path / "registry")
    limits = Limits(max_depth=4)
    checker = Checker(registry, None if routed else registry.get(name), limits)

    def line(payload: object, contract: str = name) -> bytes:
        event = {"contract": contract, "version": 1, "payload": payload} if routed else payload
        return json.dumps(event).encode()

    # Routed, the envelope is a level: depth 4 is {"contract", "payload": {"a": [[]]}}.
    deep_payload = {"a": [[[[]]]]} if routed else {"a": [[[[[]]]]]}
    lines = {
        "ok": line({"a": 1}),
        "deep": line(deep_payload),  # valid under "open", invalid under "flat", too deep
        "deep_unknown": line(deep_payload, "nope"),
        "invalid": line({"a": 1, "b": 2}),
        "deepest_allowed": line({"a": [[]]} if routed else {"a": [[[]]]}),
    }
    if not routed:
        del lines["deep_unknown"]  # a bare event has no contract of its own
    enveloper = Enveloper(checker)
    for _ in range(2):  # the first block meets its contract while it is decoded; the next not
        out = enveloper.block(b"\n".join(lines.values()) + b"\n", 1, "test")
        records = [json.loads(r) for b in out.dead.values() for r in bytes(b).splitlines()]
        reasons = {r["source"]["line"]: r["reason"] for r in records}
        kinds = list(lines)
        expected = {kinds.index("deep") + 1: "too_deep"}
        if routed:
            expected[kinds.index("deep_unknown") + 1] = "too_deep"
        if name == "flat":
            expected[kinds.index("invalid") + 1] = "invalid"
        assert reasons == expected
        assert out.stored == len(lines) - len(expected)


@pytest.mark.parametrize("version", ["[1]", '{"v": 1}', '"1"', "1.0", "true", "null", "0"])
def test_any_version_value_gets_an_answer(version: str) -> None:
    # An unhashable version (a list, an object) once crashed the route cache's lookup.
    enveloper = Enveloper(Checker(REGISTRY))
    line = f'{{"contract":"click","version":{version},"payload":{COMPACT}}}'.encode()
    out = enveloper.block(line + b"\n" + line + b"\n", 1, "test")
    assert out.stored + out.dead_lettered == 2
    if version == "null":
        assert out.stored == 2  # no version: the latest
    else:
        assert out.dead_lettered == 2
        record = json.loads(bytes(next(iter(out.dead.values()))).splitlines()[0])
        assert (record["reason"], record["errors"][0]["rule"]) == ("invalid", "routing")


@pytest.mark.parametrize("crlf", [False, True])
@pytest.mark.parametrize("last", ["good", "bad", "bad_unterminated", "good_unterminated"])
def test_each_dead_letter_holds_its_line_exactly_wherever_the_block_ends(
    crlf: bool, last: str
) -> None:
    good = f'{{"contract":"click","version":1,"payload":{COMPACT}}}'
    bad = [
        good.replace('"position":3', '"position":-3'),  # invalid
        good[:70],  # malformed: a line cut short
        good.replace('"click"', '"nope"', 1),  # unknown contract
        "[1, 2]",  # not an object
    ]
    lines = [good, bad[0], good, bad[1], bad[2], good, bad[3]]
    lines.append(bad[0] if last.startswith("bad") else good)
    end = "\r" if crlf else ""
    text = "\n".join(line + end for line in lines)
    if not last.endswith("unterminated"):
        text += "\n"  # the last line of an input may end without a newline
    out = Enveloper(Checker(REGISTRY)).block(text.encode(), 1, "test")
    records = [json.loads(r) for b in out.dead.values() for r in bytes(b).splitlines()]
    expected = [(n, line + end) for n, line in enumerate(lines, 1) if line != good]
    assert [(r["source"]["line"], r["raw"]) for r in records] == expected
    assert out.stored == lines.count(good)
    envelopes = [json.loads(e) for b in out.events.values() for e in bytes(b).splitlines()]
    assert [e["payload"] for e in envelopes] == [json.loads(COMPACT)] * lines.count(good)


def test_a_cut_line_over_the_limit_is_one_dead_letter_with_its_first_bytes() -> None:
    limits = Limits(max_line_bytes=100)
    cut = b'{"contract":"click","payload":' + b"x" * 71  # the limit plus one byte
    for block in (cut + b"\n", cut):  # the last line of an input may end without a newline
        out = Enveloper(Checker(REGISTRY, None, limits)).block(block, 7, "test", cut_size=5000)
        (record,) = [json.loads(r) for b in out.dead.values() for r in bytes(b).splitlines()]
        assert (record["reason"], record["raw"]) == ("too_large", cut.decode())
        assert record["source"]["line"] == 7
        assert "5,000 bytes" in record["errors"][0]["message"]


def test_lines_of_shapes_that_alternate_are_each_routed_by_their_own() -> None:
    search = json.dumps(
        {
            "user_id": "u_2",
            "query_id": "5b4c1a2e-9d3f-4e8a-b7c6-0123456789ab",
            "raw_query": "boots",
            "results": [],
        },
        separators=(",", ":"),
    )
    shapes = [
        ('{{"contract":"click","version":1,"payload":{}}}', COMPACT, ("click", 1)),
        ('{{"contract":"search","version":2,"payload":{}}}', search, ("search", 2)),
        ('{{"contract":"search","version":1,"payload":{}}}', search, ("search", 1)),
        ('{{"contract":"click","payload":{}}}', COMPACT, ("click", 1)),
        ('{{"contract":"search","payload":{}}}', search, ("search", 2)),
    ]
    rng = random.Random(3)
    picks = [rng.randrange(len(shapes)) for _ in range(400)]
    block = "".join(shapes[p][0].format(shapes[p][1]) + "\n" for p in picks).encode()
    enveloper = Enveloper(Checker(REGISTRY))
    for _ in range(2):  # the first block learns the shapes, the second meets them known
        out = enveloper.block(block, 1, "test")
        assert out.dead_lettered == 0
        stored = {
            (name, version): [json.loads(e) for e in bytes(data).splitlines()]
            for (name, version, _dt), data in out.events.items()
        }
        for key, envelopes in stored.items():
            sent = [shapes[p][1] for p in picks if shapes[p][2] == key]
            assert [json.dumps(e["payload"], separators=(",", ":")) for e in envelopes] == sent
        assert sum(map(len, stored.values())) == len(picks)
