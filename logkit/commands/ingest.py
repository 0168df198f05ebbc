"""``logkit ingest``: JSONL in; envelopes and dead letters appended to the store or a sink.

With ``--sink URL`` each block is first appended to the sink's spool (a file store of its own
under ``<store>/_spool/``, which also holds the checkpoints of the inputs sent to that sink),
fsynced and checkpointed, then sent to the sink (retried with backoff), then cut from the spool
once the sink confirmed it. While the sink is down, blocks stay in the spool for ``replay``.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Any

from logkit import inputs
from logkit.errors import StoreError, UsageError
from logkit.ingest import DEAD, STORED, Enveloper, IngestBlock, dead_letter
from logkit.parse import Limits
from logkit.registry import ContractRef, Registry
from logkit.results import Issue, plural
from logkit.settings import Settings
from logkit.sinks import SinkError
from logkit.store import layout
from logkit.store.ids import IdClock
from logkit.store.recovery import (
    Checkpoint,
    load_checkpoint,
    lock_source,
    recover,
    save_checkpoint,
    set_writer_mode,
)
from logkit.store.writer import StoreWriter, WriterOptions
from logkit.validation import Checker

if TYPE_CHECKING:
    from logkit.sinks.delivery import Delivery

SPOOLED = "spooled"


@dataclass
class IngestOptions:
    paths: list[str]
    settings: Settings
    contract: str | None = None
    strict: bool = False
    fsync: str = "batch"
    gzip: bool = False
    segment_bytes: int | None = None
    segment_seconds: float | None = None
    fsync_seconds: float | None = None
    workers: int | None = None
    summary_json: Path | None = None
    metrics_file: Path | None = None
    progress: bool | None = None
    from_start: bool = False
    sink: str | None = None
    sink_retry_seconds: float = 3.0
    err: IO[str] = field(default_factory=lambda: sys.stderr)


@dataclass
class Totals:
    lines: int = 0
    blank: int = 0
    bytes: int = 0
    stored: int = 0
    dead: int = 0
    outcomes: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    rules: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    skipped_sources: list[str] = field(default_factory=list)
    busy_sources: list[str] = field(default_factory=list)
    last_success: float = 0.0
    #: With --sink: its label, events and dead letters spooled, errors by kind, up or down.
    sink: str | None = None
    spool: Path | None = None
    spooled: int = 0
    spooled_dead: int = 0
    sink_errors: Counter[str] = field(default_factory=Counter)
    sink_up: bool = True

    def add(self, block: IngestBlock, *, spooled: bool = False) -> None:
        self.lines += block.lines
        self.blank += block.blank
        self.bytes += block.bytes
        self.dead += block.dead_lettered
        self.rules.update(block.rules)
        if spooled:
            self.spooled += block.stored
            self.spooled_dead += block.dead_lettered
            for (contract, version, outcome), count in block.outcomes.items():
                key = (contract, version, SPOOLED if outcome == STORED else outcome)
                self.outcomes[key] += count
            return
        self.stored += block.stored
        self.outcomes.update(block.outcomes)
        if block.stored:
            self.last_success = time.time()


class StopSignal:
    """SIGINT/SIGTERM: stop reading, then flush, seal and report as usual."""

    def __init__(self) -> None:
        self.signum = 0

    def __call__(self, signum: int, _frame: FrameType | None) -> None:
        self.signum = signum

    def install(self) -> list[tuple[int, Any]]:
        previous: list[tuple[int, Any]] = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous.append((signum, signal.signal(signum, self)))
        return previous


def recover_store(root: Path) -> None:
    """Seal what dead writers left; a torn final line becomes a ``torn_write`` dead letter."""
    writer: StoreWriter | None = None
    clock = IdClock()

    def on_torn(segment: Path, data: bytes) -> None:
        nonlocal writer
        if writer is None:
            writer = StoreWriter(root, WriterOptions(fsync="always"))
        uid, received_at, dt = clock.next()
        issue = Issue(
            "",
            "torn_write",
            f"the writing process died mid-line; {len(data)} bytes recovered from {segment.name}",
        )
        writer.append(
            layout.dead_letter_partition(root, dt),
            dead_letter(
                uid,
                received_at,
                data,
                "torn_write",
                [issue],
                None,
                None,
                None,
                None,
                segment=str(segment.relative_to(root)),
            ),
            1,
        )

    try:
        recover(root, on_torn)
    finally:
        if writer is not None:
            writer.close()


def ingest(options: IngestOptions) -> int:
    paths = options.paths or ([inputs.STDIN] if inputs.stdin_is_piped() else [])
    if not paths:
        raise UsageError("give JSONL files, or pipe events to stdin (see `logkit ingest --help`)")
    registry = Registry.load(options.settings.registry)
    contract = registry.get(ContractRef.parse(options.contract)) if options.contract else None
    if contract is not None:
        registry.validator(contract)
    limits = Limits(options.settings.max_line_bytes, options.settings.max_depth)
    checker = Checker(registry, contract, limits)
    sources = inputs.discover(paths)
    if any(s.kind != "jsonl" for s in sources):
        bad = next(s for s in sources if s.kind != "jsonl")
        raise UsageError(
            f"{bad.name}: ingest reads JSONL (one event per line); convert "
            f"{bad.kind.upper()} files first"
        )
    stop = StopSignal()
    delivery = _open_sink(options, stop) if options.sink else None
    try:
        return _ingest_into(options, checker, contract, limits, sources, stop, delivery)
    finally:
        if delivery is not None:
            delivery.sink.close()


def _open_sink(options: IngestOptions, stop: StopSignal) -> Delivery:
    """The sink of ``--sink``, not yet connected (a URL of no known kind raises here)."""
    from logkit.sinks import open_sink
    from logkit.sinks.delivery import Delivery, RetryPolicy

    assert options.sink is not None
    if options.sink_retry_seconds < 0:
        raise UsageError("--sink-retry-seconds must be 0 or more")
    return Delivery(
        open_sink(options.sink),
        RetryPolicy(retry_seconds=options.sink_retry_seconds),
        stop=lambda: stop.signum,
    )


def _start_sink(delivery: Delivery, root: Path, err: IO[str]) -> None:
    """Connect and check the sink: a setup error raises here, before any event is read. A sink
    that is only down is said once; the first blocks then go to the spool."""
    from logkit.sinks.spool import record_sink

    started = delivery.start()
    if started.notice:
        err.write(f"logkit: {started.notice}\n")
    record_sink(root, delivery.sink.label)


def _ingest_into(
    options: IngestOptions,
    checker: Checker,
    contract: Any,
    limits: Limits,
    sources: list[inputs.Source],
    stop: StopSignal,
    delivery: Delivery | None,
) -> int:
    registry = checker.registry
    root = options.settings.store
    if delivery is not None:
        from logkit.sinks.delivery import spool_root

        root = spool_root(root, delivery.sink.url)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"{root}: cannot create the store: {exc.strerror or exc}") from exc
    recover_store(root)

    writer_options = WriterOptions(fsync=options.fsync, gzip=options.gzip)
    if options.segment_bytes:
        writer_options.segment_bytes = options.segment_bytes
    if options.segment_seconds:
        writer_options.segment_seconds = options.segment_seconds
    if options.fsync_seconds:
        writer_options.batch_seconds = options.fsync_seconds
    enveloper = Enveloper(checker)
    workers = options.workers or 1
    pool = None
    if workers > 1:
        from logkit.runner import Job, start_pool, stop_pool

        # Before the writer exists: forked workers would share its flock, keep it after a
        # kill -9 of this process, and make the next run skip the recovery of its segments.
        pool = start_pool(
            Job(
                registry.root,
                contract.label if contract else None,
                limits.max_line_bytes,
                limits.max_depth,
            ),
            workers,
            initializer=_init_worker,
        )
    try:
        # After the fork: a child must not share the sink's connection (its exit could close it).
        if delivery is not None:
            _start_sink(delivery, root, options.err)
        writer = StoreWriter(root, writer_options)
    except BaseException:
        if pool is not None:
            stop_pool(pool)
        raise
    totals = Totals()
    if delivery is not None:
        totals.sink, totals.spool = delivery.sink.label, root
        totals.sink_up = delivery.down is None
        totals.sink_errors = delivery.errors  # shared, so the metrics file sees them as they come
    previous = stop.install()
    # Past RLIMIT_FSIZE a write should fail with EFBIG (handled), not kill the process.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    from logkit.monitor import Monitor

    monitor = Monitor(
        options.metrics_file,
        options.err,
        progress=options.progress,
        total_bytes=inputs.total_size(sources),
    )
    failed: StoreError | None = None
    try:
        for source in sources:
            if stop.signum:
                break
            _ingest_source(
                source, options, writer, enveloper, totals, stop, monitor, pool, workers, delivery
            )
        writer.close()
    except StoreError as exc:
        failed = exc
        try:
            writer.close()  # seal the blocks stored whole (and checkpointed) before the failure
        except StoreError:
            writer.release()  # recovery seals them, cut back to the last checkpoint
    finally:
        if pool is not None:
            stop_pool(pool)
        for signum, handler in previous:
            signal.signal(signum, handler)
        monitor.finish(totals)

    _report(options, totals, root, stop.signum, failed)
    if failed is not None:
        return failed.exit_code
    if stop.signum:
        return 128 + stop.signum
    return 1 if options.strict and totals.dead else 0


def _ingest_source(
    source: inputs.Source,
    options: IngestOptions,
    writer: StoreWriter,
    enveloper: Enveloper,
    totals: Totals,
    stop: StopSignal,
    monitor: Any,
    pool: Any = None,
    workers: int = 1,
    delivery: Delivery | None = None,
) -> None:
    """Ingest one source; an input file by one process at a time (a second run skips it)."""
    args = (source, options, writer, enveloper, totals, stop, monitor, pool, workers, delivery)
    if source.path is None:
        _ingest_locked(*args)
        return
    held = lock_source(writer.root, source.path)
    if held is None:
        totals.busy_sources.append(source.name)
        return
    try:
        _ingest_locked(*args)
    finally:
        os.close(held)


def _ingest_locked(
    source: inputs.Source,
    options: IngestOptions,
    writer: StoreWriter,
    enveloper: Enveloper,
    totals: Totals,
    stop: StopSignal,
    monitor: Any,
    pool: Any = None,
    workers: int = 1,
    delivery: Delivery | None = None,
) -> None:
    root = writer.root
    checkpoint: Checkpoint | None = None
    start_offset, start_line = 0, 1
    if source.path is not None:
        stat = source.path.stat()
        found = None if options.from_start else load_checkpoint(root, source.path)
        if found is not None and found.complete and found.offset >= stat.st_size:
            totals.skipped_sources.append(source.name)
            return
        checkpoint = found or Checkpoint(str(source.path.resolve()), stat.st_dev, stat.st_ino)
        checkpoint.writer = writer.writer_id
        checkpoint.complete = False
        start_offset, start_line = checkpoint.offset, checkpoint.line + 1
        if writer.mode == "stream" and writer.segments:
            # Recovery would cut these back to the file's checkpoints, which do not cover
            # what came from stdin: seal it first.
            writer.sync()
            for folder in list(writer.segments):
                writer.seal(folder)
        writer.mode = "file"
        set_writer_mode(root, writer.writer_id, "file")
    else:
        writer.mode = "stream"
        set_writer_mode(root, writer.writer_id, "stream")

    def commit(offset: int, line: int, complete: bool = False) -> None:
        if checkpoint is None:
            return
        checkpoint.offset, checkpoint.line, checkpoint.complete = offset, line, complete
        checkpoint.segments = writer.lengths()
        save_checkpoint(root, source.path, checkpoint)  # type: ignore[arg-type]

    def commit_behind(offset: int, line: int) -> None:
        """Sync and commit as ``commit`` does, on the writer's fsync thread: the next blocks
        are validated meanwhile (the checkpoint is written once its lengths are durable)."""
        if checkpoint is None:
            writer.sync_behind()
            return
        checkpoint.offset, checkpoint.line, checkpoint.complete = offset, line, False
        taken = replace(checkpoint)  # this one, not what the next commit makes of it
        path = source.path

        def save(lengths: dict[str, int]) -> None:
            taken.segments = lengths
            save_checkpoint(root, path, taken)  # type: ignore[arg-type]

        writer.sync_behind(save)

    sender = _Sender(delivery, writer, options.err, totals) if delivery is not None else None
    # Unbuffered stdin, so that waiting for data (select) and reading agree.
    stream: Any = (
        inputs.open_source(source)
        if source.path is not None
        else getattr(sys.stdin.buffer, "raw", sys.stdin.buffer)
    )
    try:
        if start_offset:
            stream.seek(start_offset)
        offset, line = start_offset, start_line - 1
        blocks = inputs.read_blocks(
            stream,
            enveloper.checker.limits.max_line_bytes,
            source.name,
            start_line=start_line,
            start_offset=start_offset,
            stop=lambda: stop.signum,
        )
        try:
            # Dead letters name their file as given, or "-" for stdin (dead_letter.schema.json).
            label = source.name if source.path is not None else inputs.STDIN
            # The next block is read and validated while the previous one is on its way.
            for block, out in _processed(blocks, enveloper, label, pool, workers):
                if sender is not None:
                    try:
                        if sender.settle():
                            # The confirmed block was cut from the spool: checkpoint the shorter
                            # segment before the next block is appended where it stood. Recovery
                            # keeps a segment up to its checkpointed length, so a stale, longer
                            # length would keep (and replay) that next block, which resuming
                            # reads again: its events would be stored twice, with new ids.
                            commit(offset, line)
                    except SinkError:
                        if out is not None:  # read already (stdin cannot give it again): keep it
                            append_block(writer, out)
                            totals.add(out, spooled=True)
                            offset, line = block.end_offset, block.last_line
                        raise
                if out is None:
                    pass  # a pause in a stream: nothing read
                elif sender is None:
                    append_block(writer, out)
                    totals.add(out)
                else:
                    # Write-ahead: the block is durable in the spool (and checkpointed) before
                    # the sink sees it, and cut from the spool once the sink confirmed it. A
                    # crash in between leaves it in the spool, and replaying it is harmless
                    # (same ids), so no block is lost or stored twice, even after kill -9.
                    mark = writer.mark()
                    append_block(writer, out)
                    if sender.delivery.due():
                        writer.sync()
                        commit(block.end_offset, block.last_line)
                        sender.submit(out, mark)
                    else:
                        totals.add(out, spooled=True)
                offset, line = block.end_offset, block.last_line
                if sender is None and writer.sync_due():
                    commit_behind(offset, line)
                elif writer.maybe_sync() or writer.options.fsync == "always":
                    commit(offset, line)
                due = writer.due_for_rotation()
                if due:
                    if sender is not None:
                        sender.settle()  # its block must be cut before the segment is sealed
                    writer.sync()
                    commit(offset, line)
                    for folder in due:
                        writer.seal(folder)
                monitor.tick(totals, offset - start_offset)
                # On a signal, read_blocks stops reading; the blocks already read (in flight
                # in the workers) are still stored: a stream cannot give them again.
            if sender is not None:
                sender.settle()
            writer.sync()
            commit(offset, line, complete=not stop.signum)
        except StoreError:
            if sender is not None:
                sender.abandon()
            # The blocks before the failed one are whole in the segments (the failed one was
            # rolled back) and counted: checkpoint them, so that they may be sealed and a
            # resumed run starts after them. If that fails too, seal nothing: recovery then
            # cuts the segments back to the last checkpoint and resuming stores them again.
            try:
                writer.sync()
                commit(offset, line)
            except (StoreError, OSError):
                writer.release()
            raise
    finally:
        if sender is not None:
            sender.close()
        if source.path is not None:
            stream.close()


class _Sender:
    """At most one block on its way to the sink (in a thread, which mostly waits on the
    network) while the next one is read and validated."""

    def __init__(
        self, delivery: Delivery, writer: StoreWriter, err: IO[str], totals: Totals
    ) -> None:
        self.delivery, self.writer, self.err, self.totals = delivery, writer, err, totals
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="logkit-sink")
        self._pending: tuple[Future[Any], dict[Path, int], IngestBlock] | None = None

    def submit(self, out: IngestBlock, mark: dict[Path, int]) -> None:
        assert self._pending is None
        self._pending = (self._executor.submit(self.delivery.send, out), mark, out)

    def settle(self) -> bool:
        """Wait for the block in flight; cut it from the spool once the sink confirmed it.
        Nothing was appended since it was sent, so the cut takes exactly that block. Says
        whether it cut one."""
        if self._pending is None:
            return False
        future, mark, out = self._pending
        self._pending = None
        try:
            sent = future.result()
        except SinkError:
            self.totals.add(out, spooled=True)  # kept in the spool; the run stops
            raise
        finally:
            self.totals.sink_up = self.delivery.down is None
        if sent.notice:
            self.err.write(f"logkit: {sent.notice}\n")
            self.err.flush()
        if sent.delivered:
            self.writer.rollback(mark)
        self.totals.add(out, spooled=not sent.delivered)
        return bool(sent.delivered)

    def abandon(self) -> None:
        """The run is failing: count the block in flight as spooled (it is, durably); a
        replay sends it again harmlessly if the sink took it too."""
        if self._pending is not None:
            future, _mark, out = self._pending
            self._pending = None
            wait([future])
            self.totals.add(out, spooled=True)

    def close(self) -> None:
        self.abandon()
        self._executor.shutdown(wait=True)


def _processed(
    blocks: Iterator[inputs.Block], enveloper: Enveloper, name: str, pool: Any, workers: int
) -> Iterator[tuple[inputs.Block, IngestBlock | None]]:
    """Each block with its output, in input order; with a pool, ``2 * workers`` in flight.

    Each block is stamped here, as it is read: its events are received at that time plus one
    microsecond per line, so stamps (and ids) increase in input order across workers."""
    clock = _BlockClock()
    if pool is None:
        for block in blocks:
            yield (
                block,
                enveloper.block(
                    block.data, block.first_line, name, clock.stamp(block), block.cut_size
                )
                if block.data
                else None,
            )
        return
    pending: deque[tuple[inputs.Block, Any]] = deque()
    for block in blocks:
        task = (
            pool.apply_async(
                _work,
                ((block.data, block.first_line, name, clock.stamp(block), block.cut_size),),
            )
            if block.data
            else None
        )
        pending.append((block, task))
        while pending and (
            len(pending) > 2 * workers or pending[0][1] is None or pending[0][1].ready()
        ):
            done, result = pending.popleft()
            yield done, result.get() if result is not None else None
    while pending:
        done, result = pending.popleft()
        yield done, result.get() if result is not None else None


class _BlockClock:
    """When each block was received: now, or just after the previous block's last line."""

    def __init__(self) -> None:
        self._next_ns = 0

    def stamp(self, block: inputs.Block) -> int:
        at = max(time.time_ns(), self._next_ns)
        self._next_ns = at + 1000 * (block.last_line - block.first_line + 1)
        return at


