"""Sources -> ordered BlockResults, in this process or spread over worker processes.

A file is cut into spans of whole lines (``inputs.spans``) that a worker reads back for itself,
so only offsets travel to the workers and only counts and failures travel back; the main
process does little more than find line ends and report. Standard input cannot be read twice,
so its blocks travel whole. Workers number lines from 1 within each block and the main process
shifts them, since only it knows where a block starts. At most ``2 * workers`` blocks are in
flight, so memory stays flat however large the input.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from logkit import inputs, yamlsafe
from logkit.errors import InputError
from logkit.parse import BOM, ParseProblem, decode
from logkit.registry import ContractRef, Registry
from logkit.results import EventFailure, Issue
from logkit.validation import BlockResult, Checker

#: Below this much input, starting workers costs more than it saves.
PARALLEL_MIN_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Job:
    """Everything a worker needs to rebuild the checker (picklable)."""

    registry: Path
    contract: str | None
    max_line_bytes: int
    max_depth: int


def auto_workers(sources: list[inputs.Source]) -> int:
    """One process for small inputs; every core for large ones."""
    if inputs.total_size(sources) < PARALLEL_MIN_BYTES:
        return 1
    # The cores this process may run on (a container or taskset may allow fewer than exist).
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, 8))


def results(
    checker: Checker, job: Job, sources: list[inputs.Source], workers: int
) -> Iterator[tuple[inputs.Source, BlockResult]]:
    """Check every source in order; yields each source's results block by block."""
    pool = None
    try:
        if workers > 1:
            # Held until ``pool`` is set: a Ctrl-C while the pool starts (raised as
            # KeyboardInterrupt when it arrives) must find the pool to stop, in ``finally``.
            with _signals_held():
                pool = _start_checkers(checker, job, workers)
        for source in sources:
            if source.kind != "jsonl":
                yield source, check_document(checker, source)
                continue
            stream = inputs.open_source(source)
            try:
                for result in _check_stream(checker, stream, source, pool, workers):
                    yield source, result
            finally:
                if stream is not sys.stdin.buffer:
                    stream.close()
    finally:
        # However the run ends (done, --max-errors, an error, Ctrl-C, SIGTERM), the workers
        # are alive (they ignore SIGINT and SIGTERM), with at most 2 * workers blocks to finish.
        if pool is not None:
            stop_pool(pool)
            _forget_checker()


def stop_pool(pool: Any) -> None:
    """Let the workers of a ``start_pool`` pool finish what they hold and exit; never
    ``terminate``.

    ``Pool.terminate`` races with the pool's own upkeep (it can fork a replacement worker at
    that moment) and then waits for a worker that never exits, and a pool whose workers died
    of a signal can block it for ever on a queue's lock. Measured here, with ``validate
    --workers 2`` run over and over: one small file, ``terminate`` at the end, hung within 8 to
    40 runs (2,000 runs with ``close``); Ctrl-C sent to the process group, while the workers
    took SIGINT, hung 3 runs in 60 and printed their tracebacks in most; ``kill -TERM`` to the
    group, while they took SIGTERM, hung 33 runs in 150. The workers ignore both now
    (``start_pool``): the parent decides when to stop, and closing needs no signal.
    """
    pool.close()
    pool.join()


