"""Appending envelopes and dead letters to a store, crash-safely.

Each writing process is a *writer* with its own id, its own lock file (held while it lives) and
its own segments, so any number of processes can write one store at once. A segment is written
as ``.part-<writer>-<seq>.open`` and sealed by flush, fsync, rename to ``part-...jsonl`` (or gzip
to ``.jsonl.gz``) and fsync of the folder; the reader globs (even ``*.jsonl*``) only ever match
sealed segments.

Durability (``fsync``):
  - ``always``: segments are fsynced after every write, before the events are counted.
  - ``batch`` (default): fsynced at least every ``batch_seconds`` (1 s) and every
    ``batch_bytes`` (8 MiB); on power loss at most that window of accepted events is lost (with
    ``sync_behind``, also what was appended while its fsync ran). A process crash loses
    nothing written: the data is in the kernel already.
  - ``never``: the operating system decides; a power loss may lose more.
A checkpoint (for resuming an input file) is committed only after an fsync of every segment it
covers, whatever the policy. ``ingest`` fsyncs a full batch window on a thread (``sync_behind``)
while it validates the next blocks: the checkpoint that covers the window is written by that
thread, after the fsync.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import gzip
import json
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from logkit.errors import StoreError
from logkit.store import layout

FSYNC_POLICIES = ("always", "batch", "never")
DEFAULT_SEGMENT_BYTES = 128 * 1024 * 1024
DEFAULT_SEGMENT_SECONDS = 300.0


@dataclass
class Segment:
    """One open segment: a file being appended to."""

    folder: Path
    name: str  # sealed name, e.g. part-<writer>-000001.jsonl
    fd: int
    created: float
    size: int = 0
    synced: int = 0
    lines: int = 0

    @property
    def open_path(self) -> Path:
        return self.folder / layout.open_name(self.name)


@dataclass
class WriterOptions:
    fsync: str = "batch"
    segment_bytes: int = DEFAULT_SEGMENT_BYTES
    segment_seconds: float = DEFAULT_SEGMENT_SECONDS
    gzip: bool = False
    batch_seconds: float = 1.0
    batch_bytes: int = 8 * 1024 * 1024


def _new_writer_id() -> str:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    return f"{stamp}-{os.getpid()}-{os.urandom(3).hex()}"


@dataclass
class StoreWriter:
    """Appends lines to partitions of one store. Not thread-safe; one per process."""

    root: Path
    options: WriterOptions = field(default_factory=WriterOptions)
    writer_id: str = field(default_factory=_new_writer_id)
    segments: dict[Path, Segment] = field(default_factory=dict)
    #: "file" (a replayable input, cut back to its checkpoint by recovery) or "stream"
    mode: str = ""
    _seq: int = 0
    _lock_fd: int = -1
    _unsynced: int = 0
    _last_sync: float = field(default_factory=time.monotonic)
    _behind: _Behind | None = None

    def __post_init__(self) -> None:
        if self.options.fsync not in FSYNC_POLICIES:
            raise StoreError(f"unknown fsync policy {self.options.fsync!r}")
        locks = layout.locks_dir(self.root)
        # The lock file appears under its name already locked: created under a temporary name
        # that recovery ignores, locked, then renamed. Created in place, a recovery running
        # between the creation and the flock would take it for a dead writer's and delete it.
        temp = locks / f".{self.writer_id}.lock.tmp"
        try:
            locks.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(temp, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(temp, locks / f"{self.writer_id}.lock")
        except OSError as exc:
            raise StoreError(
                f"{self.root}: cannot open the store for writing: {exc.strerror or exc}"
            ) from exc

    # -- appending -------------------------------------------------------------------------

    def append(self, folder: Path, data: bytes | bytearray, lines: int) -> None:
        """Append complete lines to the open segment of ``folder`` (a partition)."""
        segment = self.segments.get(folder)
        if segment is None:
            segment = self._open(folder)
        _write_all(segment, data)
        segment.lines += lines
        self._unsynced += len(data)
        if self.options.fsync == "always":
            self.sync()

    def maybe_sync(self) -> bool:
        """Fsync when the batch window is full; True when it did."""
        if self.sync_due():
            self.sync()
            return True
        return False

    def sync_due(self) -> bool:
        """Whether the ``batch`` window is full: what is written since the last sync is
        ``batch_bytes`` or more, or the last sync is ``batch_seconds`` ago."""
        return (
            self.options.fsync == "batch"
            and self._unsynced > 0
            and (
                self._unsynced >= self.options.batch_bytes
                or time.monotonic() - self._last_sync >= self.options.batch_seconds
            )
        )

    def sync_behind(self, then: Callable[[dict[str, int]], None] | None = None) -> None:
        """Make everything written so far durable on a thread, then call ``then`` there with
        the segments' durable lengths (``lengths`` once it is done), while this thread goes
        on appending. One at a time: it first waits for the one before, and every call that
        syncs, seals, rolls back or reads lengths waits for it (``settle``) and raises what
        it raised."""
        self.settle()
        pending = [(s, s.fd, s.size) for s in self.segments.values() if s.synced != s.size]
        lengths = {str(s.open_path.relative_to(self.root)): s.size for s in self.segments.values()}
        self._unsynced = 0
        self._last_sync = time.monotonic()
        self._behind = _Behind(pending, lengths, then)

    def settle(self) -> None:
        """Wait for the fsync under way on a thread, if any; raise its error."""
        behind, self._behind = self._behind, None
        if behind is None:
            return
        behind.join()
        if behind.error is not None:
            raise behind.error
        for segment, _fd, size in behind.pending:
            segment.synced = max(segment.synced, size)

    def sync(self) -> None:
        """Make everything written so far durable."""
        self.settle()
        for segment in self.segments.values():
            if segment.synced != segment.size:
                _fsync(segment, segment.fd)
                segment.synced = segment.size
        self._unsynced = 0
        self._last_sync = time.monotonic()

    def lengths(self) -> dict[str, int]:
        """Durable length of each open segment, for a checkpoint (call after ``sync``)."""
        self.settle()
        return {str(s.open_path.relative_to(self.root)): s.synced for s in self.segments.values()}

    def due_for_rotation(self) -> list[Path]:
        now = time.monotonic()
        return [
            folder
            for folder, s in self.segments.items()
            if s.size >= self.options.segment_bytes
            or (s.size and now - s.created >= self.options.segment_seconds)
        ]

    def seal(self, folder: Path) -> None:
        """Seal the open segment of ``folder``; the caller has synced and checkpointed.

        On failure the segment stays open and listed, so that the next checkpoint still covers
        it and recovery seals it later."""
        self.settle()
        segment = self.segments[folder]
        if segment.size == 0:  # emptied by a rollback: nothing to read, nothing to seal
            del self.segments[folder]
            os.close(segment.fd)
            segment.open_path.unlink(missing_ok=True)
            return
        try:
            if segment.synced != segment.size:
                os.fsync(segment.fd)
            seal_file(segment.open_path, segment.name, gzip_it=self.options.gzip)
        except OSError as exc:
            raise StoreError(f"{segment.open_path}: cannot seal: {exc.strerror or exc}") from exc
        del self.segments[folder]
        os.close(segment.fd)

    def close(self) -> None:
        """Sync and seal every open segment, then let go of the lock."""
        try:
            self.sync()
            for folder in list(self.segments):
                self.seal(folder)
        finally:
            self.release()

    def release(self) -> None:
        if self._behind is not None:  # no fd is closed under its fsync; its error is moot now
            self._behind.join()
            self._behind = None
        for segment in self.segments.values():
            os.close(segment.fd)
        self.segments.clear()
        if self._lock_fd >= 0:
            lock = layout.locks_dir(self.root) / f"{self.writer_id}.lock"
            if not any(True for _ in self._own_open_segments()):
                lock.unlink(missing_ok=True)
                lock.with_suffix(".json").unlink(missing_ok=True)
            os.close(self._lock_fd)
            self._lock_fd = -1

    def mark(self) -> dict[Path, int]:
        """Where every open segment ends now; ``rollback`` returns to it."""
        return {folder: segment.size for folder, segment in self.segments.items()}

    def rollback(self, mark: dict[Path, int]) -> None:
        """Undo every append since ``mark`` (a block is stored whole or not at all)."""
        if self._behind is not None:  # its lengths are within the mark: only wait for it
            self._behind.join()
        for folder, segment in self.segments.items():
            size = mark.get(folder, 0)
            if segment.size == size:
                continue
            with contextlib.suppress(OSError):
                os.ftruncate(segment.fd, size)
                os.lseek(segment.fd, size, os.SEEK_SET)
            segment.size = size
            segment.synced = min(segment.synced, size)

    def _own_open_segments(self) -> Any:
        return self.root.glob(layout.open_glob(self.writer_id))

    def _open(self, folder: Path) -> Segment:
        self._seq += 1
        name = f"part-{self.writer_id}-{self._seq:06d}.jsonl"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(
                folder / layout.open_name(name), os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644
            )
        except OSError as exc:
            raise StoreError(f"{folder}: cannot create a segment: {exc.strerror or exc}") from exc
        segment = Segment(folder, name, fd, time.monotonic())
        self.segments[folder] = segment
        return segment


class _Behind:
    """An fsync of segments, then a callback with their lengths, on a thread of its own."""

    def __init__(
        self,
        pending: list[tuple[Segment, int, int]],
        lengths: dict[str, int],
        then: Callable[[dict[str, int]], None] | None,
    ) -> None:
        self.pending = pending
        self.error: BaseException | None = None
        self._lengths = lengths
        self._then = then
        self._thread = threading.Thread(target=self._run, name="logkit-fsync")
        self._thread.start()

    def _run(self) -> None:
        try:
            for segment, fd, _size in self.pending:
                _fsync(segment, fd)
            if self._then is not None:
                self._then(self._lengths)
        except BaseException as exc:  # raised again by the thread that waits for it (settle)
            self.error = exc

    def join(self) -> None:
        self._thread.join()


def _fsync(segment: Segment, fd: int) -> None:
    """Fsync an open segment's descriptor; a failure is a StoreError naming the segment."""
    try:
        os.fsync(fd)
    except OSError as exc:
        raise StoreError(f"{segment.open_path}: fsync failed: {exc.strerror or exc}") from exc


