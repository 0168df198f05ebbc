"""Retry, backoff and the down/up state of a sink (a scripted in-memory sink: these tests are
about the policy, not a database; test_postgres.py runs the real one)."""

from __future__ import annotations

import pytest

from logkit.ingest import IngestBlock
from logkit.sinks import Sink, SinkError, SinkUnavailable
from logkit.sinks.delivery import Delivery, RetryPolicy, spool_root


class Scripted(Sink):
    """Fails with the given errors, in order, then succeeds."""

    def __init__(self, failures: list[Exception]) -> None:
        super().__init__("test://h/x")
        self.failures = failures
        self.writes = 0

    def check(self) -> None:
        self._next()

    def write(self, block: IngestBlock) -> None:
        self._next()
        self.writes += 1

    def _next(self) -> None:
        if self.failures:
            raise self.failures.pop(0)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def delivery(sink: Sink, clock: Clock, **policy: float) -> Delivery:
    return Delivery(sink, RetryPolicy(**policy), clock=clock, sleep=clock.sleep)


def test_backoff_doubles_within_the_budget() -> None:
    assert RetryPolicy(retry_seconds=3.0).delays() == [0.1, 0.2, 0.4, 0.8, 1.5]
    assert RetryPolicy(retry_seconds=0.5).delays() == [0.1, 0.2, 0.2]
    assert RetryPolicy(retry_seconds=0).delays() == []


def test_a_transient_failure_is_retried_and_delivered() -> None:
    clock = Clock()
    sink = Scripted([SinkUnavailable("down"), SinkUnavailable("down")])
    sent = delivery(sink, clock, retry_seconds=3.0).send(IngestBlock())
    assert sent.delivered
    assert sent.notice is None
    assert sink.writes == 1
    assert clock.now == pytest.approx(0.3)  # waited 0.1 then 0.2


def test_a_sink_that_stays_down_is_spooled_then_probed_then_back() -> None:
    clock = Clock()
    sink = Scripted([SinkUnavailable("refused")] * 4)
    d = delivery(sink, clock, retry_seconds=0.3, probe_seconds=5.0)
    first = d.send(IngestBlock())
    assert not first.delivered
    assert first.notice is not None
    assert "refused" in first.notice
    assert "spooling" in first.notice
    assert d.errors["unavailable"] == 3  # three attempts, 0.1 then 0.2 s apart
    # Until the probe time, blocks go straight to the spool, without trying the sink.
    assert d.send(IngestBlock()) == type(first)(False)
    clock.now += 5.0
    assert not d.send(IngestBlock()).delivered  # the probe fails: one attempt, no notice
    assert d.errors["unavailable"] == 4
    clock.now += 5.0
    back = d.send(IngestBlock())
    assert back.delivered
    assert back.notice is not None
    assert "back" in back.notice
    assert d.down is None
    assert sink.writes == 1


def test_a_non_retryable_error_is_raised_at_once() -> None:
    clock = Clock()
    sink = Scripted([SinkError("bad data")])
    with pytest.raises(SinkError, match="bad data"):
        delivery(sink, clock).send(IngestBlock())
    assert clock.slept == []


def test_spool_folders_are_per_url_without_the_password(tmp_path: object) -> None:
    from pathlib import Path

    store = Path("/s")
    a = spool_root(store, "postgresql://u:pw1@h:5432/db?table=a")
    assert a == spool_root(store, "postgresql://u:pw2@h:5432/db?table=a")
    assert a != spool_root(store, "postgresql://u@h:5432/db?table=b")
    assert a.parent == store / "_spool"
    assert "pw1" not in str(a)
    assert a.name.startswith("postgresql-h-5432-db-")