_WORKER: Enveloper | None = None


def _init_worker(job: Any) -> None:
    global _WORKER
    # The worker ignores SIGINT and SIGTERM (start_pool): the parent decides when to stop.
    registry = Registry.load(job.registry)
    contract = registry.get(ContractRef.parse(job.contract)) if job.contract else None
    _WORKER = Enveloper(Checker(registry, contract, Limits(job.max_line_bytes, job.max_depth)))


def _work(task: tuple[bytes, int, str, int, int]) -> IngestBlock:
    assert _WORKER is not None
    data, first_line, name, received_ns, cut_size = task
    return _WORKER.block(data, first_line, name, received_ns, cut_size)


def append_block(writer: StoreWriter, out: IngestBlock) -> None:
    """Append a block's output whole, or not at all."""
    root = writer.root
    mark = writer.mark()
    try:
        for (name, version, dt), data in out.events.items():
            writer.append(
                layout.event_partition(root, name, version, dt),
                data,
                out.event_lines[(name, version, dt)],
            )
        for dt, data in out.dead.items():
            writer.append(layout.dead_letter_partition(root, dt), data, out.dead_lines[dt])
    except StoreError:
        writer.rollback(mark)
        raise


def write_outcomes(err: IO[str], totals: Totals) -> None:
    """The summary's table: one line per contract, version and outcome, with its count."""
    for (contract, version, outcome), count in sorted(totals.outcomes.items()):
        label = contract if version == "-" else f"{contract}@{version}"
        err.write(f"  {label:<24} {outcome:<28} {count:>12,}\n")


