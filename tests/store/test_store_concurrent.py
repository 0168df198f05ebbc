"""Four ``logkit ingest`` processes write one store at once, each to its own segments."""

from __future__ import annotations

import subprocess
from collections import defaultdict
from pathlib import Path

from storekit import (
    LOGKIT,
    assert_exactly_once,
    env,
    make_lines,
    open_segments,
    read_store,
    seq_of,
    write_lines,
)

from logkit.store import layout


def test_four_concurrent_ingests_store_every_line_once_in_their_own_segments(
    tmp_path: Path,
) -> None:
    store = tmp_path / "store"
    inputs = []
    lines = []
    for n in range(4):
        mine = make_lines(6_000, seed=40 + n, start=n * 1_000_000)
        inputs.append(write_lines(tmp_path / f"in{n}.jsonl", mine))
        lines += mine
    procs = [
        subprocess.Popen(
            [LOGKIT, "ingest", str(path), "--store", str(store), "--segment-mb", "0.3"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env(),
        )
        for path in inputs
    ]
    results = [proc.communicate(timeout=120) for proc in procs]

    assert [proc.returncode for proc in procs] == [0] * 4, [err for _, err in results]
    contents = assert_exactly_once(store, lines)
    assert open_segments(store) == []
    # Each segment was written by one process, and holds the lines of one input file only.
    files_of_writer: dict[str, set[int]] = defaultdict(set)
    for record in contents.events + contents.dead:
        files_of_writer[layout.writer_of(record.path)].add(seq_of(record.data) // 1_000_000)
    assert len(files_of_writer) == 4
    assert sorted(next(iter(v)) for v in files_of_writer.values()) == [0, 1, 2, 3]
    assert all(len(v) == 1 for v in files_of_writer.values())
    assert len(read_store(store).segments) > 4 * 4  # rotation happened in every process
