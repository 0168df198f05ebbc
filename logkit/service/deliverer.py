"""``serve --sink``: a worker's thread that sends its spool's sealed segments to the sink.

Requests are answered once their envelopes are in the spool (the worker's ``ServiceWriter``
writes to ``<store>/_spool/<sink>/`` under the fsync policy, as it writes the store without a
sink). The writer seals segments every second or so; this thread sends each sealed segment
(``logkit.sinks.spool.deliver_segment``, as ``logkit replay`` does) with the retry and probe
rules of ``ingest --sink`` (``Delivery``) and deletes it once the sink confirmed all of it. The
event loop never waits for the sink: while it is down, requests keep being answered, segments
pile up in the spool, and the thread probes the sink every few seconds.

On shutdown the writer seals everything, then ``close`` gives the thread until the deadline to
send what is left; what it could not send stays in the spool, for the next start or for
``logkit replay``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from pathlib import Path

from logkit.errors import StoreError
from logkit.ingest import IngestBlock
from logkit.service.metrics import SinkMetrics
from logkit.sinks import SinkSetupError, open_sink
from logkit.sinks.delivery import Delivery, RetryPolicy
from logkit.sinks.spool import deliver_segment, sealed_segments

log = logging.getLogger("uvicorn.error")
POLL_SECONDS = 0.5  # a look at the spool even when the writer did not say it sealed


class _Held(Exception):
    """The sink did not take a piece (it is down): leave the segment for later."""


class Deliverer:
    def __init__(
        self,
        url: str,
        spool: Path,
        metrics: SinkMetrics,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.spool = spool
        self.metrics = metrics
        self._deadline: float | None = None
        self._closing = threading.Event()
        self._wake = threading.Event()
        self.delivery = Delivery(open_sink(url), policy or RetryPolicy(), stop=self._past_deadline)
        self._reported: Counter[str] = Counter()
        self._refused: dict[Path, float] = {}  # segment -> when to try it again
        self._started = False
        self._thread = threading.Thread(target=self._run, name="logkit-sink", daemon=True)

    @property
    def label(self) -> str:
        return self.delivery.sink.label

    @property
    def up(self) -> bool:
        """Whether the sink took the last write (read from the event loop; a plain attribute)."""
        return self.delivery.down is None and self._started

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """The writer sealed segments: look at the spool now."""
        self._wake.set()

    def close(self, seconds: float) -> bool:
        """Send what is left within ``seconds`` (the writer has sealed everything), then stop.
        False when the thread was still busy at the deadline (the rest stays in the spool)."""
        self._deadline = time.monotonic() + seconds
        self._closing.set()
        self._wake.set()
        self._thread.join(seconds + 1)
        return not self._thread.is_alive()

    # -- the thread ----------------------------------------------------------------------

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _run(self) -> None:
        try:
            self._connect()
            while not self._closing.is_set():
                self._pass()
                self._wake.wait(POLL_SECONDS)
                self._wake.clear()
            if self._started:
                self.delivery.probe_now()  # one last try, even if a probe is not due yet
                self._refused.clear()
                self._pass()
        except Exception:  # a bug: say so, the spool keeps everything
            log.exception("logkit serve: the sink deliverer stopped; the spool keeps the events")
        finally:
            try:
                self.delivery.sink.close()
            except Exception as exc:
                log.warning("logkit serve: closing %s: %s", self.label, exc)
            self._count_errors()

    def _connect(self) -> None:
        """Connect and check (serve checked the setup before starting; a sink that changed
        since is said, and tried again like a sink that is down)."""
        while not self._past_deadline():
            try:
                started = self.delivery.start()
            except (SinkSetupError, StoreError) as exc:
                log.error("logkit serve: %s; trying again in %g s", exc, self._probe_seconds)
                self.delivery.errors["error"] += 1
                self._count_errors()
                self.metrics.set_up(False)
                if self._closing.wait(self._probe_seconds):
                    return
                continue
            self._started = True
            self._say(started.notice)
            self._count_errors()
            self.metrics.set_up(self.delivery.down is None)
            return

    @property
    def _probe_seconds(self) -> float:
        return self.delivery.policy.probe_seconds

    def _pass(self) -> None:
        """Send every sealed segment of the spool, oldest first, while the sink takes them."""
        now = time.monotonic()
        for segment in sealed_segments(self.spool):
            if self._past_deadline() or not self.delivery.due():
                break
            if self._refused.get(segment, 0.0) > now:
                continue
            try:
                counts = deliver_segment(self._send, self.spool, segment)
            except _Held:
                break
            except StoreError as exc:  # SinkError included: this segment, not the sink
                self._refused[segment] = now + self._probe_seconds
                log.error(
                    "logkit serve: %s; %s stays in the spool (tried again in %g s; "
                    "`logkit replay` reports it)",
                    exc,
                    segment.relative_to(self.spool),
                    self._probe_seconds,
                )
                continue
            finally:
                self._count_errors()
            self._refused.pop(segment, None)
            if counts is not None:
                self.metrics.deliver(counts["events"], counts["dead"])

    def _send(self, block: IngestBlock) -> None:
        """One piece, with ingest's rules: retried with backoff while the sink is up, one
        probe when it is down and a probe is due."""
        sent = self.delivery.send(block)
        self._say(sent.notice)
        self.metrics.set_up(self.delivery.down is None)
        if not sent.delivered:
            raise _Held

    def _say(self, notice: str | None) -> None:
        if notice:
            log.warning("logkit serve: %s", notice)

    def _count_errors(self) -> None:
        """Carry ``Delivery.errors`` over to the metrics, as they grow."""
        for kind, count in self.delivery.errors.items():
            if count > self._reported[kind]:
                self.metrics.error(kind, count - self._reported[kind])
                self._reported[kind] = count
