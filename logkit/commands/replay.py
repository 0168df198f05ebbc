"""``logkit replay``: send what ``ingest --sink`` spooled to its sink, then remove it.

A spool is a file store of its own under ``<store>/_spool/``, one per sink URL (written by
``ingest --sink`` and ``serve --sink``). Each sealed segment is sent (in pieces of at most
4 MiB, whole lines; ``logkit.sinks.spool``) and deleted only once the sink confirmed every
piece. Sinks ignore an envelope id they already hold, so a replay that
died half-way, or runs twice, sends some records again without making duplicates.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from logkit.errors import StoreError, UsageError
from logkit.results import plural
from logkit.settings import Settings
from logkit.sinks import SinkUnavailable, open_sink, redact
from logkit.sinks.delivery import SINK_FILE, SPOOL, Delivery, RetryPolicy, spool_root
from logkit.sinks.spool import deliver_segment, sealed_segments


@dataclass
class ReplayOptions:
    settings: Settings
    sink: str | None = None
    spool: Path | None = None
    retry_seconds: float = 3.0
    err: IO[str] = field(default_factory=lambda: sys.stderr)


@dataclass
class SpoolReport:
    sink: str
    spool: Path
    events: int = 0
    dead: int = 0
    segments: int = 0
    left: int = 0
    error: str | None = None


def replay(options: ReplayOptions) -> int:
    if options.retry_seconds < 0:
        raise UsageError("--sink-retry-seconds must be 0 or more")
    store = options.settings.store
    if options.spool is not None:
        if not (options.spool / SINK_FILE).is_file():
            # Never a store itself: replay deletes what it sent.
            raise UsageError(
                f"--spool {options.spool}: not a spool (no {SINK_FILE}); spools are the "
                f"folders under {store / SPOOL}"
            )
        url = options.sink or _recorded_url(options.spool)
        spools = [(options.spool, url)]
    elif options.sink is not None:
        spools = [(spool_root(store, options.sink), options.sink)]
    else:
        base = store / SPOOL
        folders = sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
        spools = [(folder, _recorded_url(folder)) for folder in folders]
    reports = [_replay_spool(folder, url, options) for folder, url in spools]
    _report(options.err, store, reports)
    return 3 if any(r.error for r in reports) else 0


def _recorded_url(folder: Path) -> str:
    """The sink URL ``ingest`` recorded in the spool, without its (redacted) password: libpq
    then takes the password from PGPASSWORD or ~/.pgpass."""
    try:
        url = str(json.loads((folder / SINK_FILE).read_text(encoding="utf-8"))["url"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(
            f"{folder}: no sink recorded in {SINK_FILE}; give it with --sink URL"
        ) from exc
    parts = urlsplit(url)
    if parts.password is not None:
        host = parts.netloc.rsplit("@", 1)[1]
        url = parts._replace(netloc=f"{parts.username or ''}@{host}").geturl()
    return url


def _replay_spool(folder: Path, url: str, options: ReplayOptions) -> SpoolReport:
    from logkit.commands.ingest import recover_store

    report = SpoolReport(redact(url), folder)
    if not folder.is_dir():
        return report
    recover_store(folder)  # seal what a dead ingest left open, so that it is sent too
    segments = sealed_segments(folder)
    if not segments:
        return report
    delivery = Delivery(open_sink(url), RetryPolicy(retry_seconds=options.retry_seconds))
    try:
        started = delivery.start()
        if not started.delivered:
            report.left, report.error = len(segments), str(delivery.down)
            return report
        for index, segment in enumerate(segments):
            try:
                counts = deliver_segment(delivery.deliver, folder, segment)
            except SinkUnavailable as exc:
                report.left, report.error = len(segments) - index, str(exc)
                return report
            except StoreError as exc:  # SinkError included: not worth retrying now
                report.left, report.error = len(segments) - index, str(exc)
                return report
            if counts is None:  # a running `serve --sink` is sending it
                continue
            report.events += counts["events"]
            report.dead += counts["dead"]
            report.segments += 1
    finally:
        delivery.sink.close()
    return report


def _report(err: IO[str], store: Path, reports: list[SpoolReport]) -> None:
    if not any(r.segments or r.left for r in reports):
        err.write(f"nothing to replay: no spooled records under {store / SPOOL}\n")
        return
    for r in reports:
        if not r.segments and not r.left:
            continue
        sent = (
            f"{r.sink}: replayed {plural(r.events, 'event')} and "
            f"{plural(r.dead, 'dead letter')} from {plural(r.segments, 'segment')}"
        )
        if r.error:
            err.write(f"logkit: error: {r.error}\n")
            err.write(
                f"{sent}; {plural(r.left, 'segment')} left in {r.spool} "
                "(run `logkit replay` again once the sink is back)\n"
            )
        else:
            err.write(f"{sent}; its spool is empty\n")
