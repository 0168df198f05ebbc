"""Throughput of ``logkit ingest`` beside a no-validation baseline, and ``tail -n 20`` latency.

Generates N routed ``search@2`` and ``click@1`` events as JSONL (a seeded 5% of them invalid in
varied ways: wrong types, missing fields, bad formats, truncated lines), then measures in one
run, interleaved so that a noisy machine hurts every figure alike:

* two baselines, each a Python loop that reads the file, parses each line, builds the envelope
  (id, received_at, contract, version, payload) with logkit's own id clock and writes it to one
  file, with no validation and no store:

  - the issue's baseline, as it words it: each line parsed into Python objects (orjson, the
    fastest parser to objects here, as fast as msgspec's), the envelope a dict written by
    orjson.dumps (the issue measured ~125k events/s for orientation);
  - a stricter one: the payload never built as objects, only skipped over and kept as raw
    bytes (msgspec.Raw), as ingest keeps it; validation needs the objects, so this measures
    what validating costs on top of parsing as well;
* ``logkit ingest FILE --store S`` end to end as a subprocess (start-up included), for each
  ``--workers`` setting, with its peak RSS (the process and its workers, sampled) and the
  counts of its ``--summary-json``, which must match what was generated;
* ``logkit tail -n 20`` on a store of ``--tail-events`` events (10,000,000 by default),
  built directly as sealed segments across many partitions; the 20 lines it prints must be
  the 20 newest.

Run from the repository root::

    python bench/ingest_bench.py                      # 1,000,000 events, tail on 10,000,000
    python bench/ingest_bench.py --events 100000 --tail-events 1000000

Exit status 1 if a figure is wrong (counts, tail output), not if a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import msgspec
import orjson

from logkit.store.ids import IdClock

TARGET = 0.7
LOGKIT = str(Path(sys.executable).parent / "logkit")
REGISTRY = Path(__file__).resolve().parent.parent / "registry"
WORDS = (  # noqa: SIM905 - a sentence reads better than 40 quoted words
    "waterproof hiking boots gift card balance red dress wireless headphones usb c charger "
    "laptop stand running shoes winter jacket coffee grinder espresso machine phone case "
    "garden hose led bulbs yoga mat cast iron pan sofa bed bookshelf table lamp backpack"
).split()
LOCALES = ("en", "en-GB", "de-DE", "fr", "es-ES", "nl", "ja")
INVALID_KINDS = ("wrong_type", "missing_field", "bad_format", "negative_position", "malformed")


# -- generating events ---------------------------------------------------------------------


def _search(rng: random.Random) -> dict[str, object]:
    score = rng.uniform(5.0, 25.0)
    results = []
    for position in range(rng.choice((0, 1, 3, 5, 10, 10))):
        results.append(
            {
                "document_id": f"doc_{rng.randrange(100000):05d}",
                "position": position,
                "score": round(score, 3),
            }
        )
        score -= rng.uniform(0.0, 1.5)
    event: dict[str, object] = {
        "user_id": f"u_{rng.getrandbits(40):010x}",
        "query_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "raw_query": " ".join(rng.choices(WORDS, k=rng.randrange(1, 5))),
        "results": results,
    }
    if rng.random() < 0.7:
        minute, millis = rng.randrange(60), rng.randrange(1000)
        event["occurred_at"] = f"2026-12-03T10:{minute:02d}:00.{millis:03d}Z"
    if rng.random() < 0.5:
        event["locale"] = rng.choice(LOCALES)
    return event


def _click(rng: random.Random) -> dict[str, object]:
    return {
        "user_id": f"u_{rng.getrandbits(40):010x}",
        "query_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "document_id": f"doc_{rng.randrange(100000):05d}",
        "position": rng.randrange(10),
        "clicked_at": f"2026-12-03T10:{rng.randrange(60):02d}:01.{rng.randrange(1000):03d}Z",
    }


def generate(path: Path, events: int, invalid_rate: float, seed: int) -> int:
    """Write the events file; returns how many lines are invalid."""
    rng = random.Random(seed)
    invalid = 0
    with open(path, "wb") as out:
        lines: list[bytes] = []
        for _ in range(events):
            click = rng.random() < 0.3
            payload = _click(rng) if click else _search(rng)
            contract, version = ("click", 1) if click else ("search", 2)
            malformed = False
            if rng.random() < invalid_rate:
                invalid += 1
                kind = rng.choice(INVALID_KINDS)
                if kind == "wrong_type":
                    payload["position" if click else "raw_query"] = None
                elif kind == "missing_field":
                    del payload["user_id"]
                elif kind == "bad_format":
                    payload["query_id"] = str(payload["query_id"])[:-3]
                elif kind == "negative_position":
                    payload["position" if click else "results"] = (
                        -1 if click else [{"document_id": "d", "position": -1, "score": 1.0}]
                    )
                else:
                    malformed = True
            line = orjson.dumps({"contract": contract, "version": version, "payload": payload})
            if malformed:
                line = line[: rng.randrange(10, len(line) - 1)]  # a truncated write
            lines.append(line)
            if len(lines) >= 10_000:
                out.write(b"\n".join(lines) + b"\n")
                lines.clear()
        if lines:
            out.write(b"\n".join(lines) + b"\n")
    return invalid


# -- measuring -----------------------------------------------------------------------------


class _Routed(msgspec.Struct):
    contract: str
    payload: msgspec.Raw
    version: int | None = None


def baseline(path: Path, out_path: Path) -> float:
    """Seconds to parse each line, build its envelope and write it; no validation."""
    decode = msgspec.json.Decoder(_Routed).decode
    clock = IdClock()
    started = time.perf_counter()
    with open(path, "rb") as stream, open(out_path, "wb", buffering=1 << 20) as out:
        write = out.write
        for line in stream:
            try:
                event = decode(line)
            except msgspec.DecodeError:
                write(b'{"reason":"malformed_json","raw":' + orjson.dumps(line.decode()) + b"}\n")
                continue
            uid, received_at, _dt = clock.next()
            write(
                f'{{"id":"{uid}","received_at":"{received_at}","contract":"{event.contract}",'
                f'"version":{event.version or 1},"payload":'.encode()
            )
            write(bytes(event.payload))
            write(b"}\n")
    return time.perf_counter() - started


def baseline_objects(path: Path, out_path: Path) -> float:
    """Seconds to parse each line into objects, build its envelope and write it; no
    validation (the baseline as the issue words it)."""
    loads, dumps = orjson.loads, orjson.dumps
    clock = IdClock()
    started = time.perf_counter()
    with open(path, "rb") as stream, open(out_path, "wb", buffering=1 << 20) as out:
        write = out.write
        for line in stream:
            try:
                event = loads(line)
            except orjson.JSONDecodeError:
                write(dumps({"reason": "malformed_json", "raw": line.decode()}) + b"\n")
                continue
            uid, received_at, _dt = clock.next()
            envelope = {
                "id": uid,
                "received_at": received_at,
                "contract": event["contract"],
                "version": event.get("version") or 1,
                "payload": event["payload"],
            }
            write(dumps(envelope) + b"\n")
    return time.perf_counter() - started


def _rss_kb(pid: int) -> int:
    """Resident memory of a process and its children (the workers), in KiB."""
    total = 0
    pids = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                pids += [int(x) for x in handle.read().split()]
    except OSError:
        pass
    for each in pids:
        try:
            with open(f"/proc/{each}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def run_ingest(path: Path, store: Path, workers: int) -> tuple[float, dict[str, int], list[int]]:
    """Wall seconds of one ``logkit ingest``, its summary, and RSS samples (KiB) over the run."""
    summary = store.parent / f"summary-{workers}.json"
    command = [LOGKIT, "ingest", str(path), "--store", str(store), "--workers", str(workers)]
    command += ["--summary-json", str(summary)]
    env = {**os.environ, "LOGKIT_REGISTRY": str(REGISTRY)}
    samples: list[int] = []
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)

    def sample() -> None:
        while proc.poll() is None:
            rss = _rss_kb(proc.pid)
            if rss:
                samples.append(rss)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    elapsed = time.perf_counter() - started
    sampler.join()
    if proc.returncode != 0:
        sys.exit(f"bench: logkit ingest failed (exit {proc.returncode}):\n{err.decode()}")
    report = json.loads(summary.read_text())
    return elapsed, report, samples


# -- a large store for tail ----------------------------------------------------------------


def build_tail_store(root: Path, events: int, seed: int) -> list[bytes]:
    """Sealed segments across contracts, versions and days, written directly (no validation:
    they are the lines ingest would write). Returns the 20 newest lines."""
    rng = random.Random(seed)
    partitions = [("search", 1), ("search", 2), ("click", 1)]
    days = 30
    per_segment = 50_000
    segments = max(1, events // per_segment)
    start = time.time() - days * 86400
    span = days * 86400 / segments  # seconds of events per segment, per partition round
    newest: list[tuple[bytes, bytes]] = []
    payload = (
        b'{"user_id":"u_0123456789","query_id":"2b5f7958-25c1-4851-9bb3-26cb66e24225",'
        b'"document_id":"doc_12345","position":%d,"clicked_at":"2026-12-03T10:15:09.004Z"}'
    )
    writer = f"bench-{seed}"
    written = 0
    for number in range(segments):
        contract, version = partitions[number % len(partitions)]
        count = min(per_segment, events - written) if number < segments - 1 else events - written
        first = start + number * span
        step = span / max(count, 1)
        second = int(first)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        dt = stamp[:10]
        folder = root / "events" / f"contract={contract}" / f"version={version}" / f"dt={dt}"
        folder.mkdir(parents=True, exist_ok=True)
        lines = []
        for i in range(count):
            moment = first + i * step
            if int(moment) != second:
                second = int(moment)
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            micros = int((moment - second) * 1e6)
            uid = f"{int(moment * 1000):012x}"
            lines.append(
                b'{"id":"%s-%s-7%03x-8%03x-%012x","received_at":"%s.%06dZ","contract":"%s",'
                b'"version":%d,"payload":%s}'
                % (
                    uid[:8].encode(),
                    uid[8:].encode(),
                    rng.getrandbits(12),
                    rng.getrandbits(12),
                    rng.getrandbits(48),
                    stamp.encode(),
                    micros,
                    contract.encode(),
                    version,
                    payload % (i % 10),
                )
            )
        path = folder / f"part-{writer}-{number:06d}.jsonl"
        path.write_bytes(b"\n".join(lines) + b"\n")
        last = first + (count - 1) * step
        os.utime(path, (last, last))  # as if the last line had just been written
        written += count
        newest = sorted(newest + [(_stamp(line), line) for line in lines[-20:]])[-20:]
    return [line for _, line in newest]


def _stamp(line: bytes) -> bytes:
    start = line.index(b'"received_at":"') + 15
    return line[start : start + 27]


def time_tail(root: Path, runs: int = 3) -> tuple[float, list[bytes]]:
    """Median wall seconds of ``logkit tail -n 20 --format json`` (start-up included)."""
    times = []
    out = b""
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(
            [LOGKIT, "tail", "--store", str(root), "-n", "20", "--format", "json"],
            capture_output=True,
            check=False,
        )
        times.append(time.perf_counter() - started)
        if done.returncode != 0:
            sys.exit(f"bench: logkit tail failed:\n{done.stderr.decode()}")
        out = done.stdout
    return statistics.median(times), out.splitlines()


def time_startup(scratch: Path, runs: int = 3) -> float:
    """Median wall seconds of ``logkit ingest`` of an empty file into a new store: the fixed
    cost (start-up, opening the store, compiling the contracts) in every ingest figure."""
    empty = scratch / "empty.jsonl"
    empty.write_bytes(b"")
    times = []
    for run in range(runs):
        store = scratch / f"store-empty-{run}"
        started = time.perf_counter()
        subprocess.run(
            [LOGKIT, "ingest", str(empty), "--store", str(store), "--workers", "1"],
            capture_output=True,
            check=False,
            env={**os.environ, "LOGKIT_REGISTRY": str(REGISTRY)},
        )
        times.append(time.perf_counter() - started)
        shutil.rmtree(store, ignore_errors=True)
    return statistics.median(times)


# -- the run ---------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--invalid", type=float, default=0.05)
    parser.add_argument("--workers", default="1,2", help="comma-separated --workers settings")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--tail-events", type=int, default=10_000_000, help="0 to skip")
    parser.add_argument("--seed", type=int, default=20261203)
    parser.add_argument("--tmp", type=Path, default=None, help="scratch folder (default: temp)")
    args = parser.parse_args()
    workers = [int(w) for w in args.workers.split(",")]
    scratch = Path(tempfile.mkdtemp(prefix="logkit-ingest-bench-", dir=args.tmp))
    failed = False
    try:
        path = scratch / "events.jsonl"
        started = time.perf_counter()
        invalid = generate(path, args.events, args.invalid, args.seed)
        size = path.stat().st_size
        print(
            f"generated {args.events:,} events ({invalid:,} invalid, {size / 1e6:,.0f} MB) "
            f"in {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
        base_times: list[float] = []
        object_times: list[float] = []
        ingest_times: dict[int, list[float]] = {w: [] for w in workers}
        peaks: dict[int, list[int]] = {w: [] for w in workers}
        for _ in range(args.repeat):
            object_times.append(baseline_objects(path, scratch / "baseline.jsonl"))
            base_times.append(baseline(path, scratch / "baseline.jsonl"))
            (scratch / "baseline.jsonl").unlink()
            for w in workers:
                store = scratch / f"store-{w}"
                elapsed, report, samples = run_ingest(path, store, w)
                shutil.rmtree(store)
                ingest_times[w].append(elapsed)
                peaks[w].append(max(samples, default=0))
                if (report["lines"], report["dead_lettered"]) != (args.events, invalid):
                    print(
                        f"bench: WRONG: --workers {w} read {report['lines']:,} lines and "
                        f"dead-lettered {report['dead_lettered']:,}; expected {args.events:,} "
                        f"and {invalid:,}",
                        file=sys.stderr,
                    )
                    failed = True
                quarter = samples[len(samples) // 4] if samples else 0
                print(
                    f"  --workers {w}: RSS {quarter / 1024:,.0f} MiB at a quarter of the run, "
                    f"{(samples[-1] if samples else 0) / 1024:,.0f} MiB at the end, "
                    f"peak {max(samples, default=0) / 1024:,.0f} MiB",
                    file=sys.stderr,
                )
        strict_rate = args.events / statistics.median(base_times)
        base_rate = args.events / statistics.median(object_times)
        print(
            f"\ningest of {args.events:,} events ({args.invalid:.0%} invalid), {size / 1e6:,.0f} MB"
        )
        print(
            f"  {'baseline (parse to objects, envelope, write)':<46} {base_rate:>10,.0f} events/s"
        )
        print(
            f"  {'strict baseline (payload kept as raw bytes)':<46} {strict_rate:>10,.0f} events/s"
        )
        for w in workers:
            rate = args.events / statistics.median(ingest_times[w])
            print(
                f"  {f'logkit ingest --workers {w}':<46} {rate:>10,.0f} events/s  "
                f"{rate / base_rate:4.2f}x baseline (target {TARGET}), "
                f"{rate / strict_rate:4.2f}x strict; peak RSS {max(peaks[w]) / 1024:,.0f} MiB"
            )
        if len(workers) > 1:
            one = args.events / statistics.median(ingest_times[workers[0]])
            for w in workers[1:]:
                rate = args.events / statistics.median(ingest_times[w])
                print(f"  scaling --workers {w} / --workers {workers[0]}: {rate / one:.2f}x")
        print(
            f"  fixed cost (ingest of an empty file): {time_startup(scratch):.2f} s, "
            "included in every ingest figure"
        )

        if args.tail_events:
            root = scratch / "tail-store"
            started = time.perf_counter()
            expected = build_tail_store(root, args.tail_events, args.seed)
            built = time.perf_counter() - started
            latency, lines = time_tail(root)
            print(
                f"\ntail -n 20 on {args.tail_events:,} events "
                f"(built in {built:.0f} s as sealed segments): {latency:.2f} s "
                f"(start-up included)"
            )
            if lines != expected:
                print("bench: WRONG: tail did not print the 20 newest events", file=sys.stderr)
                failed = True
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
