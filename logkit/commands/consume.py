"""``logkit consume``: raw events from a Kafka topic, in a consumer group, validated and stored.

Each batch of messages is enveloped like a block of ``ingest`` input, written to the target (the
file store, fsynced; or a sink, confirmed), and only then are its offsets committed: at least
once. A process that dies between the write and the commit leaves a batch that the group reads
again: the copies have the same envelope ids (``logkit.kafkabatch``), so they are duplicates by
id. Kafka shares the partitions among the processes of a group; nothing in logkit coordinates
them.
"""

from __future__ import annotations

import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from logkit.commands.ingest import (
    StopSignal,
    Totals,
    append_block,
    recover_store,
    write_outcomes,
)
from logkit.errors import StoreError, UsageError
from logkit.ingest import Enveloper, IngestBlock
from logkit.kafkabatch import envelope_batch
from logkit.kafkaconf import ClientErrors, check_topic, client_config, describe, parse_kafka_url
from logkit.parse import Limits
from logkit.registry import ContractRef, Registry
from logkit.results import plural
from logkit.settings import Settings
from logkit.sinks import Sink, SinkUnavailable, open_sink, redact
from logkit.store.writer import StoreWriter, WriterOptions
from logkit.validation import Checker

OFFSET_RESETS = ("earliest", "latest")
POLL_SECONDS = 0.5


@dataclass
class ConsumeOptions:
    url: str
    group: str
    settings: Settings
    contract: str | None = None
    sink: str | None = None
    batch_size: int = 1000
    max_messages: int | None = None
    idle_timeout: float | None = None
    offset_reset: str = "earliest"
    retry_seconds: float = 60.0
    strict: bool = False
    metrics_file: Path | None = None
    err: IO[str] = field(default_factory=lambda: sys.stderr)


class StoreTarget(Sink):
    """The file store as a target: a block is confirmed once its segments are fsynced."""

    def __init__(self, root: Path) -> None:
        super().__init__(str(root))
        self.root = root

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{self.root}: cannot create the store: {exc.strerror}") from exc
        recover_store(self.root)
        self.writer = StoreWriter(self.root, WriterOptions(fsync="always"))
        self.writer.mode = "stream"

    def write(self, block: IngestBlock) -> None:
        append_block(self.writer, block)
        self.writer.sync()
        for folder in self.writer.due_for_rotation():
            self.writer.seal(folder)

    def close(self) -> None:
        if hasattr(self, "writer"):
            self.writer.close()


def consume(options: ConsumeOptions) -> int:
    """Consume until --max-messages, --idle-timeout or a signal; the exit code."""
    address = parse_kafka_url(options.url, (), what="consume")
    if options.offset_reset not in OFFSET_RESETS:
        raise UsageError(f"unknown --offset-reset {options.offset_reset!r}; earliest or latest")
    if options.batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    registry = Registry.load(options.settings.registry)
    contract = registry.get(ContractRef.parse(options.contract)) if options.contract else None
    if contract is not None:
        registry.validator(contract)
    limits = Limits(options.settings.max_line_bytes, options.settings.max_depth)
    enveloper = Enveloper(Checker(registry, contract, limits))

    target = _target(options, address.bootstrap, address.topic)
    errors = ClientErrors()
    consumer = _consumer(address, options, errors)
    try:
        check_topic(consumer, address, errors, "consume", address.topic)
        target.check()
    except BaseException:
        consumer.close()
        target.close()
        raise
    return _run(options, address, consumer, target, enveloper)


def _target(options: ConsumeOptions, bootstrap: str, topic: str) -> Sink:
    if options.sink is None:
        return StoreTarget(options.settings.store)
    sink = open_sink(options.sink)
    address = getattr(sink, "address", None)
    if address is not None and address.bootstrap == bootstrap and address.topic == topic:
        raise UsageError(f"--sink {sink.label}: the output topic is the input topic")
    return sink


def _consumer(address: Any, options: ConsumeOptions, errors: ClientErrors) -> Any:
    from confluent_kafka import Consumer, KafkaException

    config = client_config(
        address,
        errors,
        **{
            "group.id": options.group,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": options.offset_reset,
            "allow.auto.create.topics": False,
        },
    )
    try:
        return Consumer(config)
    except KafkaException as exc:
        raise UsageError(f"consume {address.label}: {describe(exc)}") from None


