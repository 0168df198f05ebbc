"""The worker's store writer: appends on the event loop, syncs and rotates in the background.

Each worker process owns one ``StoreWriter`` (its own writer id, lock and segments), so any
number of workers, and ``logkit ingest`` runs, write one store at once. Everything touching the
writer runs on the worker's event loop thread, one call at a time, as the writer requires.

An event is answered only after its envelope is written (``write(2)`` returned: a crash of the
worker loses nothing) and, under ``--fsync always``, after an fsync that covers it. Requests that
arrive while one fsync runs share the next one (group commit), so ``always`` costs one fsync per
burst rather than per event. Under ``batch`` a background task fsyncs at least every
``batch_seconds``; under ``never`` the kernel decides. The same task seals segments that reached
their size or age, so the warehouse globs see events within ``--segment-seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from pathlib import Path

from logkit.errors import StoreError
from logkit.ingest import IngestBlock
from logkit.service.config import ServiceConfig
from logkit.store import layout
from logkit.store.writer import StoreWriter, WriterOptions

log = logging.getLogger("logkit.serve")
TICK_SECONDS = 0.1
SINK_SEGMENT_SECONDS = 1.0


class ServiceWriter:
    def __init__(self, config: ServiceConfig, root: Path | None = None) -> None:
        """A writer of ``root`` (the store, or with ``--sink`` the sink's spool)."""
        self.policy = config.fsync
        options = WriterOptions(
            # ``always`` is group-committed here, not fsynced by the writer on every append.
            fsync="never" if config.fsync == "always" else config.fsync,
            gzip=config.gzip,
            batch_seconds=config.batch_seconds,
        )
        if config.segment_bytes:
            options.segment_bytes = config.segment_bytes
        if config.segment_seconds:
            options.segment_seconds = config.segment_seconds
        elif config.sink:
            # The deliverer sends sealed segments: seal often, so that events reach the sink
            # about a second after they were answered.
            options.segment_seconds = SINK_SEGMENT_SECONDS
        # Past RLIMIT_FSIZE a write should fail with EFBIG (answered 503), not kill the worker.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        self.writer = StoreWriter(root or Path(config.store), options)
        self._pending: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        #: Called (on the event loop) after segments were sealed: ``serve --sink`` wakes its
        #: deliverer, which sends sealed segments only.
        self.on_sealed: Callable[[], None] | None = None
        # Partition folders, made once: a Path per event costs more than the write itself.
        self._folders: dict[tuple[str, int, str] | str, Path] = {}

    @property
    def writer_id(self) -> str:
        return self.writer.writer_id

    async def write(self, out: IngestBlock) -> None:
        """Append a block's envelopes and dead letters whole, durably per the fsync policy.

        Raises StoreError (the block is rolled back) when the store cannot take it.
        """
        if not out.events and not out.dead:
            return
        self._append(out)
        if self.policy == "always":
            await self._commit()

    def _append(self, out: IngestBlock) -> None:
        """Append a block's output whole or not at all (as ``logkit ingest`` does)."""
        writer, folders = self.writer, self._folders
        mark = writer.mark()
        try:
            for key, data in out.events.items():
                folder = folders.get(key)
                if folder is None:
                    folder = folders[key] = layout.event_partition(writer.root, *key)
                writer.append(folder, data, out.event_lines[key])
            for dt, data in out.dead.items():
                folder = folders.get(dt)
                if folder is None:
                    folder = folders[dt] = layout.dead_letter_partition(writer.root, dt)
                writer.append(folder, data, out.dead_lines[dt])
        except StoreError:
            writer.rollback(mark)
            raise
        if len(folders) > 4096:  # days go by: forget old partitions now and then
            folders.clear()

    async def _commit(self) -> None:
        pending = self._pending
        if pending is None:
            loop = asyncio.get_running_loop()
            pending = self._pending = loop.create_future()
            loop.call_soon(self._flush)
        # Shielded: a client that goes away must not cancel the fsync the others wait for.
        await asyncio.shield(pending)

    def _flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending is None:
            return
        try:
            self.writer.sync()
        except StoreError as exc:
            pending.set_exception(exc)
            pending.exception()  # retrieved: the waiting requests re-raise it themselves
            return
        pending.set_result(None)

    # -- background ----------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._background())

    async def _background(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            try:
                sealed = self.tick()
            except (StoreError, OSError) as exc:
                log.error("logkit serve: %s", exc)
                continue
            if sealed and self.on_sealed is not None:
                self.on_sealed()

    def tick(self) -> bool:
        """Fsync when the batch window is over; seal segments due for rotation (True if any)."""
        self.writer.maybe_sync()
        due = self.writer.due_for_rotation()
        if due:
            self.writer.sync()
            for folder in due:
                self.writer.seal(folder)
        return bool(due)

    async def close(self) -> None:
        """Stop the background task, then sync and seal every open segment."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._flush()
        self.writer.close()
