"""Event sources -> blocks of lines, with line numbers, in bounded memory.

JSONL is read in blocks that end on a line boundary, so a block can be checked in this process
or shipped to a worker whole. ``.json`` files hold one event and ``.yaml``/``.yml`` files one
event per document; those are small by nature and are read whole.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from logkit.errors import InputError
from logkit.parse import BOM

JSONL_SUFFIXES = (".jsonl", ".ndjson")
EVENT_SUFFIXES = (".json", ".jsonl", ".ndjson", ".yaml", ".yml")
BLOCK_BYTES = 1024 * 1024
STDIN = "-"


@dataclass(frozen=True, slots=True)
class Source:
    """One input: a file, or standard input (``path`` None)."""

    name: str
    path: Path | None
    kind: str  # "jsonl", "json" or "yaml"

    @property
    def size(self) -> int | None:
        try:
            return self.path.stat().st_size if self.path else None
        except OSError:
            return None


def _kind(path: Path) -> str:
    if path.suffix in (".yaml", ".yml"):
        return "yaml"
    if path.suffix == ".json":
        return "json"
    return "jsonl"  # .jsonl, .ndjson, and any file named explicitly whatever its ending


def discover(paths: list[str]) -> list[Source]:
    """Sources for command-line paths: files, folders (recursively) and ``-`` for stdin."""
    sources: list[Source] = []
    for raw in paths:
        if raw == STDIN:
            sources.append(Source("<stdin>", None, "jsonl"))
            continue
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.suffix in EVENT_SUFFIXES
                and p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            sources.extend(Source(str(p), p, _kind(p)) for p in found)
        elif path.is_file():
            sources.append(Source(raw, path, _kind(path)))
        elif path.exists():
            raise InputError(f"{raw}: not a regular file or folder")
        else:
            raise InputError(f"{raw}: no such file or folder")
    return sources


def open_source(source: Source) -> BinaryIO:
    if source.path is None:
        return sys.stdin.buffer
    try:
        return open(source.path, "rb")
    except OSError as exc:
        raise InputError(f"{source.name}: cannot read: {exc.strerror or exc}") from exc


def read_all(source: Source) -> bytes:
    with open_source(source) as stream:
        try:
            return stream.read()
        except OSError as exc:
            raise InputError(f"{source.name}: cannot read: {exc.strerror or exc}") from exc


@dataclass(frozen=True, slots=True)
class Block:
    """Whole lines ``first_line..last_line`` of an input; ``end_offset`` is the byte offset
    just after them (where reading resumes). ``data`` is empty for a poll tick on a quiet pipe.
    A line over the size limit comes alone, cut to the limit plus one byte; ``cut_size`` is
    then its real size (0 for a block of whole lines)."""

    first_line: int
    data: bytes
    end_offset: int
    last_line: int
    cut_size: int = 0


def blocks(
    stream: BinaryIO, max_line_bytes: int, name: str, block_bytes: int = BLOCK_BYTES
) -> Iterator[Block]:
    """The blocks of ``read_blocks`` that hold data."""
    for block in read_blocks(stream, max_line_bytes, name, block_bytes=block_bytes):
        if block.data:
            yield block


def read_blocks(
    stream: BinaryIO,
    max_line_bytes: int,
    name: str,
    *,
    block_bytes: int = BLOCK_BYTES,
    start_line: int = 1,
    start_offset: int = 0,
    stop: Callable[[], object] | None = None,
    poll_seconds: float = 0.5,
) -> Iterator[Block]:
    """Read whole lines in blocks, with line numbers and byte offsets, in bounded memory.

    A BOM at the very start of the input is dropped. A line longer than ``max_line_bytes`` is
    yielded alone, cut to ``max_line_bytes + 1`` bytes, with its real size, once its end is
    found; the rest of it is skipped. On a pipe, an empty block is yielded
    every ``poll_seconds`` of silence, so the caller can keep time; ``stop()`` ends reading.
    """
    line = start_line
    consumed = start_offset  # bytes taken from the stream so far
    pending = b""
    oversize: bytes | None = None
    oversize_size = 0  # bytes of the line over the limit seen so far
    first = start_offset == 0
    read = stream.read1 if hasattr(stream, "read1") else stream.read
    wait = _poller(stream, poll_seconds) if stop is not None else None
    while True:
        if stop is not None and stop():
            break
        if wait is not None and not wait():
            yield Block(line, b"", consumed - len(pending), line - 1)
            continue
        try:
            data = read(block_bytes)
        except OSError as exc:
            raise InputError(f"{name}: cannot read: {exc.strerror or exc}") from exc
        if not data:
            break
        consumed += len(data)
        if first:
            data, pending = pending + data, b""
            if len(data) < len(BOM) and BOM.startswith(data):
                pending = data  # a pipe's first reads may be shorter than a BOM: read on
                continue
            first = False
            if data.startswith(BOM):  # a BOM at the very start is an editor's habit, not data
                data = data[len(BOM) :]
        if oversize is not None:
            cut = data.find(b"\n")
            if cut < 0:
                oversize_size += len(data)
                continue
            oversize_size += cut
            data = data[cut + 1 :]
            yield Block(line, oversize + b"\n", consumed - len(data), line, oversize_size)
            line += 1
            oversize = None
        cut = data.rfind(b"\n")
        if cut < 0:
            pending += data
        else:
            # The block is copied once: the line begun by the last read, then this read's
            # whole lines (a join of a view, not a slice then a concatenation).
            block = b"".join((pending, memoryview(data)[: cut + 1])) if pending else data[: cut + 1]
            pending = data[cut + 1 :]
            lines = newlines(block)
            yield Block(line, block, consumed - len(pending), line + lines - 1)
            line += lines
        if len(pending) > max_line_bytes:
            oversize, oversize_size, pending = pending[: max_line_bytes + 1], len(pending), b""
    if oversize is not None:
        yield Block(line, oversize, consumed, line, oversize_size)
    elif pending:
        yield Block(line, pending, consumed, line)


def newlines(data: bytes) -> int:
    """``data.count(b"\\n")``, in half the time on JSONL: CPython counts one byte by looking
    at every byte, and deletes one by jumping from each to the next with memchr."""
    return len(data) - len(data.replace(b"\n", b""))


@dataclass(frozen=True, slots=True)
class Span:
    """Where a block lies in a file: ``length`` bytes from offset ``start``. For a line over
    the size limit, cut to the limit plus one byte, ``cut_size`` is its real size."""

    start: int
    length: int
    cut_size: int = 0


def spans(
    stream: BinaryIO, max_line_bytes: int, name: str, block_bytes: int = BLOCK_BYTES
) -> Iterator[Span]:
    """The blocks of a file as byte ranges: whole lines, about ``block_bytes`` at a time.

    The same cuts as ``read_blocks`` (a BOM at the very start dropped, a line longer than
    ``max_line_bytes`` alone, kept to ``max_line_bytes + 1`` bytes with its real size, and the
    rest skipped), found
    without copying any line out: whoever checks a span reads it back with ``read_span``, in
    this process or another.
    """
    read = stream.read1 if hasattr(stream, "read1") else stream.read
    position = 0  # file offset of the next read
    start = 0  # file offset where the next block begins
    skipping = False  # inside a line over the limit, looking for its end
    while True:
        try:
            data = read(block_bytes)
        except OSError as exc:
            raise InputError(f"{name}: cannot read: {exc.strerror or exc}") from exc
        if not data:
            break
        chunk, position, offset = position, position + len(data), 0
        if chunk == 0 and data.startswith(BOM):
            start = offset = len(BOM)
        if skipping:
            cut = data.find(b"\n", offset)
            if cut < 0:
                continue
            yield Span(start, max_line_bytes + 1, chunk + cut - start)
            start, offset, skipping = chunk + cut + 1, cut + 1, False
        cut = data.rfind(b"\n", offset)
        if cut >= 0:
            yield Span(start, chunk + cut + 1 - start)
            start = chunk + cut + 1
        skipping = position - start > max_line_bytes
    if skipping:
        yield Span(start, max_line_bytes + 1, position - start)
    elif position > start:
        yield Span(start, position - start)


def read_span(stream: BinaryIO, span: Span, name: str) -> bytes:
    """The bytes of a span, from a file of one's own (this moves its position)."""
    try:
        stream.seek(span.start)
        data = stream.read(span.length)
    except OSError as exc:
        raise InputError(f"{name}: cannot read: {exc.strerror or exc}") from exc
    if len(data) != span.length:
        raise InputError(f"{name}: the file shrank while it was being read")
    return data


def _poller(stream: BinaryIO, seconds: float) -> Callable[[], bool] | None:
    """For pipes and terminals: a function that waits up to ``seconds`` for data."""
    try:
        fileno = stream.fileno()
        if stat.S_ISREG(os.fstat(fileno).st_mode):
            return None
    except (OSError, ValueError, AttributeError):
        return None
    import select

    def wait() -> bool:
        ready, _, _ = select.select([fileno], [], [], seconds)
        return bool(ready)

    return wait


def total_size(sources: list[Source]) -> int:
    """Bytes of the file sources (stdin counts as unknown, i.e. large)."""
    total = 0
    for source in sources:
        size = source.size
        total += size if size is not None else 1 << 40
    return total


def stdin_is_piped() -> bool:
    try:
        return not os.isatty(sys.stdin.fileno())
    except (OSError, ValueError):
        return True
