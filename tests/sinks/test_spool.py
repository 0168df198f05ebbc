"""A spool's sealed segments sent and deleted (``logkit.sinks.spool``), with a real file store:
one sender at a time per segment, deleted only once every piece was confirmed."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from logkit.ingest import IngestBlock
from logkit.sinks import SinkUnavailable
from logkit.sinks.spool import deliver_segment, sealed_segments
from logkit.store import layout
from logkit.store.writer import StoreWriter


def spool_with_one_segment(root: Path, lines: int = 3) -> Path:
    writer = StoreWriter(root)
    folder = layout.event_partition(root, "seq", 1, "2026-12-04")
    writer.append(folder, b"".join(b'{"id":"%d"}\n' % n for n in range(lines)), lines)
    writer.close()
    (segment,) = sealed_segments(root)
    return segment


def test_a_confirmed_segment_is_deleted_with_its_counts(tmp_path: Path) -> None:
    segment = spool_with_one_segment(tmp_path)
    sent: list[IngestBlock] = []
    counts = deliver_segment(sent.append, tmp_path, segment)
    assert counts is not None
    assert counts["events"] == 3
    assert [key for block in sent for key in block.events] == [("seq", 1, "2026-12-04")]
    assert not segment.exists()


def test_a_segment_another_sender_holds_is_skipped(tmp_path: Path) -> None:
    segment = spool_with_one_segment(tmp_path)
    sent: list[IngestBlock] = []
    fd = os.open(segment, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert deliver_segment(sent.append, tmp_path, segment) is None
    finally:
        os.close(fd)
    assert sent == []
    assert segment.exists()
    assert deliver_segment(sent.append, tmp_path, segment) is not None


def test_a_failed_send_keeps_the_segment(tmp_path: Path) -> None:
    segment = spool_with_one_segment(tmp_path)

    def down(_block: IngestBlock) -> None:
        raise SinkUnavailable("down")

    with pytest.raises(SinkUnavailable):
        deliver_segment(down, tmp_path, segment)
    assert segment.exists()
    assert deliver_segment(lambda _b: None, tmp_path / "gone", tmp_path / "gone.jsonl") is None
