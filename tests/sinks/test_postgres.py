"""``ingest --sink postgresql://...`` and ``replay`` against a real PostgreSQL server.

The server is started by the session fixture (conftest.py, pgserver.py) on loopback. Events
carry unique sequence numbers: the oracle for "every event arrived, exactly once".
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pgserver import PASSWORD, PgServer, free_port

_BESIDE = Path(sys.executable).parent / "logkit"
LOGKIT = str(_BESIDE) if _BESIDE.exists() else str(shutil.which("logkit"))


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOGKIT_", "PG"))}
    env["NO_COLOR"] = "1"
    return env


def logkit(
    *args: str, cwd: Path, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [LOGKIT, *args],
        input=stdin.decode("utf-8", "surrogateescape") if stdin is not None else None,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="surrogateescape",
        cwd=cwd,
        env={**_env(), **(env or {})},
        timeout=60,
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert PASSWORD not in result.stderr + result.stdout  # never printed
    return result


def events(numbers: range) -> bytes:
    return b"".join(
        b'{"contract": "seq", "payload": {"seq": %d, "pad": "%s"}}\n' % (n, b"x" * (n % 7))
        for n in numbers
    )


def query(pg: PgServer, statement: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(pg.dsn()) as conn:
        return conn.execute(statement).fetchall()


def sequences(pg: PgServer, table: str) -> list[int]:
    return sorted(int(row[0]) for row in query(pg, f"SELECT payload->>'seq' FROM {table}"))


def spooled_segments(store: Path) -> list[Path]:
    return sorted(p for p in (store / "_spool").glob("*/**/part-*.jsonl*"))


def ingest_args(registry: Path, store: Path, url: str, *more: str) -> list[str]:
    return ["ingest", "--registry", str(registry), "--store", str(store), "--sink", url, *more]


def test_file_into_postgres_every_event_once(
    pg: PgServer, seq_registry: Path, tmp_path: Path
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(events(range(3000)))
    url = pg.url("t_file")
    result = logkit(*ingest_args(seq_registry, tmp_path / "store", url, source.name), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "3,000 lines read: 3,000 stored in postgresql://logkit:***@127.0.0.1" in result.stderr
    assert sequences(pg, "t_file") == list(range(3000))
    (ids, distinct, contracts, v7) = query(
        pg,
        "SELECT count(id), count(DISTINCT id),"
        " string_agg(DISTINCT contract || '@' || version, ','),"
        " bool_and(substr(id::text, 15, 1) = '7') FROM t_file",
    )[0]
    assert (ids, distinct, contracts, v7) == (3000, 3000, "seq@1", True)
    assert spooled_segments(tmp_path / "store") == []
    # Run again: the checkpoint says it is done; nothing is sent twice.
    again = logkit(*ingest_args(seq_registry, tmp_path / "store", url, source.name), cwd=tmp_path)
    assert again.returncode == 0
    assert "already ingested" in again.stderr
    assert query(pg, "SELECT count(*) FROM t_file") == [(3000,)]


PAYLOADS = [
    b'{"seq": 1, "big": 123456789012345678901234567890, "f": 1.10, "e": 1e2, "neg": -0.0}',
    b'{"seq":2,"z":1,"a":{"y":[],"b":null}}',
    (
        '{"seq":3,"s":"tab\\there \\"q\\" back\\\\slash \u00e9 \U0001f600 \\u00e9 \\ud83d\\ude00"}'
    ).encode(),
    b'{"seq":4,\t"ws" :  [1,\t2]\r}',
    b'{"seq":5,"nul":"a\\u0000b"}',
    '{"seq":6,"ключ":"значение","":""}'.encode(),
]


def test_payload_round_trips_exactly(pg: PgServer, seq_registry: Path, tmp_path: Path) -> None:
    stdin = b"".join(b'{"contract":"seq","payload":' + p + b"}\n" for p in PAYLOADS)
    url = pg.url("t_payload")
    result = logkit(*ingest_args(seq_registry, tmp_path / "s", url), cwd=tmp_path, stdin=stdin)
    assert result.returncode == 0, result.stderr
    assert f"{len(PAYLOADS)} stored" in result.stderr
    rows = query(pg, "SELECT payload_text, payload FROM t_payload ORDER BY (payload_text)")
    by_text = {text.encode(): payload for text, payload in rows}
    assert sorted(by_text) == sorted(PAYLOADS)  # byte for byte
    for raw, payload in by_text.items():
        if b"\\u0000" in raw:
            assert payload is None  # jsonb cannot hold U+0000; payload_text keeps it
        else:
            assert payload == json.loads(raw)


def test_dead_letters_land_in_their_table(pg: PgServer, seq_registry: Path, tmp_path: Path) -> None:
    lines = [
        b"not json at all",
        b'{"contract":"seq","payload":{"seq":"seven"}}',
        b'{"contract":"nope","payload":{}}',
        b'{"contract":"seq","payload":{"seq":1,"s":"\xff\xfe"}}',
        b'{"contract":"seq","payload":{"seq":1}}',
    ]
    url = pg.url("t_dl") + "&dead_letter_table=t_dl_bad"
    result = logkit(
        *ingest_args(seq_registry, tmp_path / "s", url),
        cwd=tmp_path,
        stdin=b"\n".join(lines) + b"\n",
    )
    assert result.returncode == 0, result.stderr
    assert "1 stored" in result.stderr
    assert "4 dead-lettered" in result.stderr
    rows = query(pg, "SELECT reason, contract, version, record_text, record FROM t_dl_bad")
    assert sorted(r[0] for r in rows) == [
        "invalid",
        "invalid_utf8",
        "malformed_json",
        "unknown_contract",
    ]
    kept = set()
    for reason, contract, version, text, record in rows:
        assert json.loads(text) == record
        assert (record["contract"], record["version"]) == (contract, version)
        raw = (
            record["raw"].encode()
            if "raw" in record
            else __import__("base64").b64decode(record["raw_base64"])
        )
        kept.add(raw)
        assert reason == record["reason"]
    assert kept == set(lines[:4])
    assert query(pg, "SELECT count(*) FROM t_dl") == [(1,)]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"password": "wrong"}, "password authentication failed"),
        ({"db": "no_such_db"}, 'database "no_such_db" does not exist'),
        ({"host": "no-such-host.invalid"}, "no-such-host.invalid"),
        ({"table": "1bad"}, "must be a plain SQL name"),
        ({"query": "&bogus=1"}, '"bogus"'),
        ({"port": "notaport"}, "notaport"),
    ],
)
def test_setup_errors_fail_fast_with_one_line(
    pg: PgServer, seq_registry: Path, tmp_path: Path, change: dict[str, str], expected: str
) -> None:
    url = pg.url(change.get("table", "t_setup"), password=change.get("password", PASSWORD))
    url = url.replace("/logkit_test?", f"/{change.get('db', 'logkit_test')}?")
    url = url.replace("127.0.0.1", change.get("host", "127.0.0.1"))
    url = url.replace(str(pg.port), change.get("port", str(pg.port))) + change.get("query", "")
    result = logkit(
        *ingest_args(seq_registry, tmp_path / "s", url), cwd=tmp_path, stdin=events(range(5))
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("logkit: error: --sink postgresql://"), lines[0]
    assert expected in lines[0]
    assert not (tmp_path / "s" / "_spool").exists() or spooled_segments(tmp_path / "s") == []


def test_sink_down_from_the_start_spools_then_replay_delivers(
    pg: PgServer, seq_registry: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    source = tmp_path / "in.jsonl"
    source.write_bytes(events(range(500)) + b"garbage\n")
    down = f"postgresql://logkit@127.0.0.1:{free_port()}/logkit_test?table=t_down"
    fast = ("--sink-retry-seconds", "0.3")
    result = logkit(*ingest_args(seq_registry, store, down, source.name, *fast), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("the sink is unavailable") == 1
    assert "0 stored in" in result.stderr
    assert "500 spooled" in result.stderr
    assert "1 dead-lettered (1 of them spooled)" in result.stderr
    segments = spooled_segments(store)
    assert len(segments) == 2  # one of events, one of dead letters
    # The checkpoint covers what was spooled: the file is not read again.
    again = logkit(*ingest_args(seq_registry, store, down, source.name, *fast), cwd=tmp_path)
    assert "already ingested" in again.stderr

    # The sink still down: replay says so in one line, exit 3, and keeps the spool.
    still = logkit("replay", "--store", str(store), *fast, cwd=tmp_path)
    assert still.returncode == 3, still.stderr
    assert still.stderr.startswith("logkit: error: postgresql://logkit@127.0.0.1:")
    assert "2 segments left" in still.stderr
    assert spooled_segments(store) == segments

    # Sent to the live server instead (the spool named by folder), twice: no duplicate.
    spool = segments[0].relative_to(store).parts[:2]
    kept = [segment.read_bytes() for segment in segments]
    live = pg.url("t_down")
    for _ in range(2):
        done = logkit(
            "replay", "--spool", str(store.joinpath(*spool)), "--sink", live, cwd=tmp_path
        )
        assert done.returncode == 0, done.stderr
        assert "replayed 500 events and 1 dead letter from 2 segments" in done.stderr
        assert spooled_segments(store) == []
        assert sequences(pg, "t_down") == list(range(500))
        assert query(pg, "SELECT count(*) FROM t_down_dead_letter") == [(1,)]
        # Put the segments back, as if the replay had died before deleting them.
        for segment, data in zip(segments, kept, strict=True):
            segment.write_bytes(data)
    nothing = logkit("replay", "--store", str(tmp_path / "empty"), cwd=tmp_path)
    assert nothing.returncode == 0
    assert "nothing to replay" in nothing.stderr


def _wait_for(what: str, check: Any, timeout: float, feed: Any = None) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        if feed is not None:
            feed()
        time.sleep(0.2)


def test_database_stopped_mid_stream(pg: PgServer, seq_registry: Path, tmp_path: Path) -> None:
    """The server is killed (pg_ctl stop -m immediate) while ingest reads a slowly fed stdin:
    ingest spools, says so once, keeps accepting events, says when the server is back; replay
    then delivers the spool, and every event is found exactly once."""
    store = tmp_path / "store"
    url = pg.url("t_mid")
    err = (tmp_path / "stderr").open("w+")
    metrics, summary = tmp_path / "m.prom", tmp_path / "summary.json"
    proc = subprocess.Popen(
        [
            LOGKIT,
            *ingest_args(seq_registry, store, url, "--sink-retry-seconds", "0.5"),
            "--metrics-file",
            str(metrics),
            "--summary-json",
            str(summary),
        ],
        stdin=subprocess.PIPE,
        stderr=err,
        cwd=tmp_path,
        env=_env(),
    )
    assert proc.stdin is not None
    sent = iter(range(10_000))

    def feed(count: int = 10) -> None:
        assert proc.stdin is not None
        numbers = [next(sent) for _ in range(count)]
        proc.stdin.write(events(range(numbers[0], numbers[-1] + 1)))
        proc.stdin.flush()

    def stderr() -> str:
        err.seek(0)
        return err.read()

    def rows() -> int:
        return int(query(pg, "SELECT count(*) FROM t_mid")[0][0]) if _table(pg, "t_mid") else 0

    try:
        feed(100)
        _wait_for("the first events in PostgreSQL", lambda: rows() == 100, 20)
        pg.stop("immediate")
        try:
            _wait_for("the spooling notice", lambda: "unavailable" in stderr(), 20, feed)
            for _ in range(5):
                feed()
                time.sleep(0.1)
        finally:
            pg.start()
        _wait_for("the sink to be back", lambda: "the sink is back" in stderr(), 20, feed)
        feed(50)
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0, stderr()
    finally:
        if proc.poll() is None:
            proc.kill()
        err.close()
    text = (tmp_path / "stderr").read_text()
    total = next(sent)  # every number below this one was written
    assert text.count("the sink is unavailable") == 1, text
    assert text.count("the sink is back") == 1, text
    report = json.loads(summary.read_text())
    assert report["lines"] == total == report["stored"] + report["spooled"], report
    assert report["stored"] >= 100, report
    assert report["spooled"] > 0, report
    prom = metrics.read_text()
    assert f'outcome="spooled",version="1"}} {float(report["spooled"])}' in prom, prom
    assert f'logkit_sink_spooled_total{{kind="event",sink="{_label(url)}"}} ' in prom
    assert 'logkit_sink_errors_total{kind="unavailable"' in prom

    before = sequences(pg, "t_mid")
    assert len(before) == len(set(before)) < total  # some are only in the spool
    # The spool records its URL without the password: libpq takes it from PGPASSWORD.
    done = logkit("replay", "--store", str(store), cwd=tmp_path, env={"PGPASSWORD": PASSWORD})
    assert done.returncode == 0, done.stderr
    assert "its spool is empty" in done.stderr
    assert sequences(pg, "t_mid") == list(range(total))  # each exactly once
    assert spooled_segments(store) == []


def _table(pg: PgServer, name: str) -> bool:
    return bool(query(pg, f"SELECT to_regclass('{name}') IS NOT NULL")[0][0])


def _label(url: str) -> str:
    return url.replace(f":{PASSWORD}@", ":***@")


def test_help_does_not_load_psycopg() -> None:
    code = (
        "import sys\nfrom logkit.cli import main\n"
        "main(['--help']); main(['ingest', '--help']); main(['replay', '--help'])\n"
        "assert 'psycopg' not in sys.modules, 'psycopg imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(), check=False
    )
    assert result.returncode == 0, result.stderr
    assert "--sink" in result.stdout
    assert "--spool" in result.stdout


def test_kill_9_mid_file_then_resume_and_replay_exactly_once(
    pg: PgServer, seq_registry: Path, tmp_path: Path
) -> None:
    """kill -9 while a file is sent: the resumed run and a replay deliver every event once
    (a block is in the spool, checkpointed, before the sink sees it)."""
    total = 150_000
    source = tmp_path / "in.jsonl"
    source.write_bytes(events(range(total)))
    store, url = tmp_path / "store", pg.url("t_kill")
    args = [LOGKIT, *ingest_args(seq_registry, store, url, source.name)]
    proc = subprocess.Popen(args, cwd=tmp_path, env=_env(), stderr=subprocess.DEVNULL)
    try:
        _wait_for(
            "some events in PostgreSQL",
            lambda: _table(pg, "t_kill") and query(pg, "SELECT count(*) FROM t_kill")[0][0] > 0,
            30,
        )
        proc.kill()
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    at_kill = query(pg, "SELECT count(*) FROM t_kill")[0][0]
    assert 0 < at_kill < total  # killed mid-way
    resumed = logkit(*args[1:], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "lines read" in resumed.stderr
    logkit("replay", "--store", str(store), "--sink", url, cwd=tmp_path)
    counts = query(pg, "SELECT count(*), count(DISTINCT payload->>'seq') FROM t_kill")[0]
    assert counts == (total, total)
    assert sequences(pg, "t_kill") == list(range(total))


def test_replay_refuses_a_folder_that_is_not_a_spool(pg: PgServer, tmp_path: Path) -> None:
    store = tmp_path / "store"
    segment = store / "events" / "contract=seq" / "version=1" / "dt=2026-12-04" / "part-w-1.jsonl"
    segment.parent.mkdir(parents=True)
    segment.write_bytes(b"{}\n")
    result = logkit("replay", "--spool", str(store), "--sink", pg.url("t_never"), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("logkit: error: --spool ")
    assert "not a spool" in result.stderr
    assert segment.exists()  # replay deletes what it sent: never a store's own segments


def test_sigterm_mid_stream_stops_cleanly_and_keeps_everything(
    pg: PgServer, seq_registry: Path, tmp_path: Path
) -> None:
    store, url = tmp_path / "store", pg.url("t_term")
    proc = subprocess.Popen(
        [LOGKIT, *ingest_args(seq_registry, store, url)],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env=_env(),
    )
    assert proc.stdin is not None
    proc.stdin.write(events(range(300)))
    proc.stdin.flush()
    _wait_for(
        "the events in PostgreSQL",
        lambda: _table(pg, "t_term") and query(pg, "SELECT count(*) FROM t_term")[0][0] == 300,
        20,
    )
    proc.terminate()
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 143, err
    assert b"interrupted: 300 lines read: 300 stored in" in err
    assert sequences(pg, "t_term") == list(range(300))
    assert spooled_segments(store) == []


def test_database_stopped_mid_batch_of_a_file(
    pg: PgServer, seq_registry: Path, tmp_path: Path
) -> None:
    """The server is killed while a file streams in (1 MiB blocks: most likely mid-COPY or
    mid-commit): the rest is spooled, and replay makes every event arrive exactly once."""
    total = 150_000
    source = tmp_path / "in.jsonl"
    source.write_bytes(events(range(total)))
    store, url = tmp_path / "store", pg.url("t_batch")
    args = [*ingest_args(seq_registry, store, url, source.name), "--sink-retry-seconds", "0.3"]
    proc = subprocess.Popen(
        [LOGKIT, *args], cwd=tmp_path, env=_env(), stderr=subprocess.PIPE, text=True
    )
    try:
        _wait_for(
            "some events in PostgreSQL",
            lambda: _table(pg, "t_batch") and query(pg, "SELECT count(*) FROM t_batch")[0][0] > 0,
            30,
        )
        pg.stop("immediate")
        try:
            _, err = proc.communicate(timeout=60)
        finally:
            pg.start()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert err.count("the sink is unavailable") == 1, err
    assert "spooled to" in err
    assert sequences(pg, "t_batch") != list(range(total))  # the server died before the end
    done = logkit("replay", "--store", str(store), "--sink", url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sequences(pg, "t_batch") == list(range(total))


def test_an_existing_table_without_the_columns_is_a_setup_error(
    pg: PgServer, seq_registry: Path, tmp_path: Path
) -> None:
    with psycopg.connect(pg.dsn()) as conn:
        conn.execute("CREATE TABLE t_other (id integer PRIMARY KEY, body text)")
    result = logkit(
        *ingest_args(seq_registry, tmp_path / "s", pg.url("t_other")),
        cwd=tmp_path,
        stdin=events(range(3)),
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1
    assert "table t_other exists without the columns " in result.stderr
    assert "contract, payload, payload_text, received_at, version" in result.stderr


def test_a_role_that_may_only_insert_uses_tables_made_for_it(
    pg: PgServer, seq_registry: Path, tmp_path: Path
) -> None:
    """No CREATE needed on tables that exist; a role that may not INSERT fails at once."""
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        for role in ("inserter", "looker"):
            conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'")
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        for table in ("t_made", "t_look"):  # as an administrator would, by the docs' DDL
            conn.execute(
                f"CREATE TABLE {table} (id uuid PRIMARY KEY, received_at timestamptz NOT NULL,"
                " contract text NOT NULL, version integer NOT NULL, payload jsonb,"
                " payload_text text NOT NULL, inserted_at timestamptz NOT NULL DEFAULT now())"
            )
            conn.execute(
                f"CREATE TABLE {table}_dead_letter (id uuid PRIMARY KEY,"
                " received_at timestamptz NOT NULL, contract text, version integer,"
                " reason text NOT NULL, record jsonb, record_text text NOT NULL,"
                " inserted_at timestamptz NOT NULL DEFAULT now())"
            )
        conn.execute("GRANT SELECT, INSERT ON t_made, t_made_dead_letter TO inserter")
        conn.execute("GRANT SELECT ON t_look, t_look_dead_letter TO looker")
    good = pg.url("t_made").replace("logkit:", "inserter:")
    result = logkit(
        *ingest_args(seq_registry, tmp_path / "a", good), cwd=tmp_path, stdin=events(range(40))
    )
    assert result.returncode == 0, result.stderr
    assert sequences(pg, "t_made") == list(range(40))
    bad = pg.url("t_look").replace("logkit:", "looker:")
    denied = logkit(
        *ingest_args(seq_registry, tmp_path / "b", bad), cwd=tmp_path, stdin=events(range(4))
    )
    assert denied.returncode == 2, denied.stderr
    assert denied.stderr.count("\n") == 1
    assert "may not INSERT into (and SELECT from) table t_look" in denied.stderr


def test_kill_9_mid_stream_then_replay_keeps_what_was_read_once(
    pg: PgServer, seq_registry: Path, tmp_path: Path
) -> None:
    """From stdin nothing can be read again: after kill -9, what the dead run had read is in
    PostgreSQL or in its spool (recovered by replay), each event once."""
    store, url = tmp_path / "store", pg.url("t_kill_stream")
    proc = subprocess.Popen(
        [LOGKIT, *ingest_args(seq_registry, store, url)],
        stdin=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
        env=_env(),
    )
    assert proc.stdin is not None
    try:
        proc.stdin.write(events(range(200)))
        proc.stdin.flush()
        _wait_for(
            "the first events in PostgreSQL",
            lambda: (
                _table(pg, "t_kill_stream")
                and query(pg, "SELECT count(*) FROM t_kill_stream")[0][0] == 200
            ),
            20,
        )
        proc.stdin.write(events(range(200, 5000)))
        proc.stdin.flush()
        proc.kill()
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
    done = logkit("replay", "--store", str(store), "--sink", url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    seen = sequences(pg, "t_kill_stream")
    assert len(seen) == len(set(seen))  # never twice
    assert seen[:200] == list(range(200))
    assert set(seen) <= set(range(5000))
    assert spooled_segments(store) == []


#: Runs ``logkit`` with a crash (as kill -9 would end it: no cleanup at all) injected in the
#: first fsync after the second confirmed block was cut from the spool, i.e. once a third block
#: was appended where the second one stood.
_CRASH_AFTER_A_CUT = """
import os, sys
from logkit.store.writer import StoreWriter
cuts = 0
rollback, sync = StoreWriter.rollback, StoreWriter.sync
def counted_rollback(self, mark):
    global cuts
    cuts += 1
    rollback(self, mark)
