"""``logkit serve --sink postgresql://...`` against a real PostgreSQL server and a real uvicorn.

Every 200 answer carries the envelope id: the oracle is that the table's ids are exactly the
answered ids, each once, whatever happened to the database in between.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pgserver import PASSWORD, PgServer

sys.path.insert(0, str(Path(__file__).parents[1] / "service"))

from serving import REPO_ROOT, Server, get, logkit_command, post


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("LOGKIT_", "PG"))}


def table_ids(pg: PgServer, table: str) -> list[str]:
    with psycopg.connect(pg.dsn()) as conn:
        exists = conn.execute(f"SELECT to_regclass('{table}') IS NOT NULL").fetchone()
        if not exists or not exists[0]:
            return []
        return [str(row[0]) for row in conn.execute(f"SELECT id FROM {table}").fetchall()]


def wait_for(what: str, check: Callable[[], Any], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def post_events(port: int, numbers: range, threads: int = 8) -> list[str]:
    """POST one event per number, ``threads`` at a time; the ids of the 200 answers."""

    def one(n: int) -> str:
        status, body = post(port, "/log/seq", b'{"seq": %d}' % n)
        assert status == 200, (status, body)
        return str(json.loads(body)["id"])

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, numbers))


def metric(port: int, line_start: str) -> float:
    status, body = get(port, "/metrics")
    assert status == 200
    for line in body.decode().splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no metric {line_start!r} in:\n{body.decode()}")


def spool_segments(store: Path) -> list[Path]:
    return sorted((store / "_spool").glob("*/**/part-*.jsonl*"))


@pytest.fixture
def serve_sink(seq_registry: Path, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def make(url: str, *args: str) -> Server:
        server = Server(tmp_path / "store", ["--sink", url, *args], registry=seq_registry)
        started.append(server)
        return server.start()

    yield make
    for server in started:
        server.stop()


def test_posted_events_arrive_in_the_table_exactly_once(
    pg: PgServer, serve_sink: Callable[..., Server], tmp_path: Path
) -> None:
    url = pg.url("t_serve") + "&dead_letter_table=t_serve_bad"
    server = serve_sink(url, "--workers", "2")
    ids = post_events(server.port, range(300))
    batch = b"".join(b'{"contract":"seq","payload":{"seq":%d}}\n' % n for n in range(300, 350))
    status, body = post(server.port, "/log", batch + b"not json\n", "application/x-ndjson")
    assert status == 200, body
    answer = json.loads(body)
    assert (answer["stored"], answer["dead_lettered"]) == (50, 1)
    ids += [r["id"] for r in answer["results"] if r["status"] == 200]
    status, body = post(server.port, "/log/seq", b'{"seq": "seven"}')
    assert status == 422, body

    wait_for("every answered event in PostgreSQL", lambda: len(table_ids(pg, "t_serve")) >= 350)
    wait_for("the dead letters", lambda: len(table_ids(pg, "t_serve_bad")) >= 2)
    in_table = table_ids(pg, "t_serve")
    assert len(ids) == len(set(ids)) == 350
    assert sorted(in_table) == sorted(ids)  # each once, none other
    label = url.replace(f":{PASSWORD}@", ":***@")
    assert metric(server.port, f'logkit_sink_up{{sink="{label}"}}') == 1.0
    delivered = f'logkit_sink_delivered_total{{kind="event",sink="{label}"}}'
    wait_for("the delivered count", lambda: metric(server.port, delivered) == 350)
    assert PASSWORD not in server.output()
    status, body = get(server.port, "/events/seq")
    assert status == 501, body
    assert b"events_in_sink" in body

    assert server.stop() == 143, server.output()
    assert spool_segments(tmp_path / "store") == []
    assert sorted(table_ids(pg, "t_serve")) == sorted(ids)


def test_database_stopped_while_serving(
    pg: PgServer, serve_sink: Callable[..., Server], tmp_path: Path
) -> None:
    """Requests keep being answered 200 while PostgreSQL is down; the deliverer sends the
    spool when it is back; what is left at shutdown while it is down again goes by replay."""
    url = pg.url("t_serve_down")
    server = serve_sink(url, "--sink-retry-seconds", "0.3")
    label = url.replace(f":{PASSWORD}@", ":***@")
    ids = post_events(server.port, range(50))
    wait_for("the first events", lambda: len(table_ids(pg, "t_serve_down")) == 50)

    pg.stop("immediate")
    try:
        ids += post_events(server.port, range(50, 150))  # all 200: they go to the spool
        wait_for("the spooling notice", lambda: "the sink is unavailable" in server.output())
        ids += post_events(server.port, range(150, 200))
        assert metric(server.port, f'logkit_sink_up{{sink="{label}"}}') == 0.0
        spooled = metric(server.port, f'logkit_sink_spooled_total{{kind="event",sink="{label}"}}')
        assert spooled >= 50
        assert metric(server.port, f'logkit_sink_errors_total{{kind="unavailable",sink="{label}"}}')
    finally:
        pg.start()
    wait_for("the sink to be back", lambda: "the sink is back" in server.output(), 20)
    wait_for("the spooled events", lambda: len(table_ids(pg, "t_serve_down")) >= 200)
    assert sorted(table_ids(pg, "t_serve_down")) == sorted(ids)
    assert server.output().count("the sink is unavailable") == 1, server.output()

    # Down again, then SIGTERM: what is in the spool stays there (nothing lost), and replay
    # sends it once the database is back.
    pg.stop("immediate")
    try:
        ids += post_events(server.port, range(200, 260))
        assert server.stop() == 143, server.output()
    finally:
        pg.start()
    assert "left in the spool" in server.output(), server.output()
    assert spool_segments(tmp_path / "store")
    replay = subprocess.run(
        [*logkit_command(), "replay", "--store", str(tmp_path / "store")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**_env(), "PGPASSWORD": PASSWORD},
        timeout=60,
    )
    assert replay.returncode == 0, replay.stderr
    assert "its spool is empty" in replay.stderr, replay.stderr
    in_table = table_ids(pg, "t_serve_down")
    assert len(ids) == len(set(ids)) == 260
    assert sorted(in_table) == sorted(ids)  # none missing, none twice
    assert spool_segments(tmp_path / "store") == []


def test_a_database_down_at_start(
    pg: PgServer, serve_sink: Callable[..., Server], tmp_path: Path
) -> None:
    """Down is not a setup error: serve starts, says so, answers 200 into the spool, and the
    deliverer sends the events once the database is up."""
    pg.stop("immediate")
    try:
        url = pg.url("t_serve_late")
        server = serve_sink(url, "--sink-retry-seconds", "0.2")
        assert "the sink is unavailable" in server.output(), server.output()  # before serving
        ids = post_events(server.port, range(40))
        # ... and the worker's own deliverer says it too.
        wait_for("the worker", lambda: server.output().count("the sink is unavailable") == 2)
        label = url.replace(f":{PASSWORD}@", ":***@")
        spooled = f'logkit_sink_spooled_total{{kind="event",sink="{label}"}}'
        assert metric(server.port, spooled) == 40
    finally:
        pg.start()
    wait_for("the spooled events", lambda: len(table_ids(pg, "t_serve_late")) >= 40)
    assert sorted(table_ids(pg, "t_serve_late")) == sorted(ids)
    assert server.stop() == 143, server.output()
    assert spool_segments(tmp_path / "store") == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"password": "wrong"}, "password authentication failed"),
        ({"scheme": "mysql"}, "unknown sink mysql://"),
    ],
)
def test_a_bad_sink_is_exit_2_with_one_line(
    pg: PgServer, seq_registry: Path, tmp_path: Path, change: dict[str, str], expected: str
) -> None:
    url = pg.url("t_serve_bad", password=change.get("password", PASSWORD))
    url = change.get("scheme", "postgresql") + url.removeprefix("postgresql")
    result = subprocess.run(
        [
            *logkit_command(),
            "serve",
            "--port",
            "0",
            "--registry",
            str(seq_registry),
            "--store",
            str(tmp_path / "store"),
            "--sink",
            url,
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=_env(),
        timeout=30,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("logkit: error: --sink "), lines[0]
    assert expected in lines[0]
    assert PASSWORD not in result.stderr
