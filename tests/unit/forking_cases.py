"""Cases of split_work that fork, run by ``test_forking.py`` in a fresh interpreter (this
file is not collected with the suite: the suite's own process runs other threads by then)."""

from __future__ import annotations

import os
import pickle
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from logkit import forking
from logkit.forking import split_work

PARENT = os.getpid()


def squares(part: Sequence[int]) -> list[tuple[int, int]]:
    return [(x * x, os.getpid()) for x in part]


def values(results: list[tuple[int, int]]) -> list[int]:
    return [value for value, _ in results]


@pytest.fixture
def children(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pids of the children split_work forks.

    split_work does not fork a process running other threads, and the suite's session is one
    by the time it gets here (librdkafka's threads, left by tests/kafka and tests/sinks): these
    cases run in a fresh interpreter, from ``test_forking.py``, where nothing else runs.
    """
    if forking.cpus() < 2 or not forking._can_fork():
        threads = [t.name for t in threading.enumerate()]
        pytest.fail(f"split_work would not fork here (threads: {threads})")
    forked: list[int] = []
    start = forking._start

    def recording(*args: Any) -> Any:
        child = start(*args)
        if child is not None:
            forked.append(child[0])
        return child

    monkeypatch.setattr(forking, "_start", recording)
    return forked


def reaped(pids: list[int]) -> bool:
    """Each child was forked, and has been waited for (no zombie, nothing still running)."""
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            continue
        return False
    return bool(pids)


def test_the_second_half_is_done_by_a_child(children: list[int]) -> None:
    results = split_work(squares, list(range(10)), [1] * 10, minimum=0)
    assert values(results) == [x * x for x in range(10)]
    pids = [pid for _, pid in results]
    assert pids[:5] == [PARENT] * 5
    assert PARENT not in pids[5:]
    assert reaped(children)


def test_the_halves_are_cut_by_weight(children: list[int]) -> None:
    results = split_work(squares, list(range(4)), [5, 1, 1, 1], minimum=0)
    assert [pid == PARENT for _, pid in results] == [True, False, False, False]


def raise_in_child(part: Sequence[int]) -> list[tuple[int, int]]:
    if os.getpid() != PARENT:
        raise ValueError("only in the child")
    return squares(part)


def crash_in_child(part: Sequence[int]) -> list[tuple[int, int]]:
    if os.getpid() != PARENT:
        os._exit(3)
    return squares(part)


def unpicklable_in_child(part: Sequence[int]) -> list[tuple[int, int]]:
    if os.getpid() != PARENT:
        return [(lambda: 0, 0)]  # type: ignore[list-item]
    return squares(part)


@pytest.mark.parametrize("work", [raise_in_child, crash_in_child, unpicklable_in_child])
def test_whatever_goes_wrong_in_the_child_the_parent_does_its_half(
    work: Callable[[Sequence[int]], list[tuple[int, int]]], children: list[int]
) -> None:
    results = split_work(work, list(range(10)), [1] * 10, minimum=0)
    assert results == [(x * x, PARENT) for x in range(10)]
    assert reaped(children)


def test_an_answer_that_does_not_decode_is_redone_here(children: list[int]) -> None:
    def decode(data: bytes) -> list[tuple[int, int]]:
        raise pickle.UnpicklingError("no")

    results = split_work(squares, list(range(6)), [1] * 6, minimum=0, decode=decode)
    assert results == [(x * x, PARENT) for x in range(6)]


def test_a_stuck_child_is_killed_and_its_half_done_here(
    monkeypatch: pytest.MonkeyPatch, children: list[int]
) -> None:
    monkeypatch.setattr(forking, "MIN_WAIT_S", 0.3)

    def stuck_in_child(part: Sequence[int]) -> list[tuple[int, int]]:
        if os.getpid() != PARENT:
            time.sleep(60)
        return squares(part)

    started = time.monotonic()
    results = split_work(stuck_in_child, list(range(6)), [1] * 6, minimum=0)
    assert time.monotonic() - started < 10
    assert results == [(x * x, PARENT) for x in range(6)]
    assert reaped(children)


def test_an_error_in_the_parents_half_is_raised_and_the_child_reaped(
    children: list[int],
) -> None:
    def fails_here(part: Sequence[int]) -> list[tuple[int, int]]:
        if os.getpid() == PARENT:
            raise KeyError("parent")
        time.sleep(60)  # killed, not waited for
        return squares(part)

    started = time.monotonic()
    with pytest.raises(KeyError):
        split_work(fails_here, list(range(6)), [1] * 6, minimum=0)
    assert time.monotonic() - started < 10
    assert reaped(children)
