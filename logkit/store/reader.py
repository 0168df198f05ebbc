"""Reading a store from its newest end: what ``logkit tail`` shows.

Segments are listed per partition and read backwards from their ends, newest segment first
(by modification time), so the cost of ``tail -n 20`` depends on the 20 events, not on the size
of the store. Segments being written are read up to their last complete line.
"""

from __future__ import annotations

import gzip
import heapq
import os
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from logkit.store import layout

READ_STEP = 256 * 1024


@dataclass(frozen=True, slots=True)
class SegmentFile:
    path: Path
    mtime: float
    size: int

    @property
    def gzipped(self) -> bool:
        return self.path.name.endswith(".gz")

    @property
    def key(self) -> str:
        """The segment's sealed name without ``.gz``: stable across sealing."""
        name = self.path.name
        if layout.is_open(self.path):
            name = layout.sealed_name(name)
        return str(self.path.parent / name.removesuffix(".gz"))


def list_segments(
    root: Path,
    *,
    dead_letter: bool = False,
    contract: str | None = None,
    version: int | None = None,
    since_dt: str | None = None,
) -> list[SegmentFile]:
    """Every segment (sealed or open) of the matching partitions."""
    if dead_letter:
        base = root / layout.DEAD_LETTER
        partitions = [p for p in _children(base) if p.name.startswith("dt=")]
    else:
        base = root / layout.EVENTS
        contracts = (
            [base / f"contract={contract}"]
            if contract
            else [p for p in _children(base) if p.name.startswith("contract=")]
        )
        versions = [
            v
            for c in contracts
            for v in _children(c)
            if v.name.startswith("version=") and (version is None or v.name == f"version={version}")
        ]
        partitions = [d for v in versions for d in _children(v) if d.name.startswith("dt=")]
    if since_dt:
        partitions = [p for p in partitions if p.name[3:] >= since_dt]
    segments = []
    for partition in partitions:
        for entry in _scandir(partition):
            name = entry.name
            sealed = name.startswith("part-") and name.endswith(layout.SEALED_SUFFIXES)
            if not sealed and not (
                name.startswith(layout.OPEN_PREFIX) and name.endswith(layout.OPEN_SUFFIX)
            ):
                continue
            try:
                stat = entry.stat()
            except OSError:
                continue  # sealed (renamed) between listing and stat; the new name is listed
            segments.append(SegmentFile(Path(entry.path), stat.st_mtime, stat.st_size))
    return segments


def _children(folder: Path) -> list[Path]:
    return [Path(e.path) for e in _scandir(folder) if e.is_dir()]


