"""Throughput of ``logkit validate`` against a parse-only orjson baseline, in one run.

Generates N realistic bare ``search`` v2 events (a seeded fraction of them invalid in varied
ways) as JSONL, then measures, interleaved so that a noisy machine hurts every figure alike:

* baseline: a Python loop that reads the file line by line and ``orjson.loads`` each line;
* ``logkit validate --contract search FILE`` end to end as a subprocess (start-up included),
  for each ``--workers`` setting;
* ``logkit --help`` start-up time.

It also checks that logkit found exactly the invalid events that were generated, and exits 1
if not. Run from the repository root::

    python bench/validate_bench.py                 # 1,000,000 events
    python bench/validate_bench.py --events 100000 --repeat 1
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
TARGET = 0.6
HELP_TARGET = 0.3
#: logkit's summary line: "N events checked in 1 file: V valid, I invalid" (or "all valid").
SUMMARY = re.compile(
    r"(?P<events>\d+) events checked in \d+ files?: "
    r"(?:all valid|(?P<valid>\d+) valid, (?P<invalid>\d+) invalid)"
)

# fmt: off
WORDS = (
    "waterproof", "hiking", "boots", "gift", "card", "balance", "red", "dress", "size", "10",
    "wireless", "headphones", "noise", "cancelling", "usb", "c", "charger", "laptop", "stand",
    "standing", "desk", "running", "shoes", "women", "men", "kids", "winter", "jacket",
    "returns", "policy", "coffee", "grinder", "espresso", "machine", "phone", "case", "iphone",
    "samsung", "garden", "hose", "led", "bulbs", "warm", "white", "yoga", "mat", "cast",
    "iron", "pan", "sofa", "bed", "bookshelf", "oak", "table", "lamp", "backpack", "travel",
    "adapter", "sunglasses", "polarised", "vitamin", "d", "protein", "powder", "dog", "food",
    "cat", "litter",
)
# fmt: on
LOCALES = ("en", "en-GB", "en-US", "de-DE", "fr", "fr-FR", "es-ES", "nl", "pt-BR", "ja")
INVALID_KINDS = (
    "wrong_type",
    "missing_field",
    "bad_uuid",
    "negative_position",
    "extra_field",
    "malformed_json",
)


# -- generating events ---------------------------------------------------------------------


def make_event(rng: random.Random) -> dict[str, object]:
    """One valid search v2 event, shaped like a real search service's log."""
    user = (
        f"u_{rng.getrandbits(40):010x}" if rng.random() < 0.8 else f"anon_{rng.getrandbits(32):08x}"
    )
    words = rng.choices(WORDS, k=rng.choice((1, 1, 2, 2, 2, 3, 3, 4, 5)))
    count = rng.choice((0, 1, 3, 5, 8, 10, 10, 10, 10, 10))
    score = rng.uniform(5.0, 25.0)
    results = []
    for position in range(count):
        document = (
            f"doc_{rng.randrange(100000):05d}"
            if rng.random() < 0.9
            else f"kb/{rng.choice(WORDS)}-{rng.choice(WORDS)}"
        )
        results.append({"document_id": document, "position": position, "score": round(score, 3)})
        score -= rng.uniform(0.0, 1.5)
    event: dict[str, object] = {
        "user_id": user,
        "query_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "raw_query": " ".join(words),
        "results": results,
    }
    if rng.random() < 0.7:
        ms = rng.randrange(86_400_000)
        event["occurred_at"] = (
            f"2026-12-03T{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:"
            f"{ms // 1000 % 60:02d}.{ms % 1000:03d}Z"
        )
    if rng.random() < 0.6:
        event["locale"] = rng.choice(LOCALES)
    if rng.random() < 0.3:
        event["page"] = rng.randrange(1, 6)
    return event


