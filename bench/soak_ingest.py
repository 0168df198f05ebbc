"""A long ``kill -9`` soak of ``logkit ingest``: N kills at random moments, one store, and the
exactly-once oracle of ``tests/store`` (``storekit``) throughout.

Round after round, a new input file (every line carrying a unique sequence number) is ingested
into the same store with a rotating mix of settings (``--fsync batch|always``,
``--fsync-seconds 0.001``, ``--workers 1|2``, ``--gzip``, small segments); each run is SIGKILLed
at a seeded random moment and the same command re-run, until it completes. After every kill the
sealed segments must hold no torn line and no line twice; every few rounds, and at the end,
every line ever sent must be in the store exactly once (valid ones as envelopes with their exact
payload bytes, the rest as dead letters with their exact bytes) and no segment may be left open.

    python bench/soak_ingest.py                  # 500 kills
    python bench/soak_ingest.py --kills 30 --lines 5000

Exit status 1 on the first violation; the store is kept for inspection (its path is printed).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "store"))

from storekit import (  # after the path that makes it importable
    Line,
    SealedWatch,
    assert_exactly_once,
    kill_until_done,
    make_lines,
    open_segments,
    write_lines,
)

SETTINGS = (
    ["--fsync", "batch"],
    ["--fsync", "always"],
    ["--fsync", "batch", "--workers", "2"],
    ["--fsync", "always", "--gzip"],
    ["--fsync", "batch", "--workers", "2", "--gzip"],
    # An fsync and a checkpoint on the writer's thread after every block, under the kills.
    ["--fsync", "batch", "--fsync-seconds", "0.001"],
    ["--fsync", "batch", "--fsync-seconds", "0.001", "--workers", "2", "--gzip"],
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=500)
    parser.add_argument("--per-round", type=int, default=10, help="kills per input file")
    parser.add_argument("--lines", type=int, default=10_000, help="lines per input file")
    parser.add_argument("--check-every", type=int, default=10, help="rounds between full checks")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dir", type=Path, default=None, help="scratch folder (default: temp)")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="logkit-soak-", dir=args.dir))
    store = scratch / "store"
    rng = random.Random(args.seed)
    watch = SealedWatch(store)
    lines: list[Line] = []
    kills = rounds = 0
    started = time.monotonic()
    try:
        while kills < args.kills:
            settings = SETTINGS[rounds % len(SETTINGS)]
            batch = make_lines(args.lines, seed=args.seed * 1_000_003 + rounds, start=len(lines))
            source = write_lines(scratch / f"in-{rounds:05d}.jsonl", batch)
            lines += batch
            command = ["ingest", source, "--store", store, "--segment-mb", "0.2", *settings]
            want = min(args.per_round, args.kills - kills)
            done, final = kill_until_done(command, store, rng, want, watch=watch)
            kills += done
            rounds += 1
            if final.returncode != 0:
                raise AssertionError(f"the run after the kills failed:\n{final.stderr.decode()}")
            if rounds % args.check_every == 0 or kills >= args.kills:
                assert_exactly_once(store, lines)
                assert open_segments(store) == [], open_segments(store)
            elapsed = time.monotonic() - started
            print(
                f"round {rounds}: {kills}/{args.kills} kills, {len(lines):,} lines, "
                f"{elapsed:.0f} s ({' '.join(settings)})",
                file=sys.stderr,
            )
        assert_exactly_once(store, lines)
        assert open_segments(store) == []
    except AssertionError as exc:
        print(f"soak: FAILED after {kills} kills in round {rounds}: {exc}", file=sys.stderr)
        print(f"soak: the store is kept in {store}", file=sys.stderr)
        return 1
    print(
        f"soak: {kills} kills in {rounds} rounds, {len(lines):,} lines each stored or "
        f"dead-lettered exactly once, no segment left open "
        f"({time.monotonic() - started:.0f} s)"
    )
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