def _scandir(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except OSError:
        return []


class CorruptSegment(Exception):
    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(f"{path}: {detail}")
        self.path = path


def lines_backwards(segment: SegmentFile) -> Iterator[bytes]:
    """Complete lines of a segment, last first. Raises CorruptSegment for a broken .gz.

    Only the ``segment.size`` bytes seen when it was listed are read: what was appended since
    is left to ``Follower``, which starts from that size, so no line is shown twice.
    """
    if segment.gzipped:
        yield from reversed(_gz_lines(segment.path))
        return
    try:
        handle = open(segment.path, "rb")  # noqa: SIM115 - closed below, generator-safe
    except FileNotFoundError:
        sealed = Path(segment.key)
        if not sealed.exists():
            gzipped = Path(segment.key + ".gz")
            if gzipped.exists():  # sealed with --gzip while we looked
                yield from reversed(_first_bytes(_gz_lines(gzipped), segment.size))
            return
        handle = open(sealed, "rb")  # noqa: SIM115
    with handle:
        position = _last_newline_end(handle, segment.size)
        tail = b""
        while position > 0:
            step = min(READ_STEP, position)
            position -= step
            handle.seek(position)
            parts = (handle.read(step) + tail).split(b"\n")
            tail = parts[0]
            for line in reversed(parts[1:]):
                if line:
                    yield line
        if tail:
            yield tail


def _last_newline_end(handle: BinaryIO, size: int) -> int:
    """Length of the first ``size`` bytes up to and including their last newline (a torn tail
    is left out)."""
    position = min(size, handle.seek(0, os.SEEK_END))
    while position > 0:
        step = min(READ_STEP, position)
        handle.seek(position - step)
        cut = handle.read(step).rfind(b"\n")
        if cut >= 0:
            return position - step + cut + 1
        position -= step
    return 0


def _gz_lines(path: Path) -> list[bytes]:
    lines: list[bytes] = []
    try:
        with gzip.open(path, "rb") as handle:
            for line in handle:
                if line.endswith(b"\n"):
                    lines.append(line[:-1])
    except (EOFError, OSError, zlib.error) as exc:
        raise CorruptSegment(
            path,
            f"truncated or corrupt gzip segment ({len(lines)} lines read before the damage): {exc}",
        ) from exc
    return lines


def newest(
    segments: list[SegmentFile],
    count: int,
    *,
    stamp: Callable[[bytes], str],
    keep: Callable[[bytes], bool] = lambda _line: True,
    on_corrupt: Callable[[CorruptSegment], None] = lambda _e: None,
) -> list[bytes]:
    """The ``count`` newest lines (by ``stamp``) that ``keep`` accepts, oldest first."""
    if count <= 0:
        return []
    heap: list[tuple[str, int, bytes]] = []
    order = 0
    for segment in sorted(segments, key=lambda s: s.mtime, reverse=True):
        if len(heap) >= count and _mtime_stamp(segment.mtime) < heap[0][0]:
            break  # every line of this and older segments was stamped before the ones we hold
        try:
            for line in lines_backwards(segment):
                if not keep(line):
                    continue
                order += 1
                item = (stamp(line), order, line)
                if len(heap) < count:
                    heapq.heappush(heap, item)
                elif item > heap[0]:
                    heapq.heapreplace(heap, item)
                else:
                    break  # older lines of this segment are older still
        except CorruptSegment as exc:
            on_corrupt(exc)
    return [line for _, _, line in sorted(heap)]


def _mtime_stamp(mtime: float) -> str:
    from datetime import UTC, datetime

    # A second of slack: the stamp is taken just before the write that sets the mtime.
    return datetime.fromtimestamp(mtime + 1, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Follower:
    """Remembers how far each segment was read, to print only what is new."""

    positions: dict[str, int]
    partial: dict[str, bytes]

    @classmethod
    def at_end(cls, segments: list[SegmentFile]) -> Follower:
        return cls({s.key: (-1 if s.gzipped else s.size) for s in segments}, {})

    def new_lines(self, segments: list[SegmentFile]) -> list[bytes]:
        found: list[bytes] = []
        for segment in segments:
            done = self.positions.get(segment.key, 0)
            if done < 0:
                continue  # a gzipped segment seen whole already
            if segment.gzipped:
                self.positions[segment.key] = -1
                try:
                    lines = _gz_lines(segment.path)
                except CorruptSegment:
                    continue
                found.extend(_skip_bytes(lines, done))
                continue
            if segment.size <= done:
                continue
            try:
                with open(segment.path, "rb") as handle:
                    handle.seek(done)
                    data = handle.read(segment.size - done)
            except FileNotFoundError:
                continue  # renamed while we looked; picked up under its sealed name next time
            cut = data.rfind(b"\n")
            if cut < 0:
                continue
            self.positions[segment.key] = done + cut + 1
            found.extend(line for line in data[:cut].split(b"\n") if line)
        return found


def _first_bytes(lines: list[bytes], size: int) -> list[bytes]:
    """The lines that lie wholly within the first ``size`` bytes."""
    total = 0
    result = []
    for line in lines:
        total += len(line) + 1
        if total > size:
            break
        result.append(line)
    return result


def _skip_bytes(lines: list[bytes], done: int) -> list[bytes]:
    total = 0
    result = []
    for line in lines:
        if total >= done:
            result.append(line)
        total += len(line) + 1
    return result
