"""The Kafka sink: each envelope one message, confirmed by the brokers before ``write`` returns.

``kafka://HOST:PORT[,HOST:PORT...]/TOPIC`` with these options (query parameters):

- ``dead_letter_topic=NAME``: where dead letters go (default ``<TOPIC>.dead_letter``);
- ``key=id|contract|none``: the message key: the envelope id (default), the contract name (one
  partition per contract, in order), or none (the producer spreads messages);
- ``timeout=SECONDS``: how long a block may take to be confirmed (default 30) before the write
  fails as unavailable (``message.timeout.ms``);
- any librdkafka option, by its name (``compression.type=zstd``, ``security.protocol=SASL_SSL``).

The value of a message is the envelope (or dead letter) JSON, one line without its newline;
headers ``contract`` and ``version`` (and ``reason`` for a dead letter) let consumers route
without parsing. The producer is idempotent with ``acks=all``: a message is counted as stored
only once every in-sync replica has it. Topics must exist: the sink never creates one.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import msgspec

from logkit.kafkaconf import ClientErrors, check_topic, client_config, describe, parse_kafka_url
from logkit.sinks import Sink, SinkError, SinkSetupError, SinkUnavailable

if TYPE_CHECKING:
    from logkit.ingest import IngestBlock

OPTIONS = ("dead_letter_topic", "key", "timeout")
KEYS = ("id", "contract", "none")
DEFAULT_TIMEOUT = 30.0

_ID_PREFIX = b'{"id":"'


class _Head(msgspec.Struct):
    id: str
    contract: str | None = None
    version: int | None = None
    reason: str | None = None


_head = msgspec.json.Decoder(_Head).decode

# Delivery failures that retrying the same messages will not cure.
_PERMANENT = frozenset(
    {
        "MSG_SIZE_TOO_LARGE",
        "_MSG_SIZE_TOO_LARGE",
        "TOPIC_AUTHORIZATION_FAILED",
        "CLUSTER_AUTHORIZATION_FAILED",
        "INVALID_RECORD",
        "RECORD_LIST_TOO_LARGE",
    }
)


class KafkaSink(Sink):
    schemes = ("kafka",)

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.address = parse_kafka_url(url, OPTIONS)
        options = self.address.options
        self.topic = self.address.topic
        self.dead_letter_topic = options.get("dead_letter_topic") or f"{self.topic}.dead_letter"
        self.key = options.get("key", "id")
        if self.key not in KEYS:
            raise SinkSetupError(
                f"--sink {self.label}: unknown key={self.key}; choose one of {', '.join(KEYS)}"
            )
        try:
            self.timeout = float(options.get("timeout", DEFAULT_TIMEOUT))
        except ValueError:
            self.timeout = -1.0
        if not 0 < self.timeout <= 3600:
            raise SinkSetupError(
                f"--sink {self.label}: timeout={options['timeout']} is not a number of seconds "
                "between 0 and 3600"
            )
        self._errors = ClientErrors()
        self._producer: Any = None

    @property
    def producer(self) -> Any:
        if self._producer is None:
            from confluent_kafka import KafkaException, Producer

            self._errors = ClientErrors()
            config = client_config(
                self.address,
                self._errors,
                **{
                    "acks": "all",
                    "enable.idempotence": True,
                    "allow.auto.create.topics": False,
                    "message.timeout.ms": int(self.timeout * 1000),
                    "linger.ms": 5,
                },
            )
            try:
                self._producer = Producer(config)
            except KafkaException as exc:
                raise SinkSetupError(f"--sink {self.label}: {describe(exc)}") from None
        return self._producer

    def check(self) -> None:
        """The brokers answer and both topics exist (a few seconds at most)."""
        for topic in (self.topic, self.dead_letter_topic):
            check_topic(self.producer, self.address, self._errors, "--sink", topic)

    def write(self, block: IngestBlock) -> None:
        """Produce every envelope and dead letter of ``block``; return once all are confirmed."""
        producer = self.producer
        self._errors.last = None  # a failure names what went wrong during this write only
        deliveries = _Deliveries()
        key_mode = self.key
        for (name, version, _dt), data in block.events.items():
            headers = [("contract", name.encode()), ("version", str(version).encode())]
            contract_key = name.encode()
            for line in _lines(data):
                if key_mode == "id":
                    key: bytes | None = _envelope_id(line)
                else:
                    key = contract_key if key_mode == "contract" else None
                self._produce(producer, self.topic, line, key, headers, deliveries)
        for data in block.dead.values():
            for line in _lines(data):
                head = _head(line)
                headers = [("reason", (head.reason or "").encode())]
                if head.contract is not None:
                    headers.append(("contract", head.contract.encode()))
                if head.version is not None:
                    headers.append(("version", str(head.version).encode()))
                if key_mode == "id":
                    key = head.id.encode()
                else:
                    key = (
                        head.contract.encode() if key_mode == "contract" and head.contract else None
                    )
                self._produce(producer, self.dead_letter_topic, line, key, headers, deliveries)
        # Every message gets a report within message.timeout.ms; the margin covers the last.
        try:
            left = producer.flush(self.timeout + 5)
        except Exception as exc:
            # A fatal error is raised from flush (and confluent-kafka may then report the
            # pending callback as a SystemError): replace the producer, let the caller retry.
            self._drop()
            cause = exc.__cause__ if isinstance(exc, SystemError) and exc.__cause__ else exc
            reason = describe(self._errors.fatal or cause)
            raise SinkUnavailable(
                f"{self.label}: the producer failed ({reason}); the block was not confirmed"
            ) from None
        if left or deliveries.failed:
            self._failed(deliveries, left)

    def _produce(
        self,
        producer: Any,
        topic: str,
        value: bytes,
        key: bytes | None,
        headers: list[tuple[str, bytes]],
        deliveries: _Deliveries,
    ) -> None:
        deliveries.sent += 1
        while True:
            try:
                producer.produce(topic, value, key, headers=headers, on_delivery=deliveries)
                return
            except BufferError:
                # The local queue is full: serve delivery reports until there is room.
                producer.poll(0.1)
            except Exception as exc:
                deliveries.sent -= 1
                error = exc.args[0] if exc.args and hasattr(exc.args[0], "fatal") else None
                message = f"{self.label}: cannot produce to {topic}: {describe(exc)}"
                if error is not None and error.fatal():
                    # librdkafka: a producer in a fatal state must be replaced (e.g. a broker
                    # that lost the idempotent producer's state answers UNKNOWN_PRODUCER_ID).
                    self._drop()
                    raise SinkUnavailable(message) from None
                if error is not None and error.retriable():
                    raise SinkUnavailable(message) from None
                raise SinkError(message) from None

    def _failed(self, deliveries: _Deliveries, left: int) -> None:
        not_confirmed = deliveries.sent - deliveries.confirmed
        first = deliveries.first
        reason = describe(first) if first is not None else "no delivery report in time"
        if self._errors.last is not None and (first is None or first.name().startswith("_")):
            reason += f"; {self._errors.reason()}"
        message = (
            f"{self.label}: {not_confirmed:,} of {deliveries.sent:,} messages not confirmed "
            f"by the brokers ({reason})"
        )
        if self._errors.fatal is not None or left:
            # A fatal producer (or one still holding messages) is not reused: the next write
            # starts a new one, so that a retry resends the block from a clean state.
            self._drop()
        if first is not None and first.name() in _PERMANENT:
            raise SinkError(message)
        raise SinkUnavailable(message)

    def _drop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.purge()
                producer.flush(0)
            except Exception:  # a broken producer is discarded anyway
                pass

    def close(self) -> None:
        """Wait for anything still in flight (``write`` leaves nothing unconfirmed)."""
        producer, self._producer = self._producer, None
        if producer is None:
            return
        deadline = time.monotonic() + self.timeout + 5
        left = producer.flush(max(0.0, deadline - time.monotonic()))
        if left:
            raise SinkUnavailable(f"{self.label}: {left:,} messages not confirmed at close")


class _Deliveries:
    """The delivery callback of one block: counts confirmations, keeps the first failure."""

    __slots__ = ("confirmed", "failed", "first", "sent")

    def __init__(self) -> None:
        self.sent = 0
        self.confirmed = 0
        self.failed = 0
        self.first: Any = None

    def __call__(self, error: Any, _message: Any) -> None:
        if error is None:
            self.confirmed += 1
            return
        self.failed += 1
        if self.first is None:
            self.first = error


def _lines(data: bytes | bytearray) -> list[bytes]:
    lines = bytes(data).split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    return lines


def _envelope_id(line: bytes) -> bytes:
    """The id of an envelope line: it comes first, so no JSON parsing is needed."""
    if line.startswith(_ID_PREFIX):
        end = line.find(b'"', 7)
        if end > 7:
            return line[7:end]
    return _head(line).id.encode()


SINK = KafkaSink
