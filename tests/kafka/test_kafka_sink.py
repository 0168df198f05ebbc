"""The Kafka sink against a real Kafka-protocol broker (Tansu): what a block becomes on the wire,
setup errors, and a broker that dies and comes back."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from kafkakit import Broker
from storekit import REGISTRY, env, logkit, make_lines, seq_of

from logkit.ingest import Enveloper, IngestBlock
from logkit.registry import Registry
from logkit.sinks import SinkError, SinkSetupError, SinkUnavailable, open_sink
from logkit.validation import Checker


def block_of(count: int, seed: int, start: int = 0) -> IngestBlock:
    lines = make_lines(count, seed, start=start, invalid_rate=0.2)
    enveloper = Enveloper(Checker(Registry.load(REGISTRY)))
    return enveloper.block(b"".join(line.data + b"\n" for line in lines), 1, "events.jsonl")


def envelope_lines(block: IngestBlock) -> list[bytes]:
    return [line for data in block.events.values() for line in bytes(data).splitlines()]


def dead_lines(block: IngestBlock) -> list[bytes]:
    return [line for data in block.dead.values() for line in bytes(data).splitlines()]


def test_a_block_becomes_one_message_per_envelope_keyed_by_id(broker: Broker) -> None:
    topic = broker.topic("sink", partitions=3, dead_letter=True)
    block = block_of(300, seed=1)
    assert block.stored > 100
    assert block.dead_lettered > 20
    with open_sink(broker.url(topic)) as sink:
        sink.check()
        sink.write(block)

    messages = broker.read(topic, block.stored)
    assert sorted(m.value() for m in messages) == sorted(envelope_lines(block))
    for message in messages:
        envelope = json.loads(message.value())
        assert message.key() == envelope["id"].encode()
        assert dict(message.headers()) == {
            "contract": envelope["contract"].encode(),
            "version": str(envelope["version"]).encode(),
        }
    # Same id, same partition: a consumer keyed on id sees one envelope's copies in order.
    assert len({m.partition() for m in messages}) == 3

    dead = broker.read(f"{topic}.dead_letter", block.dead_lettered)
    assert sorted(m.value() for m in dead) == sorted(dead_lines(block))
    for message in dead:
        letter = json.loads(message.value())
        headers = dict(message.headers())
        assert message.key() == letter["id"].encode()
        assert headers["reason"] == letter["reason"].encode()
        if letter["contract"] is not None:
            assert headers["contract"] == letter["contract"].encode()
    # Nothing of the dead letters leaked into the events topic, or the other way round.
    assert {seq_of(m.value()) for m in messages}.isdisjoint({seq_of(m.value()) for m in dead})


def test_key_option_and_a_dead_letter_topic_of_ones_own(broker: Broker) -> None:
    topic = broker.topic("keys")
    dlq = broker.topic("rejected")
    block = block_of(40, seed=2)
    with open_sink(broker.url(topic, f"key=none&dead_letter_topic={dlq}")) as sink:
        sink.check()
        sink.write(block)
    assert {m.key() for m in broker.read(topic, block.stored)} == {None}
    assert len(broker.read(dlq, block.dead_lettered)) == block.dead_lettered

    keyed = broker.topic("bycontract")
    with open_sink(broker.url(keyed, f"key=contract&dead_letter_topic={dlq}")) as sink:
        sink.write(block)
    got = broker.read(keyed, block.stored)
    assert {m.key() for m in got} == {json.loads(m.value())["contract"].encode() for m in got}


def test_unknown_topics_fail_fast_with_one_line(broker: Broker) -> None:
    topic = broker.topic("nodlq")  # its .dead_letter topic does not exist
    for url, named in (
        (broker.url("no-such-topic"), "'no-such-topic'"),
        (broker.url(topic), f"'{topic}.dead_letter'"),
    ):
        started = time.monotonic()
        with pytest.raises(SinkSetupError) as caught:
            open_sink(url).check()
        assert time.monotonic() - started < 5
        assert named in str(caught.value)
        assert "\n" not in str(caught.value)
    # The check did not create the topic as a side effect.
    with pytest.raises(SinkSetupError):
        open_sink(broker.url("no-such-topic")).check()


def test_a_wrong_address_or_option_is_a_setup_error() -> None:
    started = time.monotonic()
    with pytest.raises(SinkSetupError, match=r"no Kafka broker answers at 127\.0\.0\.1:1 "):
        open_sink("kafka://127.0.0.1:1/events").check()
    assert time.monotonic() - started < 6
    for url, match in (
        ("kafka://127.0.0.1:9092", "names no topic"),
        ("kafka://localhost/events", "HOST:PORT"),
        ("kafka://127.0.0.1:9092/events?keys=id", "did you mean 'key'"),
        ("kafka://127.0.0.1:9092/events?key=user", "unknown key=user"),
        ("kafka://127.0.0.1:9092/events?timeout=soon", "timeout=soon"),
        ("kafka://127.0.0.1:9092/bad topic", "not a Kafka topic name"),
    ):
        with pytest.raises(SinkSetupError, match=match):
            open_sink(url)


def test_a_password_never_shows_in_errors() -> None:
    with pytest.raises(SinkSetupError) as caught:
        open_sink("kafka://app:s3cret@127.0.0.1:1/events").check()
    assert "s3cret" not in str(caught.value)
    assert "app:***@" in str(caught.value)


def test_consume_setup_errors_exit_2_with_one_line(broker: Broker, tmp_path: Path) -> None:
    topic = broker.topic("cli")
    cases = [
        (["consume", "kafka://127.0.0.1:1/events", "--group", "g"], "no Kafka broker answers"),
        (["consume", broker.url("missing-in"), "--group", "g"], "no topic 'missing-in'"),
        (
            ["consume", broker.url(topic), "--group", "g", "--sink", broker.url("missing-out")],
            "no topic 'missing-out'",
        ),
        (["consume", broker.url(topic), "--group", "g", "--sink", "nosuch://x"], "unknown sink"),
        (["consume", broker.url(topic), "--group", "g", "--sink", broker.url(topic)], "input"),
    ]
    for args, message in cases:
        started = time.monotonic()
        result = logkit(*args, env=env(LOGKIT_STORE=str(tmp_path / "store")), timeout=30)
        err = result.stderr.decode()
        assert result.returncode == 2, err
        assert err.count("\n") == 1, err
        assert err.startswith("logkit: error: "), err
        assert message in err
        assert time.monotonic() - started < 8


def test_help_does_not_import_the_kafka_client() -> None:
    code = (
        "import sys\nfrom logkit.cli import main\nmain(['--help'])\nmain(['consume', '--help'])\n"
        "assert 'confluent_kafka' not in sys.modules, 'imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "--group" in result.stdout


def test_a_message_too_large_is_a_sink_error_not_a_retry(broker: Broker) -> None:
    topic = broker.topic("large", dead_letter=True)
    enveloper = Enveloper(Checker(Registry.load(REGISTRY)))
    block = enveloper.block(b"{" + b"x" * 1_040_000 + b"\n", 1, "large.jsonl")
    assert block.dead_lettered == 1
    with pytest.raises(SinkError, match="too large") as caught:
        open_sink(broker.url(topic)).write(block)
    assert not isinstance(caught.value, SinkUnavailable)


def test_broker_killed_then_restarted(own_broker: Broker) -> None:
    """A write while the broker is down fails as unavailable (so a caller retries or spools)
    and counts nothing; once a broker is back the same sink writes again. Tansu's memory
    storage loses its topics on a restart, so the topics are created again and only what was
    written after the restart is read back: this shows the sink recovers and never reports an
    unconfirmed write, not that the broker kept data across the restart."""
    topic = "durable"
    own_broker.create_topics(topic, f"{topic}.dead_letter")
    sink = open_sink(own_broker.url(topic, "timeout=3"))
    sink.check()
    first = block_of(50, seed=3)
    sink.write(first)
    assert len(own_broker.read(topic, first.stored)) == first.stored

    own_broker.kill()
    second = block_of(50, seed=4, start=1000)
    started = time.monotonic()
    with pytest.raises(SinkUnavailable, match="not confirmed") as caught:
        sink.write(second)
    assert time.monotonic() - started < 3 + 10
    assert f"of {second.stored + second.dead_lettered}" in str(caught.value)

    own_broker.start()
    own_broker.create_topics(topic, f"{topic}.dead_letter")
    deadline = time.monotonic() + 30
    while True:  # the caller's retry, with backoff
        try:
            sink.write(second)
            break
        except SinkUnavailable:
            assert time.monotonic() < deadline, "the sink never recovered"
            time.sleep(0.5)
    sink.close()
    # A retried block is resent whole, with the same envelope ids: a copy a failed attempt
    # delivered before its failure is a duplicate detectable by id, and nothing is missing.
    got = own_broker.read(topic, second.stored)
    ids = Counter(json.loads(m.value())["id"] for m in got)
    assert set(ids) == {json.loads(line)["id"] for line in envelope_lines(second)}
    assert {m.value() for m in got} == set(envelope_lines(second))


def test_ingest_into_kafka_stores_every_valid_line_once_and_dead_letters_the_rest(
    broker: Broker, tmp_path: Path
) -> None:
    """``logkit ingest --sink kafka://...`` end to end: the summary counts what the broker
    confirmed, each valid input line is one message (its sequence number found once), each
    invalid one a message of the dead-letter topic, and nothing is left in the spool."""
    topic = broker.topic("ingest", partitions=2, dead_letter=True)
    lines = make_lines(500, seed=7, invalid_rate=0.1)
    source = tmp_path / "events.jsonl"
    source.write_bytes(b"".join(line.data + b"\n" for line in lines))
    summary = tmp_path / "summary.json"
    done = logkit("ingest", source, "--sink", broker.url(topic), "--store", tmp_path / "store",
                  "--summary-json", summary)  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    valid = [line.seq for line in lines if line.valid]
    report = json.loads(summary.read_text())
    assert (report["stored"], report["dead_lettered"]) == (len(valid), len(lines) - len(valid))
    stored = broker.read(topic, len(valid))
    assert Counter(seq_of(m.value()) for m in stored) == Counter(valid)
    dead = broker.read(f"{topic}.dead_letter", len(lines) - len(valid))
    assert len(dead) == len(lines) - len(valid)
    assert not list((tmp_path / "store").glob("_spool/**/*.jsonl*"))