def spoil(event: dict[str, object], kind: str, rng: random.Random) -> bytes:
    """The event made invalid in the given way, as one JSONL line without the newline."""
    results = event["results"]
    assert isinstance(results, list)
    if kind == "wrong_type":
        field = rng.choice(("user_id", "raw_query", "results", "page"))
        event[field] = {"user_id": 1234, "raw_query": None, "results": "none", "page": "2"}[field]
    elif kind == "missing_field":
        del event[rng.choice(("user_id", "query_id", "raw_query", "results"))]
    elif kind == "bad_uuid":
        event["query_id"] = str(event["query_id"])[:-3]
    elif kind == "negative_position":
        if not results:
            results.append({"document_id": "doc_00001", "position": 0, "score": 1.0})
        rng.choice(results)["position"] = -1
    elif kind == "extra_field":
        event["session_id"] = "s_12345"
    line = orjson.dumps(event)
    if kind == "malformed_json":
        line = line[: rng.randrange(1, len(line) - 1)]  # a truncated write
    return line


def generate(path: Path, events: int, invalid_rate: float, seed: int) -> Counter[str]:
    """Write the events; returns how many of each invalid kind were written."""
    rng = random.Random(seed)
    kinds: Counter[str] = Counter()
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as out:
        lines: list[bytes] = []
        for _ in range(events):
            event = make_event(rng)
            if rng.random() < invalid_rate:
                kind = rng.choice(INVALID_KINDS)
                kinds[kind] += 1
                lines.append(spoil(event, kind, rng))
            else:
                lines.append(orjson.dumps(event))
            if len(lines) >= 10_000:
                out.write(b"\n".join(lines) + b"\n")
                lines.clear()
        if lines:
            out.write(b"\n".join(lines) + b"\n")
    os.replace(tmp, path)
    return kinds