def _run(
    options: ConsumeOptions,
    address: Any,
    consumer: Any,
    target: Sink,
    enveloper: Enveloper,
) -> int:
    from logkit.monitor import Monitor

    totals = Totals()
    stats = _Stats()
    monitor = Monitor(options.metrics_file, options.err, progress=False, total_bytes=None)
    stop = StopSignal()
    previous = stop.install()
    failed: StoreError | None = None
    source = redact(options.url).split("?", 1)[0]
    try:
        consumer.subscribe([address.topic])
        last_message = time.monotonic()
        while not stop.signum:
            want = options.batch_size
            if options.max_messages is not None:
                want = min(want, options.max_messages - stats.messages)
                if want <= 0:
                    break
            messages = [m for m in consumer.consume(want, POLL_SECONDS) if _usable(m, address)]
            if not messages:
                idle = time.monotonic() - last_message
                if options.idle_timeout is not None and idle >= options.idle_timeout:
                    break
                monitor.tick(totals, 0)
                continue
            last_message = time.monotonic()
            stats.messages += len(messages)
            block = envelope_batch(enveloper, messages, source)
            if not _write(target, block, options, stop, stats):
                break  # interrupted while the target was down: nothing of this batch counted
            totals.add(block)
            _commit(consumer, messages, options, stats)
            monitor.tick(totals, 0)
    except StoreError as exc:
        failed = exc
    finally:
        for signum, handler in previous:
            signal.signal(signum, handler)
        consumer.close()  # leaves the group at once: the others take the partitions over
        try:
            target.close()
        except StoreError as exc:
            failed = failed or exc
        monitor.finish(totals)
    _report(options, totals, stats, stop.signum, failed)
    if failed is not None:
        return failed.exit_code
    if stop.signum:
        return 128 + stop.signum
    return 1 if options.strict and totals.dead else 0


@dataclass
class _Stats:
    messages: int = 0
    retries: int = 0
    commit_failures: int = 0


def _usable(message: Any, address: Any) -> bool:
    """A message with data; client events (a broker down, a partition's end) are skipped:
    librdkafka reconnects by itself. A fatal error ends the run."""
    error = message.error()
    if error is None:
        return True
    if error.fatal():
        raise StoreError(f"consume {address.label}: {describe(error)}")
    return False


def _write(
    target: Sink, block: IngestBlock, options: ConsumeOptions, stop: StopSignal, stats: _Stats
) -> bool:
    """Write with backoff while the target is unavailable; False if a signal came first.
    Past ``retry_seconds`` the failure ends the run: the batch stays uncommitted in Kafka."""
    started = time.monotonic()
    delay = 0.5
    while True:
        try:
            target.write(block)
            return True
        except SinkUnavailable as exc:
            waited = time.monotonic() - started
            if waited >= options.retry_seconds:
                raise
            stats.retries += 1
            options.err.write(
                f"logkit: warning: {exc}; retrying in {delay:g} s "
                f"(giving up after {options.retry_seconds:g} s)\n"
            )
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline:
            if stop.signum:
                return False
            time.sleep(0.1)
        delay = min(delay * 2, 8.0)


def _commit(consumer: Any, messages: list[Any], options: ConsumeOptions, stats: _Stats) -> None:
    """Commit the next offset of every partition in the batch. A failed commit loses nothing:
    the group reads those messages again (duplicates), or a later commit covers them."""
    from confluent_kafka import KafkaException, TopicPartition

    ends: dict[tuple[str, int], int] = {}
    for message in messages:
        key = (message.topic(), message.partition())
        ends[key] = max(ends.get(key, -1), message.offset() + 1)
    offsets = [TopicPartition(t, p, o) for (t, p), o in sorted(ends.items())]
    try:
        consumer.commit(offsets=offsets, asynchronous=False)
    except KafkaException as exc:
        stats.commit_failures += 1
        options.err.write(
            f"logkit: warning: offsets not committed ({describe(exc)}); "
            f"{plural(len(messages), 'message')} may be read again\n"
        )


def _report(
    options: ConsumeOptions, totals: Totals, stats: _Stats, signum: int, failed: StoreError | None
) -> None:
    err = options.err
    if failed is not None:
        err.write(f"logkit: error: {failed}\n")
    head = "interrupted: " if signum else ""
    err.write(
        f"{head}{plural(stats.messages, 'message')} read: {totals.stored:,} stored, "
        f"{totals.dead:,} dead-lettered"
        + (f" ({plural(totals.blank, 'empty message')} skipped)" if totals.blank else "")
        + "\n"
    )
    if stats.retries or stats.commit_failures:
        err.write(
            f"  {plural(stats.retries, 'write')} retried, "
            f"{plural(stats.commit_failures, 'commit')} failed\n"
        )
    write_outcomes(err, totals)
