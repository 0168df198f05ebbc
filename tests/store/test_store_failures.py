"""What goes wrong around an ingest: a full disk, a torn last line, signals, a dead stdin writer,
a damaged ``.gz`` segment, worker processes outliving a killed parent."""

from __future__ import annotations

import fcntl
import json
import os
import resource
import signal
import struct
import subprocess
import termios
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from storekit import (
    LOGKIT,
    assert_exactly_once,
    check_no_duplicates,
    env,
    logkit,
    make_lines,
    open_segments,
    raw_of,
    read_store,
    reaped,
    seq_of,
    wait_for_writer,
    write_lines,
)


def _wait(predicate: object, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _open_lines(store: Path) -> int:
    return sum(p.read_bytes().count(b"\n") for p in open_segments(store))


def _counts(store: Path) -> tuple[int, int]:
    contents = read_store(store)
    return len(contents.events), len(contents.dead)


# -- a full disk -----------------------------------------------------------------------------


def test_file_size_limit_exits_3_and_counts_only_what_is_stored(tmp_path: Path) -> None:
    """RLIMIT_FSIZE makes a write fail part-way (EFBIG) as a full disk does (ENOSPC)."""
    store = tmp_path / "store"
    lines = make_lines(30_000, seed=3)  # about 6 MB in 1 MiB blocks over four partitions
    source = write_lines(tmp_path / "in.jsonl", lines)
    summary = tmp_path / "summary.json"
    limit = 2_500_000

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    failed = subprocess.run(
        [LOGKIT, "ingest", source, "--store", store, "--summary-json", summary],
        capture_output=True,
        env=env(),
        preexec_fn=small_files,
        timeout=60,
        check=False,
    )

    assert failed.returncode == 3, failed.stderr.decode()
    errors = [x for x in failed.stderr.decode().splitlines() if "error" in x]
    assert len(errors) == 1, failed.stderr.decode()
    assert errors[0].startswith("logkit: error: ")
    assert "file size limit" in errors[0]
    assert "Traceback" not in failed.stderr.decode()
    report = json.loads(summary.read_text())
    assert report["error"]
    assert report["stored"] > 0
    assert report["lines"] == report["stored"] + report["dead_lettered"]
    # What was counted is in the store, sealed, and nothing else is; no line is torn.
    assert _counts(store) == (report["stored"], report["dead_lettered"])
    assert all(p.stat().st_size <= limit for p in store.rglob("*") if p.is_file())
    # A later run (which recovers what the failed one left) agrees, and so does resuming.
    assert logkit("tail", "--store", store, "-n", "1").returncode == 0
    assert _counts(store) == (report["stored"], report["dead_lettered"])
    assert logkit("ingest", source, "--store", store).returncode == 0
    assert_exactly_once(store, lines)
    assert open_segments(store) == []


# -- stdin: a torn last line, signals, kill -9 ---------------------------------------------------


def test_a_torn_last_stdin_line_becomes_a_malformed_json_dead_letter(tmp_path: Path) -> None:
    store = tmp_path / "store"
    lines = make_lines(50, seed=4, invalid_rate=0)
    torn = lines[-1].data[: len(lines[-1].data) // 2]
    data = b"".join(x.data + b"\n" for x in lines[:-1]) + torn  # no newline at the end

    done = logkit("ingest", "--store", store, input=data)

    assert done.returncode == 0, done.stderr.decode()
    assert "50 lines read: 49 stored, 1 dead-lettered" in done.stderr.decode()
    contents = read_store(store)
    assert sorted(seq_of(r.data) for r in contents.events) == list(range(49))
    [dead] = [r.value for r in contents.dead]
    assert dead["reason"] == "malformed_json"
    assert raw_of(dead) == torn
    assert (logkit("ingest", "--strict", "--store", tmp_path / "s2", input=data)).returncode == 1


def _start_stdin_ingest(store: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [LOGKIT, "ingest", "--store", str(store), *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env(),
    )


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_mid_stream_seals_reports_and_exits_128_plus_n(
    tmp_path: Path, signum: int, code: int
) -> None:
    store = tmp_path / "store"
    lines = make_lines(300, seed=5)
    proc = _start_stdin_ingest(store, "--summary-json", str(tmp_path / "summary.json"))
    assert proc.stdin is not None
    with reaped(proc):
        proc.stdin.write(b"".join(x.data + b"\n" for x in lines))
        proc.stdin.flush()  # and the slow producer keeps the pipe open
        _wait(lambda: _open_lines(store) == len(lines))

        proc.send_signal(signum)
        _, err = proc.communicate(timeout=20)

    assert proc.returncode == code, err.decode()
    assert "interrupted: 300 lines read" in err.decode()
    assert open_segments(store) == []
    assert_exactly_once(store, lines)
    assert json.loads((tmp_path / "summary.json").read_text())["interrupted"] is True


def test_kill_9_on_stdin_keeps_complete_lines_and_dead_letters_a_torn_tail(
    tmp_path: Path,
) -> None:
    """The next command that opens the store (here ``tail``) seals what the dead stdin writer
    left; the bytes after its last newline (a write cut off mid-line, simulated here) become a
    ``torn_write`` dead letter, since a stream cannot be read again."""
    store = tmp_path / "store"
    lines = make_lines(200, seed=6)
    proc = _start_stdin_ingest(store)
    assert proc.stdin is not None
    with reaped(proc):
        proc.stdin.write(b"".join(x.data + b"\n" for x in lines))
        proc.stdin.flush()
        _wait(lambda: _open_lines(store) == len(lines))
        proc.kill()
        proc.communicate()
    victim = next(p for p in open_segments(store) if "events" in p.parts)
    fragment = b'{"id":"0190c6d2-0000-7000-8000-00000000'
    with open(victim, "ab") as handle:
        handle.write(fragment)

    shown = logkit("tail", "--store", store, "-n", "3", "--format", "json")

    assert shown.returncode == 0, shown.stderr.decode()
    assert len(shown.stdout.splitlines()) == 3
    assert open_segments(store) == []
    contents = assert_exactly_once(store, lines)
    [torn] = [r.value for r in contents.dead if r.value["reason"] == "torn_write"]
    assert raw_of(torn) == fragment
    assert torn["errors"][0]["rule"] == "torn_write"
    assert torn["contract"] is None
    # Recovering twice changes nothing.
    assert logkit("tail", "--store", store, "-n", "1").returncode == 0
    assert len(read_store(store).dead) == len(contents.dead)


# -- worker processes --------------------------------------------------------------------------


def test_workers_of_a_killed_ingest_do_not_hold_its_writer_lock(tmp_path: Path) -> None:
    """When ``ingest --workers 2`` is killed, its worker processes finish their block before
    they notice. While they live they must not keep the dead writer's lock, or the next run
    skips its recovery and later recoveries cut back data the resumed run relies on."""
    store = tmp_path / "store"
    source = write_lines(tmp_path / "in.jsonl", make_lines(60_000, seed=7))
    proc = subprocess.Popen(
        [LOGKIT, "ingest", str(source), "--store", str(store), "--workers", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env(),
    )
    with reaped(proc):
        assert wait_for_writer(store, proc)
        _wait(lambda: _open_lines(store) > 0)
        [lock] = (store / "_logkit" / "writers").glob(f"*-{proc.pid}-*.lock")
        proc.kill()
        proc.wait()

    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError: still held
    finally:
        os.close(fd)


# -- a damaged .gz segment --------------------------------------------------------------------


def test_tail_reports_a_truncated_gz_segment_and_shows_the_others(tmp_path: Path) -> None:
    store = tmp_path / "store"
    lines = make_lines(3_000, seed=8)
    source = write_lines(tmp_path / "in.jsonl", lines)
    assert logkit("ingest", source, "--store", store, "--gzip").returncode == 0
    contents = read_store(store)
    damaged = next(p for p in contents.segments if "version=2" in str(p))
    assert damaged.name.endswith(".jsonl.gz")
    os.truncate(damaged, damaged.stat().st_size // 2)
    others = Counter(r.value["id"] for r in contents.events if r.path != damaged)

    shown = logkit("tail", "--store", store, "-n", "100000", "--format", "json")

    assert shown.returncode == 0
    err = shown.stderr.decode()
    assert str(damaged) in err
    assert "truncated or corrupt" in err
    printed = Counter(json.loads(x)["id"] for x in shown.stdout.splitlines())
    assert printed == others
    check_no_duplicates(contents)


def _unread(pipe: Any) -> int:
    """Bytes written to a pipe that its reader has not read yet."""
    return int(struct.unpack("i", fcntl.ioctl(pipe.fileno(), termios.FIONREAD, b"\0" * 4))[0])


@pytest.mark.parametrize("group", [False, True], ids=["parent", "process-group"])
def test_sigterm_with_workers_stores_every_line_read(tmp_path: Path, group: bool) -> None:
    """With --workers 2, blocks read from stdin are in flight in the workers when SIGTERM
    comes: they were taken from the pipe and cannot be read again, so they must be stored
    before the exit. A SIGTERM to the whole process group (systemd, ``kill -TERM -PGID``)
    reaches the workers too; it must not kill them and leave the parent waiting for ever."""
    store = tmp_path / "store"
    lines = make_lines(20_000, seed=9)  # about 4 MiB: four blocks
    proc = subprocess.Popen(
        [LOGKIT, "ingest", "--store", str(store), "--workers", "2"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env(),
        start_new_session=True,
    )
    with reaped(proc):
        assert proc.stdin is not None
        assert wait_for_writer(store, proc)
        proc.stdin.write(b"".join(x.data + b"\n" for x in lines))
        proc.stdin.flush()
        _wait(lambda: _unread(proc.stdin) == 0)  # all taken from the pipe, some in flight
        if group:
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail("ingest hangs after SIGTERM")

    assert proc.returncode == 143, err.decode()
    assert open_segments(store) == []
    assert_exactly_once(store, lines)