def dataset(events: int, invalid_rate: float, seed: int) -> tuple[Path, Counter[str]]:
    """The events file for these parameters, generated once and reused while it matches."""
    OUT.mkdir(parents=True, exist_ok=True)
    stem = f"search-{events}-{invalid_rate:g}-{seed}"
    path, meta = OUT / f"{stem}.jsonl", OUT / f"{stem}.json"
    if path.exists() and meta.exists():
        recorded = json.loads(meta.read_text())
        if recorded.get("size") == path.stat().st_size:
            return path, Counter(recorded["invalid"])
    started = time.perf_counter()
    kinds = generate(path, events, invalid_rate, seed)
    meta.write_text(json.dumps({"size": path.stat().st_size, "invalid": kinds}))
    print(
        f"generated {path.relative_to(ROOT)} in {time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )
    return path, kinds


# -- measuring -----------------------------------------------------------------------------


@dataclass
class Timing:
    """Wall and CPU seconds (user + system, worker processes included) of each run."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def add(self, wall: float, cpu: float) -> None:
        self.wall.append(wall)
        self.cpu.append(cpu)


def baseline(path: Path) -> tuple[float, float]:
    """Wall and CPU seconds to read the file line by line and parse each line with orjson."""
    loads, error = orjson.loads, orjson.JSONDecodeError
    started, cpu = time.perf_counter(), time.process_time()
    with open(path, "rb") as stream:
        for line in stream:
            try:  # noqa: SIM105 - a with-block per line would slow the baseline down
                loads(line)
            except error:
                pass
    return time.perf_counter() - started, time.process_time() - cpu


def logkit_command() -> list[str]:
    found = shutil.which("logkit", path=str(Path(sys.executable).parent)) or shutil.which("logkit")
    return [found] if found else [sys.executable, "-m", "logkit"]


def children_cpu() -> float:
    """CPU seconds of every finished child process so far (and of their children)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_logkit(path: Path, workers: str) -> tuple[float, float, dict[str, int]]:
    """Wall and CPU seconds of one ``logkit validate`` run, and the counts of its summary line.

    Text output (the default) goes to /dev/null, as it would to a pipe nobody reads.
    """
    command = [*logkit_command(), "validate", "--contract", "search", str(path)]
    if workers != "auto":
        command += ["--workers", workers]
    started, cpu = time.perf_counter(), children_cpu()
    done = subprocess.run(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
    )
    elapsed, cpu = time.perf_counter() - started, children_cpu() - cpu
    summary = done.stderr.decode(errors="replace").strip().splitlines()
    match = SUMMARY.fullmatch(summary[-1]) if summary else None
    if done.returncode not in (0, 1) or match is None:
        sys.exit(
            f"bench: logkit failed (exit {done.returncode}):\n"
            f"{done.stderr.decode(errors='replace')}"
        )
    events, valid, invalid = match.group("events", "valid", "invalid")
    counts = {"events": int(events), "valid": int(valid or events), "invalid": int(invalid or 0)}
    return elapsed, cpu, counts


def help_time(runs: int) -> float:
    """Median wall seconds of ``logkit --help``."""
    command = [*logkit_command(), "--help"]
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, cwd=ROOT, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--invalid-rate", type=float, default=0.02)
    parser.add_argument(
        "--workers",
        default="1,auto",
        help="comma-separated --workers settings to measure (default: 1,auto)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs of each measurement; the median is reported (default: 3)",
    )
    parser.add_argument("--seed", type=int, default=20261203)
    args = parser.parse_args(argv)
    settings = [w.strip() for w in args.workers.split(",") if w.strip()]

    path, kinds = dataset(args.events, args.invalid_rate, args.seed)
    expected_invalid = sum(kinds.values())
    print(
        f"{args.events:,} events ({path.stat().st_size / 1e6:.0f} MB), {expected_invalid:,} "
        f"invalid ({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))}); "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; "
        f"median of {args.repeat} runs",
        flush=True,
    )
    want = {
        "events": args.events,
        "valid": args.events - expected_invalid,
        "invalid": expected_invalid,
    }
    base = Timing()
    runs = {workers: Timing() for workers in settings}
    mismatches: list[str] = []
    for _ in range(args.repeat):  # interleaved, so load spikes spread over every figure
        base.add(*baseline(path))
        for workers in settings:
            elapsed, cpu, counts = run_logkit(path, workers)
            runs[workers].add(elapsed, cpu)
            if counts != want:
                mismatches.append(f"--workers {workers}: logkit reported {counts}, expected {want}")
    startup = help_time(10)

    base_wall, base_cpu = statistics.median(base.wall), statistics.median(base.cpu)
    print(
        f"\n{'measurement':<34} {'wall s':>7} {'events/s':>9} {'x base':>6}  {'target':<6}"
        f" {'CPU s':>6} {'x base':>6}"
    )
    print(
        f"{'orjson.loads per line (baseline)':<34} {base_wall:>7.2f} "
        f"{args.events / base_wall:>9,.0f} {1:>6.2f}  {'':<6} {base_cpu:>6.2f} {1:>6.2f}"
    )
    for workers, timing in runs.items():
        wall, cpu = statistics.median(timing.wall), statistics.median(timing.cpu)
        verdict = "met" if base_wall / wall >= TARGET else "missed"
        print(
            f"{f'logkit validate --workers {workers}':<34} {wall:>7.2f} "
            f"{args.events / wall:>9,.0f} {base_wall / wall:>6.2f}  {verdict:<6} "
            f"{cpu:>6.2f} {base_cpu / cpu:>6.2f}"
        )
    verdict = "met" if startup < HELP_TARGET else "missed"
    print(f"{'logkit --help (median of 10)':<34} {startup:>7.3f} {'':>9} {'':>6}  {verdict}")
    print(
        f"\ntargets: validate >= {TARGET} x the baseline's events/s (wall, end to end), "
        f"--help < {HELP_TARGET} s; load average now {os.getloadavg()[0]:.1f}"
    )
    if mismatches:
        print(
            "bench: FAILED: logkit's counts disagree with the generated file:",
            *mismatches,
            sep="\n  ",
            file=sys.stderr,
        )
        return 1
    print(f"counts agree: {expected_invalid:,} invalid events generated, and reported by each run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
