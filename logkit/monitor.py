"""Progress on stderr and Prometheus metrics in a text file, both refreshed every few seconds."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from logkit.commands.ingest import Totals

METRICS_EVERY = 5.0
PROGRESS_EVERY = 0.5


class Monitor:
    def __init__(
        self,
        metrics_file: Path | None,
        err: IO[str],
        *,
        progress: bool | None,
        total_bytes: int | None,
    ) -> None:
        self.metrics_file = metrics_file
        self.err = err
        isatty = getattr(err, "isatty", None)
        self.tty = bool(isatty and isatty())
        self.progress = self.tty if progress is None else progress
        self.total_bytes = total_bytes if total_bytes and total_bytes < 1 << 40 else None
        self.started = time.monotonic()
        self._last_progress = 0.0
        self._last_metrics = self.started
        self._shown = False

    def tick(self, totals: Totals, _source_bytes: int) -> None:
        now = time.monotonic()
        if self.progress and now - self._last_progress >= (PROGRESS_EVERY if self.tty else 2.0):
            self._last_progress = now
            self._show(totals, now)
        if self.metrics_file is not None and now - self._last_metrics >= METRICS_EVERY:
            self._last_metrics = now
            write_metrics(self.metrics_file, totals)

    def finish(self, totals: Totals) -> None:
        if self._shown and self.tty:
            self.err.write("\r\033[K")
        if self.metrics_file is not None:
            write_metrics(self.metrics_file, totals)

    def _show(self, totals: Totals, now: float) -> None:
        elapsed = max(now - self.started, 1e-9)
        rate = (totals.stored + totals.dead) / elapsed
        line = (
            f"ingesting: {rate:,.0f} events/s · {totals.stored:,} stored · "
            f"{totals.dead:,} dead-lettered · {totals.bytes / 1e6:,.1f} MB"
        )
        if totals.sink is not None:
            line += f" · {totals.spooled:,} spooled" + ("" if totals.sink_up else " (sink down)")
        if self.total_bytes:
            line += f" ({min(100.0, 100 * totals.bytes / self.total_bytes):.0f}%)"
        if self.tty:
            self.err.write("\r\033[K" + line)
        else:
            self.err.write(line + "\n")
        self.err.flush()
        self._shown = True


class _TotalsCollector:
    def __init__(self, totals: Totals) -> None:
        self.totals = totals

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        events = CounterMetricFamily(
            "logkit_events",
            "Events ingested, by contract, version and outcome "
            "(stored, or the dead-letter reason).",
            labels=["contract", "version", "outcome"],
        )
        for (contract, version, outcome), count in sorted(self.totals.outcomes.items()):
            events.add_metric([contract, version, outcome.split(":", 1)[-1]], count)
        yield events
        errors = CounterMetricFamily(
            "logkit_validation_errors",
            "Validation errors of dead-lettered events, by rule.",
            labels=["contract", "version", "rule"],
        )
        for (contract, version, rule), count in sorted(self.totals.rules.items()):
            errors.add_metric([contract, version, rule], count)
        yield errors
        read = CounterMetricFamily("logkit_bytes_read", "Bytes of input read.")
        read.add_metric([], self.totals.bytes)
        yield read
        last = GaugeMetricFamily(
            "logkit_last_success_timestamp_seconds", "Unix time at which an event was last stored."
        )
        last.add_metric([], self.totals.last_success)
        yield last
        if self.totals.sink is None:
            return
        spooled = CounterMetricFamily(
            "logkit_sink_spooled",
            "Records written to the local spool because the sink was down, by kind.",
            labels=["sink", "kind"],
        )
        spooled.add_metric([self.totals.sink, "event"], self.totals.spooled)
        spooled.add_metric([self.totals.sink, "dead_letter"], self.totals.spooled_dead)
        yield spooled
        errors = CounterMetricFamily(
            "logkit_sink_errors",
            "Failed sink calls (each retry counts), by kind: unavailable or error.",
            labels=["sink", "kind"],
        )
        for kind in ("unavailable", "error"):
            errors.add_metric([self.totals.sink, kind], self.totals.sink_errors.get(kind, 0))
        yield errors
        up = GaugeMetricFamily(
            "logkit_sink_up", "1 while the sink takes writes, else 0.", labels=["sink"]
        )
        up.add_metric([self.totals.sink], 1.0 if self.totals.sink_up else 0.0)
        yield up


def write_metrics(path: Path, totals: Totals) -> None:
    """Write the Prometheus text format atomically (node_exporter's textfile collector)."""
    from prometheus_client import CollectorRegistry, write_to_textfile

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_TotalsCollector(totals))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)
