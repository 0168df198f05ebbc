"""A sink's spool, read back: its sealed segments sent piece by piece, deleted once confirmed.

Shared by ``logkit replay`` and the deliverer of ``logkit serve --sink``. A segment is claimed
with a non-blocking ``flock`` while it is sent, so that two deliverers (the workers of one
``serve``, or a ``replay`` beside them) never send the same segment at once; a segment someone
else holds is skipped. Sending one twice anyway (after a crash) is harmless: sinks keep one
record per envelope id, or make the copy detectable by it.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import os
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

from logkit.errors import StoreError
from logkit.ingest import IngestBlock
from logkit.inputs import newlines
from logkit.sinks.delivery import SINK_FILE
from logkit.store import layout
from logkit.store.writer import write_json_atomic

PIECE_BYTES = 4 * 1024 * 1024


def record_sink(root: Path, label: str) -> None:
    """Write ``sink.json`` once, so that ``logkit replay`` knows where this spool goes (the
    label never holds the password)."""
    if (root / SINK_FILE).exists():
        return
    try:
        write_json_atomic(root / SINK_FILE, {"url": label})
    except OSError as exc:
        raise StoreError(f"{root}: cannot write {SINK_FILE}: {exc.strerror or exc}") from exc


def sealed_segments(folder: Path) -> list[Path]:
    """Every sealed segment of a spool, oldest name first (writer ids start with a time)."""
    found = [
        path
        for kind in (layout.EVENTS, layout.DEAD_LETTER)
        for path in (folder / kind).glob("**/part-*")
        if layout.is_sealed(path)
    ]
    return sorted(found, key=lambda p: (p.name, str(p)))


def deliver_segment(
    send: Callable[[IngestBlock], None], folder: Path, segment: Path
) -> Counter[str] | None:
    """Send ``segment`` with ``send`` (which raises unless the sink confirmed the piece), then
    delete it. The counts of ``events`` and ``dead`` sent; None when another process holds
    the segment or has deleted it already."""
    try:
        fd = os.open(segment, os.O_RDONLY)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"{segment}: cannot read: {exc.strerror or exc}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None
        # Deleted (and its inode released) by whoever held it before us: it was sent.
        with contextlib.suppress(FileNotFoundError):
            if os.stat(segment).st_ino == os.fstat(fd).st_ino:
                counts = send_segment(send, folder, segment)
                segment.unlink(missing_ok=True)
                layout.fsync_dir(segment.parent)
                return counts
        return None
    finally:
        os.close(fd)  # releases the lock


def send_segment(send: Callable[[IngestBlock], None], folder: Path, segment: Path) -> Counter[str]:
    """Send a segment piece by piece; the counts once every piece was confirmed."""
    counts: Counter[str] = Counter()
    parts = dict(
        part.split("=", 1) for part in segment.relative_to(folder).parts[1:-1] if "=" in part
    )
    is_event = segment.relative_to(folder).parts[0] == layout.EVENTS
    for piece in _pieces(segment):
        lines = newlines(piece)
        block = IngestBlock()
        if is_event:
            key = (parts["contract"], int(parts["version"]), parts["dt"])
            block.events[key] = bytearray(piece)
            block.event_lines[key] = lines
        else:
            block.dead[parts["dt"]] = bytearray(piece)
            block.dead_lines[parts["dt"]] = lines
        send(block)
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
