"""Envelope ids (UUIDv7, RFC 9562) and ``received_at`` stamps, fast enough for the hot path."""

from __future__ import annotations

import hashlib
import random
import time
from bisect import bisect_left
from datetime import UTC, datetime

# The module-level generator is seeded from the OS and reseeded in a forked child, so worker
# processes never share random bits; ids need uniqueness, not secrecy.
_random_bits = random.getrandbits
# The 12 bits after the version: the microseconds within a millisecond, scaled to 0..4095.
_SUB_MS = [f"{micros * 4096 // 1000:03x}" for micros in range(1000)]
_DIGITS3 = [f"{n:03d}" for n in range(1000)]
# Per 64-bit group of random bits: keep the low 62, set the variant bits (10).
_LOW62 = b"\x3f" + b"\xff" * 7
_VARIANT = b"\x80" + b"\x00" * 7


class IdClock:
    """Hands out ``(id, received_at, dt)`` for each event.

    Each stamp is a distinct microsecond, strictly increasing per clock: the time of the call,
    or of ``at_ns`` when given (a block stamped with the time it was read), or one microsecond
    after the previous stamp when that is later. The id is a UUIDv7 of the same instant: 48 bits
    of Unix milliseconds, the microseconds within the millisecond scaled to the 12 bits after
    the version (RFC 9562 method 3, increased clock precision), then 62 random bits. So the ids
    of one clock increase with ``received_at``.
    """

    def __init__(self) -> None:
        self._last_us = -1
        self._second = -1
        self._prefix = ""
        self._dt = ""
        self._ms = -1
        self._ms_text = ""

    def next(self, at_ns: int | None = None) -> tuple[str, str, str]:
        micros_now = (time.time_ns() if at_ns is None else at_ns) // 1000
        if micros_now <= self._last_us:
            micros_now = self._last_us + 1
        self._last_us = micros_now
        return self.stamp(micros_now)

    def stamp(self, micros_now: int) -> tuple[str, str, str]:
        """``(id, received_at, dt)`` of one reserved microsecond: the stamp ``next`` would have
        made."""
        second, micros = divmod(micros_now, 1_000_000)
        if second != self._second:
            self._tick(second)
        ms_in_second, sub_ms = divmod(micros, 1000)
        ms_hex = self._ms_hex(second * 1000 + ms_in_second)
        # Variant bits 10, then 62 random bits: 16 hex digits, split 4 + 12.
        tail = "%016x" % (0x8000_0000_0000_0000 | _random_bits(62))
        uid = f"{ms_hex}7{_SUB_MS[sub_ms]}-{tail[:4]}-{tail[4:]}"
        return uid, f"{self._prefix}.{micros:06d}Z", self._dt

    def reserve(self, count: int, at_ns: int | None = None) -> int:
        """Set aside ``count`` consecutive microseconds, as ``count`` calls of ``next(at_ns)``
        would take them, without making the stamps yet; returns the first. ``stamps`` makes
        those of any of them, in one call: a block of lines reserves one microsecond per line
        and stamps only the lines that need one."""
        first = (time.time_ns() if at_ns is None else at_ns) // 1000
        if first <= self._last_us:
            first = self._last_us + 1
        self._last_us = first + count - 1
        return first

    def stamps(self, micros: list[int]) -> list[tuple[str, str, str]]:
        """``(id, received_at, dt)`` of each reserved microsecond in ``micros`` (ascending): the
        stamps ``next`` would have made. Many at once are cheaper written out by ``heads``."""
        return [self.stamp(each) for each in micros]

    def heads(self, micros: list[int], suffix: str = "") -> tuple[list[str], list[str]]:
        """For each reserved microsecond in ``micros`` (ascending), the start of its envelope,
        ``{"id":"<id>","received_at":"<received_at>`` then ``suffix``, and its dt: the stamps
        ``stamps`` makes, already written out, in about half the work (ingest's hot loop)."""
        count = len(micros)
        bits = _random_bits(64 * count)
        bits &= int.from_bytes(_LOW62 * count)
        bits |= int.from_bytes(_VARIANT * count)
        tails = bits.to_bytes(8 * count).hex()
        heads: list[str] = []
        dts: list[str] = []
        append = heads.append
        at = 0
        while at < count:
            # One run of stamps within the same second: one prefix and one dt.
            second = micros[at] // 1_000_000
            if second != self._second:
                self._tick(second)
            end = bisect_left(micros, (second + 1) * 1_000_000, at)
            prefix, base, ms_base = self._prefix + ".", second * 1_000_000, second * 1000
            ms = -1
            id_start = time_start = ""
            close = "Z" + suffix
            for micro, i in zip(micros[at:end], range(16 * at, 16 * end, 16), strict=True):
                within = micro - base
                if within // 1000 != ms:
                    ms = within // 1000
                    id_start = '{"id":"' + self._ms_hex(ms_base + ms) + "7"
                    time_start = '","received_at":"' + prefix + _DIGITS3[ms]
                sub = within % 1000
                append(
                    f"{id_start}{_SUB_MS[sub]}-{tails[i : i + 4]}-{tails[i + 4 : i + 16]}"
                    f"{time_start}{_DIGITS3[sub]}{close}"
                )
            dts += [self._dt] * (end - at)
            at = end
        return heads, dts

    def _tick(self, second: int) -> None:
        self._second = second
        stamp = datetime.fromtimestamp(second, UTC)
        self._prefix = stamp.strftime("%Y-%m-%dT%H:%M:%S")
        self._dt = stamp.strftime("%Y-%m-%d")

    def _ms_hex(self, ms: int) -> str:
        if ms != self._ms:
            self._ms = ms
            text = f"{ms:012x}"
            self._ms_text = f"{text[:8]}-{text[8:]}-"
        return self._ms_text


def stable_id(name: bytes, unix_ms: int) -> str:
    """A UUIDv7 that is a function of its arguments: ``unix_ms`` in the time field, then 74
    bits of a hash of ``name``. ``consume`` names each Kafka message by topic, partition and
    offset, so a message read twice (at least once) gets the same envelope id twice."""
    digest = int.from_bytes(hashlib.blake2b(name, digest_size=10).digest(), "big")  # 80 bits
    ms = f"{unix_ms & 0xFFFF_FFFF_FFFF:012x}"
    rand_a = (digest >> 62) & 0xFFF
    tail = "%016x" % (0x8000_0000_0000_0000 | (digest & ((1 << 62) - 1)))
    return f"{ms[:8]}-{ms[8:]}-7{rand_a:03x}-{tail[:4]}-{tail[4:]}"