def _report(
    options: IngestOptions, totals: Totals, root: Path, signum: int, failed: StoreError | None
) -> None:
    err = options.err
    if failed is not None:
        err.write(f"logkit: error: {failed}\n")
    for name in totals.skipped_sources:
        err.write(f"{name}: already ingested (use --from-start to ingest it again)\n")
    for name in totals.busy_sources:
        err.write(f"{name}: being ingested by another logkit process; skipped\n")
    head = "interrupted: " if signum else ""
    where = f" in {totals.sink}" if totals.sink else ""
    spooled = f"{totals.spooled:,} spooled, " if totals.sink else ""
    dead_spooled = f" ({totals.spooled_dead:,} of them spooled)" if totals.spooled_dead else ""
    err.write(
        f"{head}{plural(totals.lines, 'line')} read: {totals.stored:,} stored{where}, "
        f"{spooled}{totals.dead:,} dead-lettered{dead_spooled}"
        + (f" ({plural(totals.blank, 'blank line')} skipped)" if totals.blank else "")
        + "\n"
    )
    if totals.spooled or totals.spooled_dead:
        err.write(
            f"{plural(totals.spooled + totals.spooled_dead, 'record')} spooled to {totals.spool}: "
            "`logkit replay` sends them to the sink\n"
        )
    write_outcomes(err, totals)
    if options.summary_json is not None:
        from logkit.store.writer import write_json_atomic

        write_json_atomic(
            options.summary_json,
            {
                "lines": totals.lines,
                "blank": totals.blank,
                "bytes": totals.bytes,
                "stored": totals.stored,
                "dead_lettered": totals.dead,
                "interrupted": bool(signum),
                "error": str(failed) if failed else None,
                "store": str(options.settings.store),
                "spool": str(totals.spool) if totals.spool else None,
                "sink": totals.sink,
                "spooled": totals.spooled,
                "spooled_dead_letters": totals.spooled_dead,
                "sink_errors": dict(totals.sink_errors),
                "skipped_sources": totals.skipped_sources,
                "busy_sources": totals.busy_sources,
                "outcomes": [
                    {
                        "contract": c,
                        "version": None if v == "-" else int(v),
                        "outcome": o if o in (STORED, SPOOLED) else DEAD,
                        "reason": None if o in (STORED, SPOOLED) else o.split(":", 1)[1],
                        "count": n,
                    }
                    for (c, v, o), n in sorted(totals.outcomes.items())
                ],
            },
        )
