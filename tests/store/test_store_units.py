"""The store's parts driven directly: segment names the warehouse globs must not match, writer
locks under concurrent recovery, and what the reader and the follower see of a growing segment."""

from __future__ import annotations

import fcntl
import fnmatch
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from logkit.commands.tail import TailOptions, stamp, tail
from logkit.store import layout, reader
from logkit.store import writer as writer_module
from logkit.store.recovery import recover, set_writer_mode
from logkit.store.writer import StoreWriter, WriterOptions

DT = "2026-12-03"
#: The glob of the issue and the README's DuckDB query. DuckDB's ``*`` also matches names that
#: start with a dot, as fnmatch does.
WAREHOUSE_GLOB = "*.jsonl*"


def _envelope(n: int, contract: str = "search", version: int = 2) -> bytes:
    return (
        f'{{"id":"0190c6d2-0000-7000-8000-{n:012d}","received_at":"{DT}T10:00:{n:02d}.000000Z",'
        f'"contract":"{contract}","version":{version},"payload":{{"n":{n}}}}}\n'
    ).encode()


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and layout.STATE not in p.parts)


def test_segments_being_written_do_not_match_the_warehouse_glob(tmp_path: Path) -> None:
    writer = StoreWriter(tmp_path)
    events = layout.event_partition(tmp_path, "search", 2, DT)
    writer.append(events, _envelope(1), 1)
    writer.append(layout.dead_letter_partition(tmp_path, DT), b'{"reason":"invalid"}\n', 1)
    while_open = _files(tmp_path)
    assert len(while_open) == 2
    assert [p for p in while_open if fnmatch.fnmatch(p.name, WAREHOUSE_GLOB)] == []
    writer.close()
    sealed = _files(tmp_path)
    assert [p.name for p in sealed if fnmatch.fnmatch(p.name, WAREHOUSE_GLOB)] == [
        p.name for p in sealed
    ]
    assert len(sealed) == 2


