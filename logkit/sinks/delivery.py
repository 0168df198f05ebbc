"""Blocks to a sink: retried with exponential backoff; while the sink stays down, spooled.

No I/O of its own beyond the sink, no printing: ``send`` says whether the sink confirmed the
block, and gives a one-line notice when the sink goes down or comes back, for the command to
print. The spool itself is the caller's (a file store under ``spool_root``).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from logkit.sinks import Sink, SinkUnavailable, redact

if TYPE_CHECKING:
    from logkit.ingest import IngestBlock

SPOOL = "_spool"  # under the store; the underscore hides it from Spark, pyarrow and the globs
SINK_FILE = "sink.json"


@dataclass
class RetryPolicy:
    """How hard to try before spooling. Delays double from ``first_delay``, the last one cut
    so that they add up to ``retry_seconds``; once down, the sink is tried again every
    ``probe_seconds`` (one attempt, no backoff, so a down sink costs the stream nothing)."""

    retry_seconds: float = 3.0
    first_delay: float = 0.1
    probe_seconds: float = 5.0

    def delays(self) -> list[float]:
        delays: list[float] = []
        delay, total = self.first_delay, 0.0
        while self.retry_seconds - total > 1e-3:
            step = round(min(delay, self.retry_seconds - total), 6)
            delays.append(step)
            total += step
            delay *= 2
        return delays


@dataclass
class Sent:
    """What became of one block."""

    delivered: bool
    notice: str | None = None


@dataclass
class Delivery:
    """One sink and its up/down state for a run."""

    sink: Sink
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    stop: Callable[[], object] = lambda: False
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    down: SinkUnavailable | None = None
    errors: Counter[str] = field(default_factory=Counter)
    _next_probe: float = 0.0

    def start(self) -> Sent:
        """Check the sink before any event is read. A setup error raises; a sink that is down
        only makes the first blocks go to the spool."""
        try:
            self._with_retries(self.sink.check)
        except SinkUnavailable as exc:
            return self.went_down(exc)
        return Sent(True)

    def due(self) -> bool:
        """Whether ``send`` would try the sink now (it is up, or it is time to probe it)."""
        return self.down is None or self.clock() >= self._next_probe

    def send(self, block: IngestBlock) -> Sent:
        """Write ``block`` to the sink (retrying) or report it is to be spooled."""
        if self.down is not None:
            if self.clock() < self._next_probe:
                return Sent(False)
            try:
                self._attempt(lambda: self.sink.write(block))
            except SinkUnavailable as exc:
                self.down = exc
                self._next_probe = self.clock() + self.policy.probe_seconds
                return Sent(False)
            self.down = None
            return Sent(True, f"{self.sink.label}: the sink is back; writing to it again")
        try:
            self._with_retries(lambda: self.sink.write(block))
        except SinkUnavailable as exc:
            return self.went_down(exc)
        return Sent(True)

    def deliver(self, block: IngestBlock) -> None:
        """Write ``block`` with retries, or raise SinkUnavailable (for ``replay``)."""
        self._with_retries(lambda: self.sink.write(block))

    def probe_now(self) -> None:
        """Let the next ``send`` try a down sink at once (a last try before exiting)."""
        self._next_probe = self.clock()

    def went_down(self, exc: SinkUnavailable) -> Sent:
        """Mark the sink down (until the next probe); the one-line notice to give."""
        self.down = exc
        self._next_probe = self.clock() + self.policy.probe_seconds
        return Sent(
            False,
            f"{exc}; the sink is unavailable: spooling events to the local store and trying "
            f"it again every {self.policy.probe_seconds:g} s (`logkit replay` sends the spool)",
        )

    def _with_retries(self, action: Callable[[], None]) -> None:
        for delay in self.policy.delays():
            try:
                self._attempt(action)
                return
            except SinkUnavailable:
                if not self._wait(delay):
                    break
        self._attempt(action)

    def _attempt(self, action: Callable[[], None]) -> None:
        try:
            action()
        except SinkUnavailable:
            self.errors["unavailable"] += 1
            raise
        except Exception:
            self.errors["error"] += 1
            raise

    def _wait(self, seconds: float) -> bool:
        """Sleep in small steps; False as soon as a stop was asked for."""
        end = self.clock() + seconds
        while (left := end - self.clock()) > 0:
            if self.stop():
                return False
            self.sleep(min(left, 0.05))
        return not self.stop()


def spool_root(store: Path, url: str) -> Path:
    """The spool of one sink URL: a file store of its own under ``<store>/_spool/``.

    Its name is readable (scheme, host, path) and unique per URL without its password."""
    label = redact(url)
    digest = hashlib.sha256(label.encode()).hexdigest()[:12]
    parts = urlsplit(label)
    where = f"{parts.netloc.rsplit('@', 1)[-1]}-{parts.path}"  # .port may not be a number
    readable = re.sub(r"[^A-Za-z0-9._]+", "-", where).strip("-")[:60]
    return store / SPOOL / f"{parts.scheme.lower()}-{readable}-{digest}"