def _write_all(segment: Segment, data: bytes | bytearray) -> None:
    """Write every byte or fail leaving the file exactly as long as before."""
    view = memoryview(data)
    written = 0
    try:
        while written < len(view):
            n = os.write(segment.fd, view[written:])
            if n <= 0:
                raise OSError(errno.EIO, "short write")
            written += n
    except OSError as exc:
        # A torn tail is worse than a lost batch: cut back to the last whole line.
        try:
            os.ftruncate(segment.fd, segment.size)
            os.lseek(segment.fd, segment.size, os.SEEK_SET)
        except OSError:
            pass
        what = {
            errno.ENOSPC: "the disk is full",
            errno.EFBIG: "the file size limit was reached",
            errno.EDQUOT: "the disk quota is exceeded",
        }.get(exc.errno or 0, exc.strerror or str(exc))
        raise StoreError(f"{segment.open_path}: write failed: {what}") from exc
    segment.size += written


def seal_file(open_path: Path, name: str, *, gzip_it: bool = False) -> Path:
    """Rename (or gzip) a complete open segment to its sealed name, durably."""
    folder = open_path.parent
    if gzip_it:
        final = folder / (name + ".gz")
        tmp = folder / layout.gzip_temp_name(name)
        try:
            with open(open_path, "rb") as src, open(tmp, "wb") as raw:
                with gzip.GzipFile(filename=name, mode="wb", fileobj=raw, mtime=0) as gz:
                    shutil.copyfileobj(src, gz, 1024 * 1024)
                raw.flush()
                os.fsync(raw.fileno())
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, final)
        layout.fsync_dir(folder)
        open_path.unlink()
    else:
        final = folder / name
        os.replace(open_path, final)
    layout.fsync_dir(folder)
    return final


def write_json_atomic(path: Path, data: Any) -> None:
    """Write a small JSON file atomically and durably (temp file, fsync, rename, fsync dir)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    layout.fsync_dir(path.parent)
