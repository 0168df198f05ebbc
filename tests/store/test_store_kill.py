"""``kill -9`` at random moments: every input line ends up in the store exactly once.

Each scenario writes input whose every line carries a unique sequence number, runs the installed
``logkit ingest`` on it and SIGKILLs it at seeded random moments (during start-up and recovery,
or while it writes), re-running the same command after each kill until a run completes. After
every kill the sealed segments must hold no torn line and no line twice; after the last run
every line is there exactly once (valid ones as envelopes, the rest as dead letters) and no
segment is left open. The scenarios run side by side (each with its own store) to keep the
suite short; ``bench/soak_ingest.py`` is the long version.
"""

from __future__ import annotations

import random
import subprocess
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from storekit import (
    Line,
    SealedWatch,
    assert_exactly_once,
    kill_until_done,
    logkit,
    make_lines,
    open_segments,
    write_lines,
)

KILLS = 11
LINES = 10_000  # about 2 MB: two 1 MiB blocks, each sealing segments (--segment-mb 0.2)
MORE = 5_000  # appended when a run completes before KILLS kills (a log file that grows)

SCENARIOS = {
    "batch": ["--fsync", "batch"],
    "always": ["--fsync", "always"],
    "batch-workers2": ["--fsync", "batch", "--workers", "2"],
    "always-workers2-gzip": ["--fsync", "always", "--workers", "2", "--gzip"],
    "batch-two-files-gzip": ["--fsync", "batch", "--gzip"],
    # An fsync and a checkpoint on the writer's thread after every block, under the kills.
    "batch-behind": ["--fsync", "batch", "--fsync-seconds", "0.001"],
}


@dataclass
class Outcome:
    store: Path
    args: list[str | Path]
    lines: list[Line]
    kills: int
    final: subprocess.CompletedProcess[bytes]


def _scenario(folder: Path, name: str) -> Outcome:
    seed = sum(map(ord, name))
    rng = random.Random(seed)
    store = folder / "store"
    lines = make_lines(LINES, seed)
    files = [write_lines(folder / "in.jsonl", lines)]
    if "two-files" in name:
        more = make_lines(LINES // 2, seed + 1, start=len(lines))
        files.append(write_lines(folder / "more.jsonl", more))
        lines += more
    args: list[str | Path] = ["ingest", *files, "--store", store, "--segment-mb", "0.2"]
    args += SCENARIOS[name]
    watch = SealedWatch(store)
    kills = 0
    for _round in range(20):
        done, final = kill_until_done(args, store, rng, KILLS - kills, watch=watch)
        kills += done
        if kills >= KILLS or final.returncode != 0:
            return Outcome(store, args, lines, kills, final)
        # Finished before enough kills: the log grows, and the same command resumes it.
        more = make_lines(MORE, seed + kills, start=len(lines))
        with open(files[-1], "ab") as handle:
            handle.write(b"".join(line.data + b"\n" for line in more))
        lines += more
    raise AssertionError(f"{name}: {kills} kills in 20 rounds")


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Future[Outcome]]:
    with ThreadPoolExecutor(max_workers=3) as pool:
        return {
            name: pool.submit(_scenario, tmp_path_factory.mktemp(name), name) for name in SCENARIOS
        }


@pytest.mark.slow
@pytest.mark.parametrize("name", SCENARIOS)
def test_kill_9_then_resume_stores_every_line_exactly_once(
    outcomes: dict[str, Future[Outcome]], name: str
) -> None:
    outcome = outcomes[name].result()  # re-raises what a check after a kill found

    assert outcome.final.returncode == 0, outcome.final.stderr.decode()
    assert outcome.kills >= KILLS, f"only {outcome.kills} kills hit a running ingest"
    assert_exactly_once(outcome.store, outcome.lines)
    assert open_segments(outcome.store) == []
    # Running it again changes nothing: the files are known to be ingested.
    again = logkit(*outcome.args)
    assert again.returncode == 0
    assert b"already ingested" in again.stderr
    assert_exactly_once(outcome.store, outcome.lines)


@pytest.mark.slow
def test_at_least_50_kills_in_all(outcomes: dict[str, Future[Outcome]]) -> None:
    assert sum(f.result().kills for f in outcomes.values()) >= 50
