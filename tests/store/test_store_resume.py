"""Resuming: overlapping runs on one file (a cron job that outlives its interval), and stdin
and a file in one command."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from storekit import (
    LOGKIT,
    assert_exactly_once,
    env,
    logkit,
    make_lines,
    open_segments,
    reaped,
    wait_for_writer,
    write_lines,
)


def test_overlapping_runs_on_one_file_store_each_line_once(tmp_path: Path) -> None:
    store = tmp_path / "store"
    lines = make_lines(40_000, seed=90)
    source = write_lines(tmp_path / "app.jsonl", lines)
    command = [LOGKIT, "ingest", str(source), "--store", str(store), "--fsync", "always"]
    command += ["--segment-mb", "0.05"]
    first = subprocess.Popen(command, stderr=subprocess.PIPE, env=env())
    with reaped(first):
        assert wait_for_writer(store, first)
        second = logkit(*command[1:])  # started while the first one is at it
        _, first_err = first.communicate(timeout=120)

    assert first.returncode == 0, first_err.decode()
    assert second.returncode == 0, second.stderr.decode()
    assert b"being ingested by another logkit process" in second.stderr
    assert_exactly_once(store, lines)
    assert open_segments(store) == []


def test_stdin_then_a_file_keeps_the_stdin_lines_after_kill_9(tmp_path: Path) -> None:
    """``ingest - FILE``: the stdin lines cannot be read again, so they must be kept whatever
    happens while the file is ingested next (its checkpoints cover only the file)."""
    store = tmp_path / "store"
    piped = make_lines(200, seed=91)
    filed = make_lines(40_000, seed=92, start=200)
    source = write_lines(tmp_path / "big.jsonl", filed)
    proc = subprocess.Popen(
        [LOGKIT, "ingest", "-", str(source), "--store", str(store)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env(),
    )
    with reaped(proc):
        assert proc.stdin is not None
        proc.stdin.write(b"".join(line.data + b"\n" for line in piped))
        proc.stdin.close()  # stdin ends: the file comes next
        assert wait_for_writer(store, proc)
        time.sleep(0.3)  # into the file, before its first checkpoint (after 1 s)
        assert proc.poll() is None
        proc.kill()
        proc.wait()

    assert logkit("tail", "--store", store, "-n", "1").returncode == 0  # recovers
    resumed = logkit("ingest", source, "--store", store)  # the file resumes
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert_exactly_once(store, piped + filed)
