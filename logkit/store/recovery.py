"""Checkpoints for resuming input files, and recovery of what dead writers left behind.

A writer ingesting a *file* commits checkpoints: the input offset reached and, for each of its
open segments, the length that is durable and covered by that offset. When such a writer dies,
recovery cuts its segments back to the last checkpoint (the rest is ingested again on resume),
so every input line ends up stored exactly once. A writer reading a *stream* (stdin) cannot
replay its input, so recovery keeps every complete line it wrote and turns a torn final line
into a dead letter with reason ``torn_write``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from logkit.errors import StoreError
from logkit.store import layout
from logkit.store.writer import seal_file, write_json_atomic


@dataclass
class Checkpoint:
    """How far one input file has been ingested, durably."""

    source: str
    dev: int
    ino: int
    offset: int = 0
    line: int = 0
    writer: str = ""
    segments: dict[str, int] = field(default_factory=dict)
    complete: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "dev": self.dev,
            "ino": self.ino,
            "offset": self.offset,
            "line": self.line,
            "writer": self.writer,
            "segments": self.segments,
            "complete": self.complete,
        }


def checkpoint_path(root: Path, source: Path) -> Path:
    key = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:24]
    return layout.checkpoints_dir(root) / f"{key}.json"


def load_checkpoint(root: Path, source: Path) -> Checkpoint | None:
    """The checkpoint of ``source``, or None when it is new or was replaced by another file."""
    path = checkpoint_path(root, source)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        stat = source.stat()
    except (OSError, ValueError):
        return None
    if data.get("dev") != stat.st_dev or data.get("ino") != stat.st_ino:
        return None  # another file at the same path: start from its beginning
    if stat.st_size < data.get("offset", 0):
        return None  # truncated and rewritten: start over
    return Checkpoint(**{k: data[k] for k in Checkpoint.__dataclass_fields__ if k in data})


def save_checkpoint(root: Path, source: Path, checkpoint: Checkpoint) -> None:
    write_json_atomic(checkpoint_path(root, source), checkpoint.as_dict())


def lock_source(root: Path, source: Path) -> int | None:
    """Lock an input file for as long as it is ingested (the descriptor to close after), or
    None when another process holds it: two runs on one file would both resume from the same
    checkpoint and store its lines twice."""
    path = checkpoint_path(root, source).with_suffix(".lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    except OSError as exc:
        raise StoreError(f"{path}: cannot lock the input's checkpoint: {exc.strerror}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def set_writer_mode(root: Path, writer: str, mode: str) -> None:
    """Record whether a writer's input can be replayed (``file``) or not (``stream``)."""
    write_json_atomic(layout.locks_dir(root) / f"{writer}.json", {"mode": mode})


@dataclass
class RecoveryReport:
    writers: int = 0
    sealed: int = 0
    removed: int = 0
    torn: int = 0


TornHandler = Callable[[Path, bytes], None]


def recover(root: Path, on_torn: TornHandler) -> RecoveryReport:
    """Seal or cut back the open segments of every writer that is no longer running."""
    report = RecoveryReport()
    locks = layout.locks_dir(root)
    if not locks.is_dir():
        return report
    for lock in sorted(locks.glob("*.lock")):
        writer = lock.name[: -len(".lock")]
        try:
            fd = os.open(lock, os.O_RDWR)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its writer is alive
            _recover_writer(root, writer, on_torn, report)
            report.writers += 1
            (locks / f"{writer}.json").unlink(missing_ok=True)
            lock.unlink(missing_ok=True)
        finally:
            os.close(fd)
    return report


def _committed_lengths(root: Path, writer: str) -> dict[str, int]:
    lengths: dict[str, int] = {}
    folder = layout.checkpoints_dir(root)
    for path in folder.glob("*.json") if folder.is_dir() else []:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if data.get("writer") == writer:
            for name, length in data.get("segments", {}).items():
                lengths[name] = max(lengths.get(name, 0), int(length))
    return lengths


def _mode(root: Path, writer: str) -> str:
    try:
        data = json.loads((layout.locks_dir(root) / f"{writer}.json").read_text())
        return str(data.get("mode", "stream"))
    except (OSError, ValueError):
        return "stream"


def _recover_writer(root: Path, writer: str, on_torn: TornHandler, report: RecoveryReport) -> None:
    resumable = _mode(root, writer) == "file"
    committed = _committed_lengths(root, writer) if resumable else {}
    for open_path in sorted(root.glob(layout.open_glob(writer))):
        name = layout.sealed_name(open_path.name)
        # A gzip that was being made when the writer died: the open segment is still whole.
        (open_path.parent / layout.gzip_temp_name(name)).unlink(missing_ok=True)
        if (open_path.parent / name).exists() or (open_path.parent / (name + ".gz")).exists():
            open_path.unlink()  # sealed already; the crash came before the cleanup
            continue
        size = open_path.stat().st_size
        if resumable:
            keep = min(committed.get(str(open_path.relative_to(root)), 0), size)
        else:
            keep = _complete_length(open_path, size)
            if keep < size:
                with open(open_path, "rb") as handle:
                    handle.seek(keep)
                    on_torn(open_path, handle.read())
                report.torn += 1
        if keep == 0:
            open_path.unlink()
            report.removed += 1
            continue
        if keep < size:
            os.truncate(open_path, keep)
        with open(open_path, "rb+") as handle:
            os.fsync(handle.fileno())
        seal_file(open_path, name, gzip_it=False)
        report.sealed += 1


def _complete_length(path: Path, size: int) -> int:
    """Length up to and including the last newline."""
    with open(path, "rb") as handle:
        position = size
        while position > 0:
            step = min(64 * 1024, position)
            handle.seek(position - step)
            chunk = handle.read(step)
            cut = chunk.rfind(b"\n")
            if cut >= 0:
                return position - step + cut + 1
            position -= step
    return 0
