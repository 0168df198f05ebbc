"""Half a batch in a forked child: the same results as one process, whatever the child does."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from logkit import forking
from logkit.forking import split_work

PARENT = os.getpid()


def squares(part: Sequence[int]) -> list[tuple[int, int]]:
    return [(x * x, os.getpid()) for x in part]


def test_a_small_batch_stays_in_one_process() -> None:
    results = split_work(squares, list(range(10)), [1] * 10, minimum=11)
    assert results == [(x * x, PARENT) for x in range(10)]


def test_a_process_running_other_threads_is_not_forked() -> None:
    release = threading.Event()
    thread = threading.Thread(target=release.wait)
    thread.start()
    try:
        results = split_work(squares, list(range(10)), [1] * 10, minimum=0)
    finally:
        release.set()
        thread.join()
    assert results == [(x * x, PARENT) for x in range(10)]


CASES = Path(__file__).with_name("forking_cases.py")


@pytest.mark.skipif(forking.cpus() < 2, reason="split_work forks only with two CPUs or more")
def test_the_forking_cases_pass_in_a_fresh_process() -> None:
    """A fresh interpreter runs no other thread, so split_work forks there: every case in
    forking_cases.py must run and pass (its fixture fails, never skips, if it cannot fork)."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(CASES), "-q", "-p", "no:cacheprovider"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert re.search(r"\b8 passed\b", done.stdout), done.stdout[-2000:]
    assert "skipped" not in done.stdout
