"""``logkit consume`` end to end: the installed command in a consumer group on a real
Kafka-protocol broker (Tansu), into the file store or a Kafka topic, with a consumer killed and a
broker restarted. Every input event carries a sequence number, found again in the stored payload
or the dead letter's raw bytes, so a missing or doubled event shows."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
from confluent_kafka import Producer
from kafkakit import Broker
from storekit import (
    LOGKIT,
    SCHEMAS,
    Contents,
    Line,
    assert_exactly_once,
    env,
    logkit,
    make_lines,
    raw_of,
    read_store,
    reaped,
    seq_of,
    wait_for_append,
)

from logkit.commands.ingest import recover_store

FORMATS = jsonschema.Draft202012Validator.FORMAT_CHECKER
GROUP_OPTIONS = "session.timeout.ms=6000&heartbeat.interval.ms=1000"


def produce_lines(broker: Broker, topic: str, lines: list[Line], **kwargs: Any) -> list[int]:
    return broker.produce(
        topic, [line.data for line in lines], [str(line.seq).encode() for line in lines], **kwargs
    )


def start_consume(
    broker: Broker, topic: str, group: str, store: Path, *extra: str
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [LOGKIT, "consume", broker.url(topic, GROUP_OPTIONS), "--group", group, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env(LOGKIT_STORE=str(store)),
    )


def wait_for_no_lag(broker: Broker, topic: str, group: str, timeout: float = 45) -> None:
    deadline = time.monotonic() + timeout
    while (behind := broker.lag(topic, group)) > 0:
        assert time.monotonic() < deadline, f"{group} still {behind} messages behind on {topic}"
        time.sleep(0.3)


def stored_seqs(store: Path) -> Counter[int]:
    """How many times each sequence number is in the store (envelopes and dead letters)."""
    contents = read_store(store)
    seqs: Counter[int] = Counter()
    for record in contents.events:
        seqs[seq_of(record.value["payload"]["query_id"].encode())] += 1
    for record in contents.dead:
        seqs[seq_of(raw_of(record.value))] += 1
    return seqs


def stamp(ms: int) -> str:
    moment = datetime.fromtimestamp(ms // 1000, UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{ms % 1000 * 1000:06d}Z"


def ids_by_seq(contents: Contents) -> dict[int, set[str]]:
    found: dict[int, set[str]] = {}
    for record in contents.events:
        seq = seq_of(record.value["payload"]["query_id"].encode())
        found.setdefault(seq, set()).add(record.value["id"])
    for record in contents.dead:
        found.setdefault(seq_of(raw_of(record.value)), set()).add(record.value["id"])
    return found


def test_consume_stores_every_event_once_and_commits(broker: Broker, tmp_path: Path) -> None:
    topic = broker.topic("raw", partitions=3)
    lines = make_lines(600, seed=10, invalid_rate=0.15)
    # 2026-12-01T23:59:59.700Z plus one millisecond per event: the store's day changes inside.
    start_ms = 1_796_169_599_700
    produce_lines(broker, topic, lines, timestamps=[start_ms + line.seq for line in lines])
    store = tmp_path / "store"
    result = logkit(
        "consume",
        broker.url(topic, GROUP_OPTIONS),
        "--group",
        "g-once",
        "--max-messages",
        "600",
        "--batch-size",
        "100",
        "--metrics-file",
        tmp_path / "metrics.prom",
        env=env(LOGKIT_STORE=str(store)),
    )
    err = result.stderr.decode()
    assert result.returncode == 0, err
    valid = sum(line.valid for line in lines)
    assert f"600 messages read: {valid} stored, {600 - valid} dead-lettered" in err
    contents = assert_exactly_once(store, lines)
    # received_at is the message's timestamp (so the day folder too), and ids follow it.
    for record in contents.events:
        seq = seq_of(record.value["payload"]["query_id"].encode())
        assert record.value["received_at"] == stamp(start_ms + seq), record.value
    for record in contents.dead:
        assert record.value["received_at"] == stamp(start_ms + seq_of(raw_of(record.value)))
    days = {record.path.parent.name for record in contents.events}
    assert days == {"dt=2026-12-01", "dt=2026-12-02"}
    envelope_schema = json.loads((SCHEMAS / "envelope.schema.json").read_text())
    for record in contents.events:
        jsonschema.validate(record.value, envelope_schema, format_checker=FORMATS)
    # Dead letters name the partition and offset they came from, and follow their schema.
    schema = json.loads((SCHEMAS / "dead_letter.schema.json").read_text())
    for record in contents.dead:
        jsonschema.validate(record.value, schema, format_checker=FORMATS)
        source = record.value["source"]
        assert source["topic"] == topic
        assert source["partition"] in (0, 1, 2)
        assert source["offset"] >= 0
    assert (
        'logkit_events_total{contract="search",outcome="stored",version="2"}'
        in (tmp_path / "metrics.prom").read_text()
    )

    # The offsets were committed: the group has nothing left, and a new run reads nothing.
    assert broker.lag(topic, "g-once") == 0
    again = logkit(
        "consume",
        broker.url(topic, GROUP_OPTIONS),
        "--group",
        "g-once",
        "--idle-timeout",
        "4",
        env=env(LOGKIT_STORE=str(store)),
    )
    assert again.returncode == 0, again.stderr.decode()
    assert "0 messages read: 0 stored, 0 dead-lettered" in again.stderr.decode()

    # Ids are a function of the message: another group reading the topic into another store
    # stores every event under the same id (so a re-read after a crash is a duplicate by id).
    other = logkit(
        "consume",
        broker.url(topic, GROUP_OPTIONS),
        "--group",
        "g-other",
        "--max-messages",
        "600",
        "--batch-size",
        "70",
        env=env(LOGKIT_STORE=str(tmp_path / "other")),
    )
    assert other.returncode == 0, other.stderr.decode()
    assert ids_by_seq(read_store(tmp_path / "other")) == ids_by_seq(contents)


def test_consume_into_a_kafka_topic(broker: Broker, tmp_path: Path) -> None:
    topic = broker.topic("raw", partitions=2)
    out = broker.topic("valid", partitions=2, dead_letter=True)
    lines = make_lines(200, seed=11, invalid_rate=0.2)
    produce_lines(broker, topic, lines)
    result = logkit(
        "consume",
        broker.url(topic, GROUP_OPTIONS),
        "--group",
        "g-topic",
        "--sink",
        broker.url(out),
        "--max-messages",
        "200",
        env=env(LOGKIT_STORE=str(tmp_path / "unused")),
    )
    assert result.returncode == 0, result.stderr.decode()
    valid = [line for line in lines if line.valid]
    envelopes = broker.read(out, len(valid))
    assert sorted(seq_of(m.value()) for m in envelopes) == sorted(line.seq for line in valid)
    dead = broker.read(f"{out}.dead_letter", len(lines) - len(valid))
    assert sorted(seq_of(m.value()) for m in dead) == sorted(
        line.seq for line in lines if not line.valid
    )
    assert not (tmp_path / "unused").exists()


def test_two_consumers_one_killed_the_survivor_takes_over(broker: Broker, tmp_path: Path) -> None:
    topic = broker.topic("raw", partitions=4)
    group = "g-pair"
    store = tmp_path / "store"
    lines = make_lines(2400, seed=12, invalid_rate=0.1)
    first, rest = lines[:400], lines[400:]
    partition_of: dict[int, int] = {}
    killed = threading.Event()
    sent_before_kill: list[int] = []

    def delivered(error: object, message: Any) -> None:
        assert error is None, error
        broker.track(message)
        partition_of[seq_of(message.value())] = message.partition()

    def producer() -> None:
        # One at a time, so that the events sent after the kill are known exactly.
        sender = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
        for index, line in enumerate(rest):
            if killed.is_set() and not sent_before_kill:
                sent_before_kill.append(index)
            sender.produce(topic, line.data, str(line.seq).encode(), on_delivery=delivered)
            sender.poll(0)
            time.sleep(0.002)
        assert sender.flush(30) == 0

    for line, partition in zip(first, produce_lines(broker, topic, first), strict=True):
        partition_of[line.seq] = partition
    victim = start_consume(broker, topic, group, store, "--batch-size", "20")
    survivor = start_consume(broker, topic, group, store, "--batch-size", "20")
    with reaped(victim), reaped(survivor):
        assert wait_for_append(store, victim, timeout=30), "the victim stored nothing"
        assert wait_for_append(store, survivor, timeout=30), "the survivor stored nothing"
        thread = threading.Thread(target=producer)
        thread.start()
        time.sleep(0.5)
        victim.send_signal(signal.SIGKILL)  # mid-stream: maybe between a write and its commit
        victim.wait()
        killed.set()
        thread.join(60)
        wait_for_no_lag(broker, topic, group)
        survivor.send_signal(signal.SIGTERM)
        _, err = survivor.communicate(timeout=30)
    assert survivor.returncode == 143, err.decode()
    assert b"interrupted: " in err
    assert sent_before_kill, "the producer ended before the kill"

    recover_store(store)  # what the next writer does: seal the killed process's segments
    seqs = stored_seqs(store)
    missing = sorted({line.seq for line in lines} - set(seqs))
    assert not missing, f"{len(missing)} events lost, e.g. {missing[:10]}"
    assert set(seqs) <= {line.seq for line in lines}
    # Both stored events; what was sent on the victim's partitions after it died, the survivor
    # stored: it took the partitions over.
    by_writer: dict[str, set[int]] = {}
    for record in read_store(store).events:
        writer = record.path.name.split("-")[2]  # part-<stamp>-<pid>-<random>-<seq>.jsonl
        seq = seq_of(record.value["payload"]["query_id"].encode())
        by_writer.setdefault(writer, set()).add(seq)
    assert set(by_writer) == {str(victim.pid), str(survivor.pid)}
    victim_partitions = {partition_of[seq] for seq in by_writer[str(victim.pid)]}
    late = {
        line.seq
        for line in rest[sent_before_kill[0] :]
        if line.valid and partition_of[line.seq] in victim_partitions
    }
    assert late, "no event was sent on the victim's partitions after it died"
    assert late <= by_writer[str(survivor.pid)]
    # At least once: a batch the victim stored but had not committed is read again (ids
    # differ; the raw event, here its sequence number, shows the copy).
    # Copies carry the id of their message: duplicates by id, as an idempotent sink sees them.
    assert all(len(ids) == 1 for ids in ids_by_seq(read_store(store)).values())
    duplicates = sum(n - 1 for n in seqs.values())
    assert duplicates <= 2 * 20 * 2, duplicates  # the batches in flight of the victim


def test_consume_rides_out_a_broker_restart(own_broker: Broker, tmp_path: Path) -> None:
    """The broker is killed under a running ``consume`` and started again. Tansu's memory
    storage comes back empty (topics, messages, offsets): what the first broker held had been
    stored and committed before the kill, and what the new broker gets after the restart is
    stored too, by the same process, which never gave up. A Kafka broker keeps its log across a
    restart; this test cannot show that part, only that consume survives the outage."""
    topic = "raw"
    group = "g-restart"
    store = tmp_path / "store"
    own_broker.create_topics(topic, partitions=2)
    before = make_lines(300, seed=13, invalid_rate=0.1)
    after = make_lines(300, seed=14, start=10_000, invalid_rate=0.1)
    proc = start_consume(own_broker, topic, group, store, "--batch-size", "50")
    with reaped(proc):
        produce_lines(own_broker, topic, before)
        wait_for_no_lag(own_broker, topic, group)
        own_broker.kill()
        time.sleep(2)
        assert proc.poll() is None, proc.stderr.read().decode()  # type: ignore[union-attr]
        own_broker.start()
        own_broker.create_topics(topic, partitions=2)
        produce_lines(own_broker, topic, after)
        wait_for_no_lag(own_broker, topic, group, timeout=60)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err.decode()
    assert "Traceback" not in err.decode()
    seqs = stored_seqs(store)
    expected = {line.seq for line in before + after}
    missing = sorted(expected - set(seqs))
    assert not missing, f"{len(missing)} events lost, e.g. {missing[:10]}"
    assert set(seqs) == expected


def test_bare_events_with_contract_and_strict(broker: Broker, tmp_path: Path) -> None:
    topic = broker.topic("bare")
    valid = [
        json.dumps(
            {
                "user_id": f"u_{i}",
                "query_id": f"00000000-0000-4000-8000-{i:012d}",
                "raw_query": "boots",
                "results": [],
            }
        ).encode()
        for i in range(30)
    ]
    invalid = [b'{"user_id": "u_x", "query_id": "00000000-0000-4000-8000-000000000999"}', b"{"]
    # A message is one event even when it spans lines (pretty-printed JSON).
    pretty = json.dumps(json.loads(valid[0]), indent=2).encode()
    broker.produce(topic, [*valid, *invalid, pretty, None])
    result = logkit(
        "consume",
        broker.url(topic, GROUP_OPTIONS),
        "--group",
        "g-bare",
        "--contract",
        "search@1",
        "--strict",
        "--max-messages",
        "34",
        env=env(LOGKIT_STORE=str(tmp_path / "store")),
    )
    err = result.stderr.decode()
    assert result.returncode == 1, err
    assert "34 messages read: 31 stored, 2 dead-lettered (1 empty message skipped)" in err
    contents = read_store(tmp_path / "store")
    assert {r.value["contract"] for r in contents.events} == {"search"}
    assert {r.value["version"] for r in contents.events} == {1}
    assert sorted(r.value["reason"] for r in contents.dead) == ["invalid", "malformed_json"]
    assert {r.value["contract"] for r in contents.dead} == {"search"}


def test_a_sink_that_stays_down_is_never_committed(
    broker: Broker, own_broker: Broker, tmp_path: Path
) -> None:
    """Input on one broker, output on another that dies: consume retries, then exits 3 without
    committing, so the next run (output broker back, empty: Tansu's memory storage) delivers
    every event the failed run could not."""
    topic = broker.topic("in")
    group = "g-down"
    own_broker.create_topics("out", "out.dead_letter")
    first = make_lines(100, seed=15, invalid_rate=0.1)
    second = make_lines(100, seed=16, start=5000, invalid_rate=0.1)
    args = ["--sink", own_broker.url("out", "timeout=2"), "--batch-size", "50"]
    proc = start_consume(broker, topic, group, tmp_path / "unused", *args, "--retry-seconds", "3")
    with reaped(proc):
        produce_lines(broker, topic, first)
        wait_for_no_lag(broker, topic, group)
        own_broker.kill()
        produce_lines(broker, topic, second)
        _, err = proc.communicate(timeout=60)
    text = err.decode()
    assert proc.returncode == 3, text
    assert "retrying in 0.5 s" in text
    assert "logkit: error: kafka://" in text
    assert "not confirmed" in text
    assert "Traceback" not in text
    assert broker.lag(topic, group) == 100  # the failed batches were not committed

    own_broker.start()
    own_broker.create_topics("out", "out.dead_letter")
    again = logkit(
        "consume",
        broker.url(topic, GROUP_OPTIONS),
        "--group",
        group,
        *args,
        "--max-messages",
        "100",
        env=env(LOGKIT_STORE=str(tmp_path / "unused")),
    )
    assert again.returncode == 0, again.stderr.decode()
    valid = sum(line.valid for line in second)
    out = own_broker.read("out", valid)
    dead = own_broker.read("out.dead_letter", 100 - valid)
    assert {seq_of(m.value()) for m in out + dead} == {line.seq for line in second}
    assert broker.lag(topic, group) == 0
