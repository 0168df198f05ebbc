"""Envelope ids (UUIDv7, RFC 9562) and ``received_at`` stamps, fast enough for the hot path."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime

# The module-level generator is seeded from the OS and reseeded in a forked child, so worker
# processes never share random bits; ids need uniqueness, not secrecy.
_random_bits = random.getrandbits


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
        second, micros = divmod(micros_now, 1_000_000)
        if second != self._second:
            self._tick(second)
        ms_in_second, sub_ms = divmod(micros, 1000)
        ms_hex = self._ms_hex(second * 1000 + ms_in_second)
        # Variant bits 10, then 62 random bits: 16 hex digits, split 4 + 12.
        tail = "%016x" % (0x8000_0000_0000_0000 | _random_bits(62))
        uid = f"{ms_hex}7{sub_ms * 4096 // 1000:03x}-{tail[:4]}-{tail[4:]}"
        return uid, f"{self._prefix}.{micros:06d}Z", self._dt

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
