"""``logkit replay``: send what ``ingest --sink`` spooled to its sink, then remove it.

A spool is a file store of its own under ``<store>/_spool/``, one per sink URL. Each sealed
segment is sent (in pieces of at most ``PIECE_BYTES``, whole lines) and deleted only once the
sink confirmed every piece. Sinks ignore an envelope id they already hold, so a replay that
died half-way, or runs twice, sends some records again without making duplicates.
"""

from __future__ import annotations

import gzip
import json
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from logkit.errors import StoreError, UsageError
from logkit.ingest import IngestBlock
from logkit.results import plural
from logkit.settings import Settings
from logkit.sinks import SinkUnavailable, open_sink, redact
from logkit.sinks.delivery import SINK_FILE, SPOOL, Delivery, RetryPolicy, spool_root
from logkit.store import layout

PIECE_BYTES = 4 * 1024 * 1024


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
                counts = _send_segment(delivery, folder, segment)
            except SinkUnavailable as exc:
                report.left, report.error = len(segments) - index, str(exc)
                return report
            except StoreError as exc:  # SinkError included: not worth retrying now
                report.left, report.error = len(segments) - index, str(exc)
                return report
            segment.unlink(missing_ok=True)
            layout.fsync_dir(segment.parent)
            report.events += counts["events"]
            report.dead += counts["dead"]
            report.segments += 1
    finally:
        delivery.sink.close()
    return report


def sealed_segments(folder: Path) -> list[Path]:
    """Every sealed segment of a spool, oldest name first (writer ids start with a time)."""
    found = [
        path
        for kind in (layout.EVENTS, layout.DEAD_LETTER)
        for path in (folder / kind).glob("**/part-*")
        if layout.is_sealed(path)
    ]
    return sorted(found, key=lambda p: (p.name, str(p)))


def _send_segment(delivery: Delivery, folder: Path, segment: Path) -> Counter[str]:
    """Send a segment piece by piece; the counts once every piece was confirmed."""
    counts: Counter[str] = Counter()
    parts = dict(
        part.split("=", 1) for part in segment.relative_to(folder).parts[1:-1] if "=" in part
    )
    is_event = segment.relative_to(folder).parts[0] == layout.EVENTS
    for piece in _pieces(segment):
        lines = piece.count(b"\n")
        block = IngestBlock()
        if is_event:
            key = (parts["contract"], int(parts["version"]), parts["dt"])
            block.events[key] = bytearray(piece)
            block.event_lines[key] = lines
        else:
            block.dead[parts["dt"]] = bytearray(piece)
            block.dead_lines[parts["dt"]] = lines
        delivery.deliver(block)
        counts["events" if is_event else "dead"] += lines
    return counts


def _pieces(segment: Path) -> Iterator[bytes]:
    """Whole lines of a segment, at most about ``PIECE_BYTES`` at a time."""
    opener = gzip.open if segment.name.endswith(".gz") else open
    try:
        with opener(segment, "rb") as handle:
            pending = b""
            while chunk := handle.read(PIECE_BYTES):
                pending += chunk
                cut = pending.rfind(b"\n")
                if cut >= 0:
                    yield pending[: cut + 1]
                    pending = pending[cut + 1 :]
            if pending.strip():
                yield pending + b"\n"
    except OSError as exc:
        raise StoreError(f"{segment}: cannot read: {exc.strerror or exc}") from exc


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
