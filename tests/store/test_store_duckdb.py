"""DuckDB reads the store as it is, while an ingest is writing to it, and sees exactly the
sealed events, with ``contract``, ``version`` and ``dt`` as columns."""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from pathlib import Path

import duckdb
import pytest
from storekit import LOGKIT, Contents, env, make_lines, open_segments, read_store

#: The query of the issue, as is (DuckDB infers the payload's type across contracts).
QUERY = """
SELECT contract, version, dt, count(*) AS n
FROM read_json('{store}/events/**/*.jsonl*', hive_partitioning = true,
               format = 'newline_delimited')
GROUP BY ALL
"""
#: With the columns named, which also keeps any payload (integers beyond 64 bits included) as
#: JSON text, and needs no inference: the README's form.
QUERY_COLUMNS = """
SELECT contract, version, dt, count(*) AS n
FROM read_json('{store}/events/**/*.jsonl*', hive_partitioning = true,
               format = 'newline_delimited',
               columns = {{id: 'UUID', received_at: 'TIMESTAMPTZ', contract: 'VARCHAR',
                          version: 'INTEGER', payload: 'JSON'}})
GROUP BY ALL
"""
ROWS = """
SELECT id::VARCHAR, contract, version, dt::VARCHAR, payload::VARCHAR
FROM read_json('{store}/events/**/*.jsonl*', hive_partitioning = true,
               format = 'newline_delimited',
               columns = {{id: 'UUID', received_at: 'TIMESTAMPTZ', contract: 'VARCHAR',
                          version: 'INTEGER', payload: 'JSON'}})
"""


def _expected(contents: Contents) -> Counter[tuple[str, int, str]]:
    return Counter(
        (r.value["contract"], r.value["version"], r.value["received_at"][:10])
        for r in contents.events
    )


def _query(sql: str, store: Path) -> Counter[tuple[str, int, str]]:
    rows = duckdb.sql(sql.format(store=store)).fetchall()
    return Counter({(c, v, str(dt)): n for c, v, dt, n in rows})


def _open_lines(store: Path) -> int:
    return sum(p.read_bytes().count(b"\n") for p in open_segments(store))


def _wait(predicate: object, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_duckdb_reads_exactly_the_sealed_events_while_ingest_writes(tmp_path: Path) -> None:
    store = tmp_path / "store"
    proc = subprocess.Popen(
        [LOGKIT, "ingest", "--store", str(store), "--segment-seconds", "1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env(),
    )
    assert proc.stdin is not None
    sent = 0
    try:
        for _attempt in range(5):
            # A burst that gets sealed, then one that stays in an open segment for a while.
            for count, sealed in ((400, True), (150, False)):
                burst = make_lines(count, seed=70 + sent, start=sent)
                sent += count
                proc.stdin.write(b"".join(line.data + b"\n" for line in burst))
                proc.stdin.flush()
                if sealed:
                    _wait(lambda: open_segments(store) == [] and read_store(store).events)
                else:
                    _wait(lambda n=count: _open_lines(store) >= n)
            before = read_store(store)
            got = _query(QUERY, store)
            got_columns = _query(QUERY_COLUMNS, store)
            rows = duckdb.sql(ROWS.format(store=store)).fetchall()
            after = read_store(store)
            if [r.data for r in before.events] == [r.data for r in after.events]:
                break  # nothing was sealed while DuckDB read: the comparison is fair
        else:
            pytest.fail("a segment was sealed during every query")
        assert open_segments(store), "no segment was open while DuckDB read"
    finally:
        proc.stdin.close()
        assert proc.stderr is not None
        err = proc.stderr.read()
        proc.stderr.close()
        proc.wait(timeout=30)
    assert proc.returncode == 0, err.decode()

    expected = _expected(before)
    assert sum(expected.values()) > 0
    assert got == expected
    assert got_columns == expected
    # Row by row: the partition columns equal the envelope's own fields.
    by_id = {r.value["id"]: r.value for r in before.events}
    assert len(rows) == len(by_id)
    for uid, contract, version, dt, payload in rows:
        envelope = by_id[uid]
        assert (contract, version, dt) == (
            envelope["contract"],
            envelope["version"],
            envelope["received_at"][:10],
        )
        assert json.loads(payload) == envelope["payload"]
    # Once the ingest has sealed everything, DuckDB sees every valid line.
    final = read_store(store)
    assert _query(QUERY_COLUMNS, store) == _expected(final)
    assert sum(_expected(final).values()) > sum(expected.values())