_HELD = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM wait (blocked) in this thread, and arrive when the block ends.

    Starting a pool forks its workers and starts its threads, which inherit the mask: each
    worker unblocks both first thing (``_start_worker``); the pool's threads keep them blocked,
    which leaves them to the main thread, where Python handles signals anyway."""
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - not POSIX
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _check_stream(
    checker: Checker, stream: Any, source: inputs.Source, pool: Any, workers: int
) -> Iterator[BlockResult]:
    name, limit, size = source.name, checker.limits.max_line_bytes, inputs.BLOCK_BYTES
    if source.path is None:  # standard input: blocks of bytes
        blocks = inputs.blocks(stream, limit, name, size)
        if pool is None:
            for block in blocks:
                yield checker.check_block(block.data, block.first_line, name, block.cut_size)
        else:
            chunks: Iterator[Task] = (
                (_check_bytes, (block.data, name, block.cut_size)) for block in blocks
            )
            yield from _numbered(_parallel(pool, chunks, workers))
        return
    spans = inputs.spans(stream, limit, name, size)
    if pool is None:
        line = 1
        with inputs.open_source(source) as reader:  # a second handle: spans() reads the first
            for span in spans:
                data = inputs.read_span(reader, span, name)
                result = checker.check_block(data, line, name, span.cut_size)
                line += result.lines
                yield result
    else:
        path = str(source.path)
        tasks: Iterator[Task] = ((_check_span, (path, span, name)) for span in spans)
        yield from _numbered(_parallel(pool, tasks, workers))


def _numbered(results: Iterable[BlockResult]) -> Iterator[BlockResult]:
    """Shift the line numbers of blocks numbered from 1 to where each block starts."""
    before = 0  # lines in the blocks already seen
    for result in results:
        for failure in result.failures:
            failure.line += before
        before += result.lines
        yield result


def check_document(checker: Checker, source: inputs.Source) -> BlockResult:
    """A ``.json`` file (one event) or a ``.yaml`` file (one event per document)."""
    result = BlockResult()
    data = inputs.read_all(source)
    if source.kind == "json":
        # A BOM at the very start is an editor's habit, as in JSONL files.
        data = data.removeprefix(BOM)
        try:
            checker.check_value(decode(data, checker.limits), source.name, 1, result)
        except ParseProblem as problem:
            forced = checker.contract
            result.failures.append(
                EventFailure(
                    source.name,
                    1,
                    problem.reason,
                    [Issue("", problem.rule, problem.message)],
                    forced.name if forced else None,
                    forced.version if forced else None,
                )
            )
        return result
    try:
        for line, value in yamlsafe.load_all_with_lines(data):
            if value is not None:
                checker.check_value(value, source.name, line, result)
    except yamlsafe.YamlError as exc:
        result.failures.append(
            EventFailure(
                source.name, exc.line or 1, "malformed_yaml", [Issue("", "yaml", str(exc))]
            )
        )
    return result


# -- worker processes ----------------------------------------------------------------------

#: A function a worker runs, and its argument.
Task = tuple[Callable[[Any], BlockResult], Any]

_WORKER_CHECKER: Checker | None = None
_WORKER_FILE: tuple[str, BinaryIO] | None = None  # the file a worker last read, and its handle


def _init_worker(job: Job) -> None:
    global _WORKER_CHECKER
    from logkit.parse import Limits

    registry = Registry.load(job.registry)
    contract = registry.get(ContractRef.parse(job.contract)) if job.contract else None
    _WORKER_CHECKER = Checker(registry, contract, Limits(job.max_line_bytes, job.max_depth))
    _tune_worker(job)


def _tune_worker(_job: Job) -> None:
    import gc

    # A worker's own objects live as long as it does: keep the collector from walking them
    # again and again while it allocates events (acyclic, freed by reference counting).
    gc.freeze()


def _check_bytes(task: tuple[bytes, str, int]) -> BlockResult:
    assert _WORKER_CHECKER is not None
    block, name, cut_size = task
    return _WORKER_CHECKER.check_block(block, 1, name, cut_size)


def _check_span(task: tuple[str, inputs.Span, str]) -> BlockResult:
    global _WORKER_FILE
    assert _WORKER_CHECKER is not None
    path, span, name = task
    if _WORKER_FILE is None or _WORKER_FILE[0] != path:
        if _WORKER_FILE is not None:
            _WORKER_FILE[1].close()
            _WORKER_FILE = None
        try:
            _WORKER_FILE = (path, open(path, "rb"))  # noqa: SIM115 - kept open for the next span
        except OSError as exc:
            raise InputError(f"{name}: cannot read: {exc.strerror or exc}") from exc
    block = inputs.read_span(_WORKER_FILE[1], span, name)
    return _WORKER_CHECKER.check_block(block, 1, name, span.cut_size)


def _start_checkers(checker: Checker, job: Job, workers: int) -> Any:
    """A pool of workers that check blocks with ``checker`` (or one rebuilt from ``job``)."""
    global _WORKER_CHECKER
    if _can_fork():
        # Forked workers inherit the checker, compiled validators and all: nothing to reload.
        _WORKER_CHECKER = checker
        return start_pool(job, workers, initializer=_tune_worker)
    return start_pool(job, workers)


def _forget_checker() -> None:
    global _WORKER_CHECKER
    _WORKER_CHECKER = None


def start_pool(job: Job, workers: int, initializer: Callable[[Job], None] | None = None) -> Any:
    """A process pool whose workers are set up by ``initializer(job)``; stop it with
    ``stop_pool``. Its workers ignore SIGINT and SIGTERM: Ctrl-C, systemd and ``kill -TERM
    -PGID`` reach the whole process group, and a worker that died of them would print a
    traceback, leave the block it holds unanswered (a block taken from stdin lost), and have
    the pool fork a replacement. The parent decides when to stop and lets them finish."""
    import multiprocessing

    # fork is fast and safe here: the parent runs no threads when the pool starts.
    method = "fork" if _can_fork() else "spawn"
    context = multiprocessing.get_context(method)
    # Held while the pool starts, so that no signal reaches a worker before it ignores it (a
    # caller whose handlers raise holds them until it holds the pool, as ``results`` does).
    with _signals_held():
        return context.Pool(
            workers, initializer=_start_worker, initargs=(initializer or _init_worker, job)
        )


def _start_worker(initializer: Callable[[Job], None], job: Job) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _HELD)  # held while the pool started
    initializer(job)


def _can_fork() -> bool:
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods()


def _parallel(pool: Any, tasks: Iterator[Task], workers: int) -> Iterator[BlockResult]:
    pending: deque[Any] = deque()
    for function, task in tasks:
        pending.append(pool.apply_async(function, (task,)))
        if len(pending) >= 2 * workers:
            yield pending.popleft().get()
    while pending:
        yield pending.popleft().get()
