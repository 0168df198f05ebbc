"""Throughput of the Kafka sink beside the file store, and of ``logkit consume`` with 1 and 2
processes, against a Tansu broker (the tests' Kafka-protocol broker) on 127.0.0.1.

Generates N routed events (search@1, search@2, click@1; a seeded 10% invalid in several ways),
enveloped in blocks of ``--block`` lines by logkit's own ``Enveloper``, then, in one run:

* envelope only: the blocks built from the lines (validation and envelopes, no output): the
  baseline both outputs start from;
* the Kafka sink: every block written through ``KafkaSink.write`` (acks=all, idempotent, each
  block confirmed before the next), then read back whole from the topics to check the counts;
* the file store: the same blocks through the store target that ``consume`` uses (one append and
  one fsync per block), interleaved with the sink over ``--rounds`` rounds;
* ``logkit ingest FILE --sink kafka://...`` beside ``logkit ingest FILE`` into the file store,
  end to end through the CLI (start-up, reading, validation, spool and delivery included), on
  the same file, interleaved over the rounds; the summaries must count every line;
* ``logkit consume`` with 1 and then 2 processes in one group on a topic of 4 partitions holding
  the N raw events: wall time from the start of the processes until the group has committed
  every message (start-up and the group join included), and the rate after the first commit.
  The store must then hold every event.

Run from the repository root::

    python bench/kafka_bench.py                   # 100,000 events
    python bench/kafka_bench.py --events 20000 --rounds 1

Exit status 1 if a count is wrong, not if a figure is low. Tansu keeps everything in memory;
the figures say what logkit and librdkafka cost on this machine, not what a Kafka cluster does.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "tests" / "kafka"), str(REPO / "tests" / "store")]

from kafkakit import Broker  # noqa: E402
from storekit import LOGKIT, REGISTRY, env, make_lines, raw_of, read_store, seq_of  # noqa: E402

from logkit.commands.consume import StoreTarget  # noqa: E402
from logkit.ingest import Enveloper, IngestBlock  # noqa: E402
from logkit.registry import Registry  # noqa: E402
from logkit.sinks import open_sink  # noqa: E402
from logkit.validation import Checker  # noqa: E402


def build_blocks(data: list[bytes], block: int) -> tuple[list[IngestBlock], float]:
    enveloper = Enveloper(Checker(Registry.load(REGISTRY)))
    started = time.perf_counter()
    blocks = [
        enveloper.block(b"".join(line + b"\n" for line in data[i : i + block]), i + 1, "bench")
        for i in range(0, len(data), block)
    ]
    return blocks, time.perf_counter() - started


def to_kafka(broker: Broker, blocks: list[IngestBlock], round_: int) -> float:
    topic = f"bench-out-{round_}"
    broker.create_topics(topic, partitions=4)
    broker.create_topics(f"{topic}.dead_letter")
    sink = open_sink(broker.url(topic))
    sink.check()
    started = time.perf_counter()
    for block in blocks:
        sink.write(block)
    sink.close()
    elapsed = time.perf_counter() - started
    stored = sum(b.stored for b in blocks)
    dead = sum(b.dead_lettered for b in blocks)
    got = len(broker.read(topic, stored, timeout=120))
    got_dead = len(broker.read(f"{topic}.dead_letter", dead, timeout=120))
    if (got, got_dead) != (stored, dead):
        sys.exit(f"kafka sink: read back {got} + {got_dead}, wrote {stored} + {dead}")
    return elapsed


def to_store(blocks: list[IngestBlock], folder: Path) -> float:
    target = StoreTarget(folder)
    target.check()
    started = time.perf_counter()
    for block in blocks:
        target.write(block)
    target.close()
    return time.perf_counter() - started


def ingest_cli(source: Path, expected: tuple[int, int], args: list[str], work: Path) -> float:
    """Wall seconds of one ``logkit ingest`` of ``source`` with ``args``; its summary must say
    ``expected`` (stored, dead-lettered)."""
    summary = work / "summary.json"
    command = [LOGKIT, "ingest", str(source), "--summary-json", str(summary), *args]
    started = time.perf_counter()
    done = subprocess.run(command, env=env(), capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)}: exit {done.returncode}: {done.stderr.decode()[-500:]}")
    report = json.loads(summary.read_text())
    if (report["stored"], report["dead_lettered"]) != expected:
        sys.exit(f"ingest {args}: summary {report['stored']} + {report['dead_lettered']}")
    return elapsed


def consume(broker: Broker, data: list[bytes], processes: int, work: Path) -> tuple[float, float]:
    topic = f"bench-raw-{processes}"
    group = f"bench-{processes}"
    store = work / f"consume-{processes}"
    broker.create_topics(topic, partitions=4)
    broker.produce(topic, list(data), [str(i).encode() for i in range(len(data))])
    url = broker.url(topic, "session.timeout.ms=6000&heartbeat.interval.ms=1000")
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            [LOGKIT, "consume", url, "--group", group, "--batch-size", "1000"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env(LOGKIT_STORE=str(store)),
        )
        for _ in range(processes)
    ]
    first: float | None = None
    at_first = 0
    while True:
        behind = broker.lag(topic, group)
        now = time.perf_counter()
        if first is None and behind < len(data):
            first, at_first = now, len(data) - behind
        if behind == 0:
            break
        if now - started > 600 or any(p.poll() is not None for p in procs):
            sys.exit(f"consume x{processes}: still {behind} behind, or a process ended")
        time.sleep(0.05)
    done = time.perf_counter()
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        if proc.returncode != 143:
            sys.exit(f"consume exited {proc.returncode}: {err.decode()[-500:]}")
    contents = read_store(store)
    seqs = {seq_of(r.value["payload"]["query_id"].encode()) for r in contents.events}
    seqs |= {seq_of(raw_of(r.value)) for r in contents.dead}
    if len(seqs) != len(data):
        sys.exit(f"consume x{processes}: {len(seqs)} distinct events stored of {len(data)}")
    steady = (len(data) - at_first) / (done - first) if first is not None and done > first else 0.0
    return done - started, steady


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--block", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    data = [line.data for line in make_lines(args.events, seed=20261204, invalid_rate=0.1)]
    print(f"{args.events:,} events, blocks of {args.block:,}; {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="logkit-kafka-bench-") as tmp:
        work = Path(tmp)
        broker = Broker(work / "broker.log")
        broker.start()
        try:
            envelope, kafka, store, cli_kafka, cli_store = [], [], [], [], []
            source = work / "events.jsonl"
            source.write_bytes(b"".join(line + b"\n" for line in data))
            for round_ in range(args.rounds):
                blocks, seconds = build_blocks(data, args.block)
                envelope.append(seconds)
                kafka.append(to_kafka(broker, blocks, round_))
                store.append(to_store(blocks, work / f"store-{round_}"))
                expected = (sum(b.stored for b in blocks), sum(b.dead_lettered for b in blocks))
                topic = f"bench-ingest-{round_}"
                broker.create_topics(topic, partitions=4)
                broker.create_topics(f"{topic}.dead_letter")
                sink_args = ["--sink", broker.url(topic), "--store", str(work / f"spool-{round_}")]
                cli_kafka.append(ingest_cli(source, expected, sink_args, work))
                store_args = ["--store", str(work / f"ingested-{round_}")]
                cli_store.append(ingest_cli(source, expected, store_args, work))
            rows = [
                ("envelope only (no output)", envelope),
                ("Kafka sink (acks=all, confirmed per block)", kafka),
                ("file store (fsync per block)", store),
                ("logkit ingest --sink kafka:// (CLI)", cli_kafka),
                ("logkit ingest into the file store (CLI)", cli_store),
            ]
            print(f"\n| {'output':<44} | median s | events/s |")
            print(f"|{'-' * 46}|---------:|---------:|")
            for name, times in rows:
                median = statistics.median(times)
                print(f"| {name:<44} | {median:8.2f} | {args.events / median:8,.0f} |")
            print(
                "\n| consume into the store | wall s (start to all committed) | events/s | "
                "events/s after the first commit |"
            )
            print("|---|---:|---:|---:|")
            for processes in (1, 2):
                wall, steady = consume(broker, data, processes, work)
                print(
                    f"| {processes} process{'es' if processes > 1 else ''} | {wall:.1f} | "
                    f"{args.events / wall:,.0f} | {steady:,.0f} |"
                )
        finally:
            broker.kill()


if __name__ == "__main__":
    main()
