"""``kafka://HOST:PORT[,HOST:PORT...]/TOPIC?options`` -> client settings, shared by the Kafka sink
and ``logkit consume``; and the one-line reasons a Kafka client gives for failing.

Query parameters with a dot in their name (``security.protocol``, ``session.timeout.ms``, ...) are
librdkafka options, passed to the client as they are; the others are logkit's own, named by the
caller. A user name and password in the URL become ``sasl.username`` and ``sasl.password``.
confluent-kafka itself is imported only by the functions that make a client.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from logkit.sinks import SinkSetupError, redact

_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
CHECK_SECONDS = 5.0

# librdkafka logs to stderr unless given a logger; its errors reach us through error_cb and the
# failures we report, so its log lines are dropped rather than mixed into logkit's stderr.
_SILENT = logging.getLogger("logkit.kafka.librdkafka")
_SILENT.addHandler(logging.NullHandler())
_SILENT.propagate = False


@dataclass
class KafkaURL:
    """A parsed ``kafka://`` URL."""

    url: str
    bootstrap: str
    topic: str
    options: dict[str, str] = field(default_factory=dict)  # logkit's own query parameters
    client: dict[str, Any] = field(default_factory=dict)  # librdkafka options

    @property
    def label(self) -> str:
        return redact(self.url)


def parse_kafka_url(url: str, known: tuple[str, ...], *, what: str = "--sink") -> KafkaURL:
    """Split a ``kafka://`` URL; ``known`` lists the logkit options the caller accepts."""
    parts = urlsplit(url)
    label = redact(url)
    if parts.scheme.lower() != "kafka":
        raise SinkSetupError(f"{what} {label}: not a kafka:// URL")
    hosts = parts.netloc.rpartition("@")[2]
    if not hosts or any(not _host_port(h) for h in hosts.split(",")):
        raise SinkSetupError(
            f"{what} {label}: give the brokers as HOST:PORT (kafka://HOST:PORT/TOPIC)"
        )
    topic = unquote(parts.path.lstrip("/"))
    if not topic:
        raise SinkSetupError(f"{what} {label}: the URL names no topic (kafka://HOST:PORT/TOPIC)")
    if not _TOPIC.match(topic):
        raise SinkSetupError(
            f"{what} {label}: {topic!r} is not a Kafka topic name "
            "(letters, digits, '.', '_' and '-', at most 249)"
        )
    result = KafkaURL(url=url, bootstrap=hosts, topic=topic)
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if "." in key:
            result.client[key] = value
        elif key in known:
            result.options[key] = value
        else:
            from logkit.registry import did_you_mean

            allowed = ", ".join(known) if known else "none"
            raise SinkSetupError(
                f"{what} {label}: unknown option {key!r}{did_you_mean(key, known)} "
                f"(logkit's options here: {allowed}; librdkafka options have a dot in their name)"
            )
    if parts.username:
        result.client.setdefault("sasl.username", unquote(parts.username))
    if parts.password:
        result.client.setdefault("sasl.password", unquote(parts.password))
    return result


def _host_port(text: str) -> bool:
    host, _, port = text.rpartition(":")
    return bool(host) and port.isdigit()


class ClientErrors:
    """The error callback of a client: keeps the last error, to say why something failed."""

    def __init__(self) -> None:
        self.last: Any = None
        self.fatal: Any = None  # the fatal error, if one came
        self.codes: set[int] = set()

    def __call__(self, error: Any) -> None:
        self.last = error
        self.codes.add(error.code())
        if error.fatal():
            self.fatal = error

    def reason(self, fallback: str = "") -> str:
        """The last error in words (librdkafka's message without its prefixes)."""
        if self.last is None:
            return fallback
        return describe(self.last)


def describe(error: Any) -> str:
    """A KafkaError (or an exception holding one) as a short phrase."""
    if hasattr(error, "args") and error.args and hasattr(error.args[0], "str"):
        error = error.args[0]
    text = error.str() if hasattr(error, "str") else str(error)
    # "127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: ..." -> drop the broker tag
    text = re.sub(r"^\S+/(bootstrap|\d+): ", "", text)
    return text.replace("ipv4#", "").replace("ipv6#", "")


def client_config(url: KafkaURL, errors: ClientErrors, **defaults: Any) -> dict[str, Any]:
    """librdkafka settings: logkit's defaults, then the URL's options (which win)."""
    config: dict[str, Any] = {
        "bootstrap.servers": url.bootstrap,
        "client.id": "logkit",
        "error_cb": errors,
        "logger": _SILENT,
    }
    config.update(defaults)
    config.update(url.client)
    return config


def check_topic(client: Any, url: KafkaURL, errors: ClientErrors, what: str, topic: str) -> None:
    """Fail with one line unless the brokers answer (within a few seconds) and know ``topic``.

    All topics are listed rather than the one asked for: a metadata request for a single topic
    may create it on a broker that auto-creates topics."""
    import time

    from confluent_kafka import KafkaError, KafkaException

    # Ask in short rounds: a refused connection or an unknown host is reported (to error_cb,
    # served by poll) within milliseconds, and then there is no point in waiting longer.
    deadline = time.monotonic() + CHECK_SECONDS
    while True:
        try:
            metadata = client.list_topics(timeout=0.5)
            break
        except KafkaException as exc:
            client.poll(0)
            hopeless = {KafkaError._ALL_BROKERS_DOWN, KafkaError._RESOLVE} & errors.codes
            if hopeless or time.monotonic() >= deadline:
                raise SinkSetupError(
                    f"{what} {url.label}: no Kafka broker answers at {url.bootstrap} "
                    f"({errors.reason(describe(exc))})"
                ) from None
    found = metadata.topics.get(topic)
    if found is None or found.error is not None:
        raise SinkSetupError(
            f"{what} {url.label}: the broker has no topic {topic!r}; create it first "
            f"(kafka-topics.sh --create --topic {topic} ...); logkit does not create topics"
        )