def crashing_sync(self):
    if cuts >= 2:
        os._exit(137)
    sync(self)
StoreWriter.rollback, StoreWriter.sync = counted_rollback, crashing_sync
from logkit.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_crash_just_after_a_block_was_cut_from_the_spool_stores_nothing_twice(
    pg: PgServer, seq_registry: Path, tmp_path: Path
) -> None:
    """The moment kill -9 once hit by chance (163,273 rows for 150,000 events): recovery keeps a
    spool segment up to its checkpointed length, which must be the length after the cut, or
    the block appended after it would be replayed and read again when resuming."""
    total = 60_000  # about 2.5 MB: several 1 MiB blocks
    source = tmp_path / "in.jsonl"
    source.write_bytes(events(range(total)))
    store, url = tmp_path / "store", pg.url("t_cut")
    args = ingest_args(seq_registry, store, url, source.name)
    crashed = subprocess.run([sys.executable, "-c", _CRASH_AFTER_A_CUT, *args], cwd=tmp_path,
                             env=_env(), capture_output=True, check=False)  # fmt: skip
    assert crashed.returncode == 137, crashed.stderr.decode()
    delivered = query(pg, "SELECT count(*) FROM t_cut")[0][0]
    assert 0 < delivered < total
    resumed = logkit(*args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    logkit("replay", "--store", str(store), "--sink", url, cwd=tmp_path)
    assert query(pg, "SELECT count(*), count(DISTINCT payload->>'seq') FROM t_cut")[0] == (
        total,
        total,
    )
    assert sequences(pg, "t_cut") == list(range(total))
