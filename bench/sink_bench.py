"""Throughput of ``logkit ingest --sink postgresql://...`` beside the file store, same run.

Starts a throwaway PostgreSQL server (``tests/sinks/pgserver.py``: initdb + pg_ctl on a free
loopback port, default durability: fsync on, synchronous commit), generates N routed events of
about 200 bytes, then, interleaved ``--runs`` times, times end to end as subprocesses:

* ``logkit ingest FILE --store S`` (the file store, the default);
* ``logkit ingest FILE --sink postgresql://.../db?table=bench_<run>`` (a fresh table each run);
* the spool path: ``ingest --sink`` to a port where nothing listens (every block spooled),
  then ``logkit replay --spool ... --sink <the live server>``.

Each run must account for every event (rows in the table, the spool emptied), or the bench
exits 1. Run from the repository root::

    python bench/sink_bench.py                 # 200,000 events, 3 runs
    python bench/sink_bench.py --events 50000 --runs 1
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "sinks"))

from pgserver import PgServer, free_port

LOGKIT = str(Path(sys.executable).parent / "logkit")
CONTRACT = """\
$schema: https://json-schema.org/draft/2020-12/schema
title: A benchmark event
description: A numbered event with a few typical fields.
x-logkit:
  owner: bench@example.com
type: object
required: [seq, user_id, action]
properties:
  seq: {type: integer, description: Its number.}
  user_id: {type: string, pattern: "^u_[0-9a-f]+$", description: Who.}
  action: {enum: [view, click, buy, search], description: What.}
  amount: {type: number, minimum: 0, description: How much.}
  tags: {type: array, items: {type: string}, description: Labels.}
"""


def generate(path: Path, count: int, seed: int = 20261204) -> None:
    rng = random.Random(seed)
    actions = ("view", "click", "buy", "search")
    with path.open("w") as out:
        for seq in range(count):
            user, action, amount = rng.getrandbits(40), rng.choice(actions), rng.uniform(0, 500)
            tag, number, note = rng.choice(actions), rng.randrange(100), "x" * rng.randrange(20, 80)
            out.write(
                f'{{"contract":"bench","payload":{{"seq":{seq},"user_id":"u_{user:010x}",'
                f'"action":"{action}","amount":{amount:.2f},"tags":["{tag}","t{number}"],'
                f'"note":"{note}"}}}}\n'
            )


def timed(args: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"failed ({result.returncode}): {' '.join(args)}\n{result.stderr}")
    return elapsed


def count(server: PgServer, table: str) -> int:
    with psycopg.connect(server.dsn()) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="logkit-sink-bench-"))
    server = PgServer(durable=True)
    try:
        (work / "registry" / "bench").mkdir(parents=True)
        (work / "registry" / "bench" / "1.yaml").write_text(CONTRACT)
        source = work / "events.jsonl"
        generate(source, options.events)
        size = source.stat().st_size
        common = [LOGKIT, "ingest", str(source), "--registry", str(work / "registry")]
        figures: dict[str, list[float]] = {"file store": [], "postgresql": [], "replay": []}
        spool_ingest: list[float] = []
        no_retry = ["--sink-retry-seconds", "0"]
        for run in range(options.runs):
            store = work / f"store-{run}"
            figures["file store"].append(timed([*common, "--store", str(store)], work))
            table = f"bench_{run}"
            url = server.url(table)
            figures["postgresql"].append(
                timed([*common, "--store", str(work / f"s-{run}"), "--sink", url], work)
            )
            if count(server, table) != options.events:
                print(f"error: {table} holds {count(server, table)} rows", file=sys.stderr)
                return 1
            down = f"postgresql://logkit@127.0.0.1:{free_port()}/logkit_test?table=r_{run}"
            spool_store = work / f"spool-{run}"
            spool_ingest.append(
                timed(
                    [*common, "--store", str(spool_store), "--sink", down, *no_retry],
                    work,
                )
            )
            (spool,) = (spool_store / "_spool").iterdir()
            figures["replay"].append(
                timed(
                    [LOGKIT, "replay", "--spool", str(spool), "--sink", server.url(f"r_{run}")],
                    work,
                )
            )
            if count(server, f"r_{run}") != options.events or list(spool.glob("*/**/part-*")):
                print(f"error: replay r_{run} incomplete", file=sys.stderr)
                return 1
            shutil.rmtree(store)
        print(
            f"{options.events:,} events ({size / 1e6:.1f} MB), {options.runs} run(s), "
            f"{os.cpu_count()} CPUs; events/s, median (best), end to end:"
        )
        for name, seconds in figures.items():
            rates = [options.events / s for s in seconds]
            print(
                f"  {name:<12} {statistics.median(rates):>10,.0f} ({max(rates):,.0f})"
                f"  {statistics.median(seconds):.2f} s"
            )
        rates = [options.events / s for s in spool_ingest]
        print(f"  {'spooling':<12} {statistics.median(rates):>10,.0f} ({max(rates):,.0f})")
        return 0
    finally:
        server.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
