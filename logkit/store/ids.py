"""Envelope ids (UUIDv7, RFC 9562) and ``received_at`` stamps, fast enough for the hot path."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime


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

    def next(self, at_ns: int | None = None) -> tuple[str, str, str]:
        micros_now = (time.time_ns() if at_ns is None else at_ns) // 1000
        if micros_now <= self._last_us:
            micros_now = self._last_us + 1
        self._last_us = micros_now
        ms, sub_ms = divmod(micros_now, 1000)
        rand = int.from_bytes(os.urandom(8), "big") & 0x3FFF_FFFF_FFFF_FFFF
        value = (ms << 80) | (0x7 << 76) | ((sub_ms * 4096 // 1000) << 64) | (0b10 << 62) | rand
        hexed = f"{value:032x}"
        uid = f"{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-{hexed[20:]}"
        second, micros = divmod(micros_now, 1_000_000)
        if second != self._second:
            self._second = second
            stamp = datetime.fromtimestamp(second, UTC)
            self._prefix = stamp.strftime("%Y-%m-%dT%H:%M:%S")
            self._dt = stamp.strftime("%Y-%m-%d")
        return uid, f"{self._prefix}.{micros:06d}Z", self._dt
