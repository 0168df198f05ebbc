"""Prometheus metrics of the service: ingest's names, plus HTTP request counts and latencies.

``logkit_events_total``, ``logkit_validation_errors_total``, ``logkit_bytes_read_total`` and
``logkit_last_success_timestamp_seconds`` mean what they mean for ``ingest --metrics-file``
(bytes read are request-body bytes here). With ``--workers N`` ``logkit serve`` sets
``PROMETHEUS_MULTIPROC_DIR`` to a fresh folder, every worker writes its counters there and
``GET /metrics``, whichever worker answers it, reports the sum of all; one worker keeps them in
memory.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from logkit.ingest import IngestBlock

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


UNKNOWN = "(unknown)"


class ServiceMetrics:
    """The worker's metrics. ``known`` holds the registry's ``(contract, version)`` labels:
    events naming another contract are counted as contract ``(unknown)``, another version as
    version ``-``, so that clients cannot add label values (and memory) without end."""

    def __init__(self, known: frozenset[tuple[str, str]] = frozenset()) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        folder = os.environ.get(MULTIPROC_ENV)
        self.multiprocess = bool(folder) and os.path.isdir(folder or "")
        self.registry = CollectorRegistry(auto_describe=True)
        # In multiprocess mode the values live in files; the registry only collects them.
        target = None if self.multiprocess else self.registry
        self.events = Counter(
            "logkit_events",
            "Events received, by contract, version and outcome "
            "(stored, or the dead-letter reason).",
            ["contract", "version", "outcome"],
            registry=target,
        )
        self.validation_errors = Counter(
            "logkit_validation_errors",
            "Validation errors of dead-lettered events, by rule.",
            ["contract", "version", "rule"],
            registry=target,
        )
        self.bytes_read = Counter(
            "logkit_bytes_read", "Bytes of request bodies read.", registry=target
        )
        self.last_success = Gauge(
            "logkit_last_success_timestamp_seconds",
            "Unix time at which an event was last stored.",
            registry=target,
            multiprocess_mode="max",
        )
        self.requests = Counter(
            "logkit_http_requests",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "route", "status"],
            registry=target,
        )
        self.latency = Histogram(
            "logkit_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response, by method and route.",
            ["method", "route"],
            registry=target,
            buckets=LATENCY_BUCKETS,
        )
        self.target = target
        self.sink: SinkMetrics | None = None
        self.known = known
        self.known_names = frozenset(name for name, _ in known)
        self._children: dict[tuple[Any, ...], Any] = {}
        #: Path templates of plain Starlette routes, by endpoint (FastAPI puts only its own
        #: routes in ``scope["route"]``).
        self.templates: dict[Any, str] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def record(self, out: IngestBlock) -> None:
        """Count what one request's block became, as ingest counts a block."""
        for (contract, version, outcome), count in out.outcomes.items():
            contract, version = self._labels(contract, version)
            self._child(self.events, contract, version, outcome.split(":", 1)[-1]).inc(count)
        for (contract, version, rule), count in out.rules.items():
            contract, version = self._labels(contract, version)
            self._child(self.validation_errors, contract, version, rule).inc(count)
        self.bytes_read.inc(out.bytes)
        if out.events:
            self.last_success.set(time.time())

    def enable_sink(self, label: str) -> SinkMetrics:
        """The sink metrics of ``serve --sink`` (ingest's names), labelled with ``label``."""
        self.sink = SinkMetrics(label, self.target)
        return self.sink

    def _labels(self, contract: str, version: str) -> tuple[str, str]:
        if (contract, version) in self.known or contract == "-":
            return contract, version
        return (contract if contract in self.known_names else UNKNOWN), "-"

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self._child(self.requests, method, route, str(status)).inc()
        self._child(self.latency, method, route).observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition of every worker's metrics."""
        from prometheus_client import CollectorRegistry, generate_latest

        if not self.multiprocess:
            return generate_latest(self.registry)
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)


class SinkMetrics:
    """``logkit_sink_*`` of ``serve --sink``: what ``ingest --sink`` reports, plus deliveries.

    Every accepted record goes through the spool first (write-ahead); ``spooled`` counts those
    accepted while the sink was down (they wait for it), ``delivered`` those the sink confirmed.
    The deliverer thread updates them; prometheus_client's metrics are thread-safe."""

    def __init__(self, label: str, target: Any) -> None:
        from prometheus_client import Counter, Gauge

        self.label = label
        self.spooled = Counter(
            "logkit_sink_spooled",
            "Records written to the local spool while the sink was down, by kind.",
            ["sink", "kind"],
            registry=target,
        )
        self.delivered = Counter(
            "logkit_sink_delivered",
            "Records sent from the spool and confirmed by the sink, by kind.",
            ["sink", "kind"],
            registry=target,
        )
        self.errors = Counter(
            "logkit_sink_errors",
            "Failed sink calls (each retry counts), by kind: unavailable or error.",
            ["sink", "kind"],
            registry=target,
        )
        self.up_gauge = Gauge(
            "logkit_sink_up",
            "1 while the sink takes writes, else 0 (the lowest of the workers).",
            ["sink"],
            registry=target,
            multiprocess_mode="min",
        )
        for kind in ("event", "dead_letter"):  # present from the start, at 0
            self.spooled.labels(label, kind)
            self.delivered.labels(label, kind)
        for kind in ("unavailable", "error"):
            self.errors.labels(label, kind)
        self.set_up(True)

    def set_up(self, up: bool) -> None:
        self.up_gauge.labels(self.label).set(1.0 if up else 0.0)

    def spool(self, out: IngestBlock) -> None:
        """Count a block accepted into the spool while the sink is down."""
        if out.stored:
            self.spooled.labels(self.label, "event").inc(out.stored)
        if out.dead_lettered:
            self.spooled.labels(self.label, "dead_letter").inc(out.dead_lettered)

    def deliver(self, events: int, dead: int) -> None:
        if events:
            self.delivered.labels(self.label, "event").inc(events)
        if dead:
            self.delivered.labels(self.label, "dead_letter").inc(dead)

    def error(self, kind: str, count: int = 1) -> None:
        self.errors.labels(self.label, kind).inc(count)


class RequestMetrics:
    """ASGI middleware: counts every response and times it, labelled by route template."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            template = (
                getattr(scope.get("route"), "path", None)
                or self.metrics.templates.get(scope.get("endpoint"))
                or "(unmatched)"
            )
            self.metrics.observe(scope["method"], template, status, time.perf_counter() - started)
