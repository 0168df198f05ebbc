"""Half of a batch of independent work in one forked child, the other half here.

For CPU-bound work that splits into independent parts and already sits in memory (a loaded
registry): a forked child inherits it for free, so only the results travel, pickled, through a
pipe. The child can only ever make things faster, never different: if forking is not possible,
the batch is small, there is one CPU, or the child fails in any way (an exception, a crash, a
result that does not pickle, no answer in time), the parent does the child's half itself, so
results and errors are exactly those of ``work(items)`` run in one process.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: However fast the parent's half went, the child gets this long before it counts as stuck.
MIN_WAIT_S = 10.0


def cpus() -> int:
    """CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def split_work(
    work: Callable[[Sequence[T]], list[R]],
    items: Sequence[T],
    weights: Sequence[int],
    *,
    minimum: int,
    encode: Callable[[list[R]], bytes] = pickle.dumps,
    decode: Callable[[bytes], list[R]] = pickle.loads,
) -> list[R]:
    """``work(items)``: with ``minimum`` or more total weight and two CPUs, the items after
    the first half of the weight go to a forked child.

    ``work`` must be deterministic and treat items independently (``work(a + b) ==
    work(a) + work(b)``), and raise the same way run anywhere: the parent's half runs first, as
    it would in one process, so the first error is the one one process would raise.
    ``encode``/``decode`` carry the child's results (pickle by default).
    """
    if sum(weights) < minimum or len(items) < 2 or cpus() < 2 or not _can_fork():
        return work(items)
    cut, total, half = 0, 0, sum(weights) / 2
    while cut < len(items) - 1 and total + weights[cut] <= half:
        total += weights[cut]
        cut += 1
    cut = max(cut, 1)
    mine, theirs = items[:cut], items[cut:]
    child = _start(work, theirs, encode)
    if child is None:
        return work(items)
    pid, pipe = child
    answer: bytes | None = None
    status = -1
    try:
        started = time.monotonic()
        results = work(mine)
        waited = max(MIN_WAIT_S, 4 * (time.monotonic() - started))
        answer = _read(pipe, deadline=time.monotonic() + waited)
    finally:
        os.close(pipe)
        status = _reap(pid, kill=answer is None)
    if status == 0 and answer is not None and answer[:1] == b"1":
        try:
            return results + decode(answer[1:])
        except Exception:  # a result that does not unpickle: the child's half is done here
            pass
    return results + work(theirs)


def _can_fork() -> bool:
    # Forking a process that runs other threads (a library's, say librdkafka's) can leave the
    # child waiting forever on a lock one of them held: fork only a single-threaded process,
    # which Linux tells exactly (every thread, native ones too, is a task).
    if not hasattr(os, "fork") or not sys.platform.startswith("linux"):
        return False
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


def _start(
    work: Callable[[Sequence[T]], list[R]],
    items: Sequence[T],
    encode: Callable[[list[R]], bytes],
) -> tuple[int, int] | None:
    """Fork a child that writes ``b"1" + encode(work(items))``, or ``b"0"``, to a pipe."""
    try:
        read_end, write_end = os.pipe()
    except OSError:
        return None
    try:
        pid = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        return None
    if pid == 0:  # the child: never returns, never runs the parent's code after this
        status = 1
        try:
            # Ctrl-C reaches the whole process group: the parent stops the child itself, so
            # no KeyboardInterrupt can escape into code meant for the parent.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            os.close(read_end)
            try:
                payload = b"1" + encode(work(items))
            except BaseException:
                payload = b"0"
            view = memoryview(payload)
            while view:
                view = view[os.write(write_end, view) :]
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)  # or the parent would never see the end of the child's answer
    return pid, read_end


def _read(pipe: int, deadline: float) -> bytes | None:
    """Everything the child writes, or None if it is not done by ``deadline``."""
    chunks: list[bytes] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([pipe], [], [], remaining)[0]:
            return None
        chunk = os.read(pipe, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _reap(pid: int, *, kill: bool) -> int:
    """Wait for the child (killed first when ``kill``): its exit code, or -1."""
    if kill:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return -1
    return os.waitstatus_to_exitcode(status)
