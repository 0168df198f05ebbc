"""The service's intake in-process: request bodies to store lines and per-event answers."""

from __future__ import annotations

import json

from serving import CLICK, EXAMPLE_REGISTRY, SEARCH

from logkit.parse import Limits
from logkit.registry import Registry
from logkit.service import intake as intake_module
from logkit.service.intake import Intake
from logkit.validation import MAX_ROUTES

REGISTRY = Registry.load(EXAMPLE_REGISTRY)


def records(buffers: dict[object, bytearray]) -> list[dict[str, object]]:
    return [json.loads(line) for b in buffers.values() for line in bytes(b).splitlines()]


def test_answers_follow_the_input_order_across_partitions_and_dead_letters() -> None:
    intake = Intake(REGISTRY, Limits())
    lines = []
    for n in range(30):
        if n % 3 == 0:
            lines.append({"contract": "search", "payload": {**SEARCH, "raw_query": str(n)}})
        elif n % 3 == 1:
            lines.append({"contract": "click", "payload": {**CLICK, "position": n}})
        else:
            lines.append({"contract": "click", "payload": {**CLICK, "position": -n}})
    body = "".join(json.dumps(line) + "\n" for line in lines).encode()
    out, answers, numbers = intake.jsonl(body, "test")
    assert numbers == list(range(1, 31))
    stored = {r["id"]: r for r in records(out.events)}
    dead = {r["id"]: r for r in records(out.dead)}
    for n, answer in enumerate(answers):
        if n % 3 == 2:
            assert answer.status == 422
            assert dead[answer.id]["source"] == {"file": "test", "line": n + 1}
        else:
            payload = stored[answer.id]["payload"]
            assert payload == lines[n]["payload"], n


def test_a_reflowed_event_keeps_its_original_bytes_in_its_dead_letter() -> None:
    intake = Intake(REGISTRY, Limits())
    body = json.dumps({**CLICK, "position": -1}, indent=4).encode() + b"\r\n"
    out, answer = intake.single("click", None, body, "test")
    assert answer.reason == "invalid"
    (record,) = records(out.dead)
    assert record["raw"].encode() == body


def test_an_envelope_layout_it_does_not_know_is_read_as_json() -> None:
    line = b'{"received_at":"2026-12-03T17:54:29.123456Z","id":"x","payload":{}}'
    assert intake_module._envelope_head(line) == ("x", "2026-12-03T17:54:29.123456Z")


def test_unknown_routes_are_not_remembered_without_end() -> None:
    intake = Intake(REGISTRY, Limits())
    for start in range(0, 3 * MAX_ROUTES, 5_000):
        body = "".join(
            json.dumps({"contract": f"nope{n}", "payload": {}}) + "\n"
            for n in range(start, start + 5_000)
        ).encode()
        _out, answers, _ = intake.jsonl(body, "test")
        assert {a.reason for a in answers} == {"unknown_contract"}
        routes = intake._enveloper(None).checker._routes
        assert len(routes) <= MAX_ROUTES


def _without_stamps(out: object) -> dict[str, object]:
    """An IngestBlock's fields, with each envelope's id and received_at blanked."""
    fields = dict(vars(out))
    fields["events"] = {
        key: [{**json.loads(line), "id": "", "received_at": ""} for line in bytes(b).splitlines()]
        for key, b in fields["events"].items()
    }
    return fields


def test_the_single_event_fast_path_is_block_for_valid_events_and_declines_the_rest() -> None:
    intake = Intake(REGISTRY, Limits(max_line_bytes=600, max_depth=8))
    enveloper = intake._enveloper(intake.resolve("search", None))
    valid = [
        json.dumps(SEARCH).encode(),
        b"  " + json.dumps(SEARCH, separators=(",", ":")).encode() + b" \t",
        json.dumps(
            {**SEARCH, "raw_query": "caf\u00e9 \\u00e9 \U0001f600"}, ensure_ascii=False
        ).encode(),
    ]
    declined = [
        json.dumps({**SEARCH, "raw_query": 7}).encode(),  # invalid
        json.dumps(SEARCH)[:-1].encode(),  # malformed
        json.dumps(SEARCH).replace('"user_id"', '"user_id": "u_dup", "user_id"', 1).encode(),
        json.dumps({**SEARCH, "raw_query": "x" * 600}).encode(),  # over max_line_bytes
        json.dumps({**SEARCH, "extra": [[[[[[[[[1]]]]]]]]]}).encode(),  # over max_depth
        b"   ",
        b"",
        b"[1, 2]",
    ]
    for body in valid:
        fast = enveloper.event(body)
        assert fast is not None, body
        out, uid, received_at = fast
        (line,) = bytes(next(iter(out.events.values()))).splitlines()
        envelope = json.loads(line)
        assert (envelope["id"], envelope["received_at"]) == (uid, received_at)
        assert line.endswith(b'"payload":' + body.strip() + b"}")  # the bytes as they came
        assert _without_stamps(out) == _without_stamps(enveloper.block(body, 1, "t")), body
    for body in declined:
        assert enveloper.event(body) is None, body
        assert intake.single("search", None, body, "t")[1].reason != "stored", body
