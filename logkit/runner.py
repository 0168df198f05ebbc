"""Sources -> ordered BlockResults, in this process or spread over worker processes.

Workers receive whole blocks of lines (one bytes object each, cheap to ship) and send back only
counts and failures, so the main process does little more than read and report. At most
``2 * workers`` blocks are in flight, so memory stays flat however large the input.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from logkit import inputs, yamlsafe
from logkit.parse import ParseProblem, decode
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
    return max(1, min(os.cpu_count() or 1, 8))


def results(
    checker: Checker, job: Job, sources: list[inputs.Source], workers: int
) -> Iterator[tuple[inputs.Source, BlockResult]]:
    """Check every source in order; yields each source's results block by block."""
    pool = start_pool(job, workers) if workers > 1 else None
    try:
        for source in sources:
            if source.kind == "jsonl":
                stream = inputs.open_source(source)
                try:
                    chunks = inputs.blocks(stream, checker.limits.max_line_bytes, source.name)
                    if pool is None:
                        for first, block in chunks:
                            yield source, checker.check_block(block, first, source.name)
                    else:
                        for result in _parallel(pool, chunks, source.name, workers):
                            yield source, result
                finally:
                    if stream is not sys.stdin.buffer:
                        stream.close()
            else:
                yield source, check_document(checker, source)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()


def check_document(checker: Checker, source: inputs.Source) -> BlockResult:
    """A ``.json`` file (one event) or a ``.yaml`` file (one event per document)."""
    result = BlockResult()
    data = inputs.read_all(source)
    if source.kind == "json":
        try:
            checker.check_value(decode(data, checker.limits), source.name, 1, result)
        except ParseProblem as problem:
            result.failures.append(
                EventFailure(
                    source.name, 1, problem.reason, [Issue("", problem.rule, problem.message)]
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

_WORKER_CHECKER: Checker | None = None


def _init_worker(job: Job) -> None:
    global _WORKER_CHECKER
    from logkit.parse import Limits

    registry = Registry.load(job.registry)
    contract = registry.get(ContractRef.parse(job.contract)) if job.contract else None
    _WORKER_CHECKER = Checker(registry, contract, Limits(job.max_line_bytes, job.max_depth))


def _work(task: tuple[bytes, int, str]) -> BlockResult:
    assert _WORKER_CHECKER is not None
    block, first, name = task
    return _WORKER_CHECKER.check_block(block, first, name)


def start_pool(job: Job, workers: int, initializer: Callable[[Job], None] | None = None) -> Any:
    """A process pool whose workers are set up by ``initializer(job)``."""
    # fork is fast and safe here: the parent runs no threads when the pool starts.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    return context.Pool(workers, initializer=initializer or _init_worker, initargs=(job,))


def _parallel(
    pool: Any, chunks: Iterator[tuple[int, bytes]], name: str, workers: int
) -> Iterator[BlockResult]:
    pending: deque[Any] = deque()
    for first, block in chunks:
        pending.append(pool.apply_async(_work, ((block, first, name),)))
        if len(pending) >= 2 * workers:
            yield pending.popleft().get()
    while pending:
        yield pending.popleft().get()
