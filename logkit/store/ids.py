"""Envelope ids (UUIDv7, RFC 9562) and ``received_at`` stamps, fast enough for the hot path."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime


class IdClock:
    """Hands out ``(id, received_at, dt)`` for each event.

    Ids are UUIDv7: 48 bits of Unix milliseconds, then a 12-bit counter that keeps ids from one
    process strictly increasing within a millisecond (RFC 9562 method 1), then 62 random bits.
    """

    def __init__(self) -> None:
        self._last_ms = -1
        self._counter = 0
        self._second = -1
        self._prefix = ""
        self._dt = ""

    def next(self) -> tuple[str, str, str]:
        now_ns = time.time_ns()
        ms = now_ns // 1_000_000
        if ms > self._last_ms:
            self._last_ms = ms
            self._counter = int.from_bytes(os.urandom(2), "big") & 0x3FF  # leave room to count
        else:
            self._counter += 1
            if self._counter > 0xFFF:  # 4096 ids in one millisecond: borrow the next one
                self._last_ms += 1
                self._counter = 0
            ms = self._last_ms
        rand = int.from_bytes(os.urandom(8), "big") & 0x3FFF_FFFF_FFFF_FFFF
        value = (ms << 80) | (0x7 << 76) | (self._counter << 64) | (0b10 << 62) | rand
        hexed = f"{value:032x}"
        uid = f"{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-{hexed[20:]}"
        second, micros = divmod(now_ns // 1000, 1_000_000)
        if second != self._second:
            self._second = second
            stamp = datetime.fromtimestamp(second, UTC)
            self._prefix = stamp.strftime("%Y-%m-%dT%H:%M:%S")
            self._dt = stamp.strftime("%Y-%m-%d")
        return uid, f"{self._prefix}.{micros:06d}Z", self._dt
