"""Envelope ids and stamps: ``IdClock.stamps`` makes what ``next`` makes, many at a time."""

from __future__ import annotations

import json
import uuid

from logkit.store.ids import IdClock

# 2026-12-03T23:59:59.998000Z: a block read here crosses a second, a minute and a day.
JUST_BEFORE_MIDNIGHT_NS = 1_796_342_399_998_000_000


def _without_random_bits(stamp: tuple[str, str, str]) -> tuple[str, str, str]:
    uid, received_at, dt = stamp
    return uid[:19], received_at, dt  # time, version and sub-millisecond bits; not the rest


def test_reserved_stamps_equal_those_next_would_make() -> None:
    one_by_one, reserved = IdClock(), IdClock()
    expected = [one_by_one.next(JUST_BEFORE_MIDNIGHT_NS) for _ in range(5000)]
    first = reserved.reserve(5000, JUST_BEFORE_MIDNIGHT_NS)
    stamps = reserved.stamps(list(range(first, first + 5000)))
    assert [_without_random_bits(s) for s in stamps] == [_without_random_bits(s) for s in expected]
    assert stamps[0][1:] == ("2026-12-03T23:59:59.998000Z", "2026-12-03")
    assert stamps[-1][1:] == ("2026-12-04T00:00:00.002999Z", "2026-12-04")


def test_stamped_ids_are_uuid7_unique_and_increase_with_the_stamp() -> None:
    clock = IdClock()
    first = clock.reserve(3000, JUST_BEFORE_MIDNIGHT_NS)
    picked = list(range(first, first + 3000, 3))  # a block's valid lines: some of its lines
    ids = [uuid.UUID(uid) for uid, _, _ in clock.stamps(picked)]
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert len({u.int & ((1 << 62) - 1) for u in ids}) == len(ids)  # random bits differ


def test_a_reservation_moves_the_clock_past_it() -> None:
    clock = IdClock()
    first = clock.reserve(10, JUST_BEFORE_MIDNIGHT_NS)
    assert clock.reserve(1, JUST_BEFORE_MIDNIGHT_NS) == first + 10  # the same instant again
    after = clock.next(JUST_BEFORE_MIDNIGHT_NS)
    assert after[1] == "2026-12-03T23:59:59.998011Z"
    assert clock.stamps([]) == []


def test_heads_write_out_the_stamps_stamps_makes() -> None:
    by_stamps, by_heads = IdClock(), IdClock()
    first = by_stamps.reserve(5000, JUST_BEFORE_MIDNIGHT_NS)
    assert by_heads.reserve(5000, JUST_BEFORE_MIDNIGHT_NS) == first
    picked = [first + n for n in range(5000) if n % 7 != 3]  # a block's valid lines
    expected = by_stamps.stamps(picked)
    heads, dts = by_heads.heads(picked, '","contract":"search"}')
    written = [json.loads(head) for head in heads]
    assert [(w["id"][:19], w["received_at"], dt) for w, dt in zip(written, dts, strict=True)] == [
        _without_random_bits(s) for s in expected
    ]
    assert {w["contract"] for w in written} == {"search"}
    ids = [uuid.UUID(w["id"]) for w in written]
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert len({u.int & ((1 << 62) - 1) for u in ids}) == len(ids)  # random bits differ
    assert by_heads.heads([]) == ([], [])