def test_a_gzip_being_made_does_not_match_the_warehouse_glob(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[list[Path]] = []
    real_copy = writer_module.shutil.copyfileobj

    def copy_and_look(*args: Any, **kwargs: Any) -> None:
        real_copy(*args, **kwargs)
        seen.append(_files(tmp_path))

    monkeypatch.setattr(writer_module.shutil, "copyfileobj", copy_and_look)
    writer = StoreWriter(tmp_path, WriterOptions(gzip=True))
    writer.append(layout.event_partition(tmp_path, "search", 2, DT), _envelope(1), 1)
    writer.close()
    assert seen, "the gzip path was not taken"
    matching = [p.name for p in seen[0] if fnmatch.fnmatch(p.name, WAREHOUSE_GLOB)]
    assert matching == [], "a half-written gzip would be read by DuckDB"
    assert [p.name.endswith(".jsonl.gz") for p in _files(tmp_path)] == [True]


def _die(writer: StoreWriter) -> None:
    """What kill -9 leaves: descriptors closed by the kernel, nothing sealed, nothing removed."""
    for segment in writer.segments.values():
        os.close(segment.fd)
    writer.segments.clear()
    os.close(writer._lock_fd)
    writer._lock_fd = -1


def test_a_writer_that_starts_while_another_process_recovers_keeps_its_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process's recovery may run between the creation of a new writer's lock file and
    its flock. It must not take the lock file for a dead writer's and delete it: a writer without
    a lock file is never recovered after a crash, and its open segments stay open for ever."""
    real_flock = fcntl.flock
    raced: list[bool] = []

    class RacingFcntl:
        LOCK_EX, LOCK_NB, LOCK_UN, LOCK_SH = (
            fcntl.LOCK_EX,
            fcntl.LOCK_NB,
            fcntl.LOCK_UN,
            fcntl.LOCK_SH,
        )

        @staticmethod
        def flock(fd: int, operation: int) -> None:
            if not raced:
                raced.append(True)
                recover(tmp_path, lambda _path, _data: None)  # the other process, just now
            real_flock(fd, operation)

    monkeypatch.setattr(writer_module, "fcntl", RacingFcntl)
    writer = StoreWriter(tmp_path)
    monkeypatch.undo()
    assert raced
    set_writer_mode(tmp_path, writer.writer_id, "stream")
    writer.append(layout.dead_letter_partition(tmp_path, DT), b'{"n":1}\n', 1)
    _die(writer)

    recover(tmp_path, lambda _path, _data: None)

    assert list(tmp_path.rglob("*.open")) == []
    sealed = [p for p in _files(tmp_path) if layout.is_sealed(p)]
    assert [p.read_bytes() for p in sealed] == [b'{"n":1}\n']


def test_tail_n_0_prints_nothing(tmp_path: Path) -> None:
    writer = StoreWriter(tmp_path)
    writer.append(layout.event_partition(tmp_path, "search", 2, DT), _envelope(1), 1)
    writer.close()
    out = io.StringIO()
    assert tail(TailOptions(tmp_path, count=0, fmt="json", out=out, err=io.StringIO())) == 0
    assert out.getvalue() == ""


def test_lines_written_between_listing_and_reading_are_shown_once(tmp_path: Path) -> None:
    """``tail --follow`` lists the segments, prints the newest lines, then follows from the sizes
    it listed. A line appended between the listing and the reading must be printed once: by the
    first read or by the follower, not by both."""
    writer = StoreWriter(tmp_path)
    folder = layout.event_partition(tmp_path, "search", 2, DT)
    writer.append(folder, _envelope(1) + _envelope(2), 2)
    listed = reader.list_segments(tmp_path)
    writer.append(folder, _envelope(3), 1)  # arrives while tail reads
    first = reader.newest(listed, 10, stamp=stamp)
    follower = reader.Follower.at_end(listed)
    writer.append(folder, _envelope(4), 1)
    writer.close()  # and the segment is sealed (renamed) as well
    followed = follower.new_lines(reader.list_segments(tmp_path))
    shown = [json.loads(line)["payload"]["n"] for line in first + followed]
    assert shown == [1, 2, 3, 4]


def test_an_open_segment_gzipped_between_listing_and_reading_is_still_read(
    tmp_path: Path,
) -> None:
    writer = StoreWriter(tmp_path, WriterOptions(gzip=True))
    writer.append(layout.event_partition(tmp_path, "search", 2, DT), _envelope(1), 1)
    listed = reader.list_segments(tmp_path)
    assert [layout.is_open(s.path) for s in listed] == [True]
    writer.close()
    assert [json.loads(x)["payload"] for x in reader.newest(listed, 5, stamp=stamp)] == [{"n": 1}]


# -- fsync on the writer's thread (sync_behind) ------------------------------------------------


def test_sync_behind_reports_the_lengths_of_its_call_after_their_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checkpoint callback gets the lengths as they were when the sync was asked for,
    only after every segment written to was fsynced; appends go on while the fsync runs."""
    import threading

    real_fsync = writer_module.os.fsync
    release = threading.Event()
    order: list[object] = []

    def slow_fsync(fd: int) -> None:
        release.wait(10)
        order.append(("fsync", fd))
        real_fsync(fd)

    monkeypatch.setattr(writer_module.os, "fsync", slow_fsync)
    writer = StoreWriter(tmp_path)
    events = layout.event_partition(tmp_path, "search", 2, DT)
    dead = layout.dead_letter_partition(tmp_path, DT)
    writer.append(events, _envelope(1), 1)
    writer.append(dead, b'{"reason":"invalid"}\n', 1)
    sizes = {folder: segment.size for folder, segment in writer.segments.items()}
    writer.sync_behind(lambda lengths: order.append(lengths))
    writer.append(events, _envelope(2), 1)  # while the fsync is held
    assert order == []
    assert all(segment.synced == 0 for segment in writer.segments.values())
    release.set()
    writer.settle()
    fds = {("fsync", segment.fd) for segment in writer.segments.values()}
    assert set(order[:2]) == fds
    assert len(order) == 3
    expected = {
        str(writer.segments[folder].open_path.relative_to(tmp_path)): size
        for folder, size in sizes.items()
    }
    assert order[2] == expected
    assert writer.segments[events].synced == sizes[events] < writer.segments[events].size
    assert writer.lengths() == expected  # the second envelope is not durable yet
    writer.close()


def test_an_fsync_that_fails_on_the_thread_is_raised_by_the_next_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from logkit.errors import StoreError

    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    called: list[dict[str, int]] = []
    writer = StoreWriter(tmp_path)
    events = layout.event_partition(tmp_path, "search", 2, DT)
    writer.append(events, _envelope(1), 1)
    monkeypatch.setattr(writer_module.os, "fsync", failing_fsync)
    writer.sync_behind(called.append)
    with pytest.raises(StoreError, match=r"\.open: fsync failed: Input/output error"):
        writer.sync()
    assert called == [], "a checkpoint was written for data that is not durable"
    assert writer.segments[events].synced == 0
    monkeypatch.undo()
    writer.close()


def test_sealing_waits_for_the_fsync_under_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No segment's descriptor is closed (nor the segment renamed) under its fsync."""
    import threading
    import time

    real_fsync = writer_module.os.fsync
    done: list[int] = []

    def slow_fsync(fd: int) -> None:
        if threading.current_thread() is not threading.main_thread():
            time.sleep(0.2)
        real_fsync(fd)  # EBADF here if the descriptor was closed meanwhile
        done.append(fd)

    monkeypatch.setattr(writer_module.os, "fsync", slow_fsync)
    writer = StoreWriter(tmp_path)
    events = layout.event_partition(tmp_path, "search", 2, DT)
    writer.append(events, _envelope(1), 1)
    fd = writer.segments[events].fd
    writer.sync_behind()
    writer.seal(events)
    assert done[:1] == [fd]
    assert [p.name.endswith(".jsonl") for p in _files(tmp_path)] == [True]
    writer.close()
