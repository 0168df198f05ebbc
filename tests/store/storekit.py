"""Helpers for the store tests: the installed ``logkit``, inputs whose every line carries a unique
sequence number, and an oracle that reads a store the way a warehouse tool does (sealed segments
only) and checks that each input line is there exactly once."""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import os
import random
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
REGISTRY = REPO / "registry"
SCHEMAS = REPO / "schemas"
LOGKIT = str(Path(sys.executable).parent / "logkit")

#: Every generated line carries its sequence number inside a query id, so the number can be found
#: in a stored payload and in the raw bytes of a dead letter alike.
_SEQ = re.compile(rb"00000000-0000-4000-8000-(\d{12})")


def seq_id(seq: int) -> str:
    return f"00000000-0000-4000-8000-{seq:012d}"


def seq_of(data: bytes) -> int:
    match = _SEQ.search(data)
    assert match, f"no sequence number in {data[:120]!r}"
    return int(match.group(1))


def env(**extra: str) -> dict[str, str]:
    """The environment for a ``logkit`` subprocess: no user settings, the example registry."""
    out = {k: v for k, v in os.environ.items() if not k.startswith("LOGKIT_")}
    out.pop("FORCE_COLOR", None)
    out["NO_COLOR"] = "1"
    out["LOGKIT_REGISTRY"] = str(REGISTRY)
    out.update(extra)
    return out


def logkit(
    *args: str | Path, input: bytes | None = None, timeout: float = 60, **kwargs: Any
) -> subprocess.CompletedProcess[bytes]:
    """Run the installed ``logkit`` and wait for it."""
    return subprocess.run(
        [LOGKIT, *map(str, args)],
        input=input,
        capture_output=True,
        timeout=timeout,
        env=kwargs.pop("env", None) or env(),
        check=False,
        **kwargs,
    )


# -- inputs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    seq: int
    data: bytes  # without the newline
    valid: bool
    contract: str | None = None
    version: int | None = None
    reason: str | None = None  # the expected dead-letter reason when not valid


def _search(seq: int, rng: random.Random) -> dict[str, Any]:
    return {
        "user_id": f"u_{rng.randrange(10**6):06d}",
        "query_id": seq_id(seq),
        "raw_query": rng.choice(("boots", "red dress", "caf\u00e9", "usb c", "")),
        "results": [
            {"document_id": f"doc_{rng.randrange(10**5)}", "position": i, "score": 10.5 - i}
            for i in range(rng.randrange(4))
        ],
    }


def _click(seq: int, rng: random.Random) -> dict[str, Any]:
    return {
        "user_id": f"u_{rng.randrange(10**6):06d}",
        "query_id": seq_id(seq),
        "document_id": f"doc_{rng.randrange(10**5)}",
        "position": rng.randrange(10),
        "clicked_at": "2026-12-05T10:15:09.004Z",
    }


def make_line(seq: int, rng: random.Random, invalid_rate: float = 0.1) -> Line:
    """One routed event (search@1, search@2 or click@1), or a broken one of several kinds."""
    pick = rng.random()
    if rng.random() >= invalid_rate:
        if pick < 0.5:
            return Line(seq, _routed("search", 2, _search(seq, rng)), True, "search", 2)
        if pick < 0.7:
            return Line(seq, _routed("search", 1, _search(seq, rng)), True, "search", 1)
        return Line(seq, _routed("click", 1, _click(seq, rng)), True, "click", 1)
    if pick < 0.4:
        payload = _click(seq, rng)
        payload["position"] = -1
        return Line(seq, _routed("click", 1, payload), False, "click", 1, "invalid")
    if pick < 0.6:
        return Line(seq, _routed("search", 2, _search(seq, rng))[:-7], False, None, None,
                    "malformed_json")  # fmt: skip
    if pick < 0.8:
        return Line(seq, _routed("nope", 1, _click(seq, rng)), False, "nope", 1, "unknown_contract")
    data = b'{"contract": "click", "version": 1, "payload": {"query_id": "%s", "query_id": 1}}' % (
        seq_id(seq).encode()
    )
    return Line(seq, data, False, None, None, "duplicate_key")


def _routed(contract: str, version: int, payload: dict[str, Any]) -> bytes:
    return json.dumps(
        {"contract": contract, "version": version, "payload": payload}, ensure_ascii=False
    ).encode()


def make_lines(count: int, seed: int, start: int = 0, invalid_rate: float = 0.1) -> list[Line]:
    rng = random.Random(seed)
    return [make_line(seq, rng, invalid_rate) for seq in range(start, start + count)]


def write_lines(path: Path, lines: Iterable[Line]) -> Path:
    with open(path, "wb") as handle:
        for line in lines:
            handle.write(line.data + b"\n")
    return path


# -- reading a store as a warehouse tool does ------------------------------------------------


@dataclass
class Record:
    path: Path
    data: bytes  # the stored line, without its newline
    value: dict[str, Any]


@dataclass
class Contents:
    events: list[Record] = field(default_factory=list)
    dead: list[Record] = field(default_factory=list)
    segments: list[Path] = field(default_factory=list)


def sealed_segments(store: Path) -> list[Path]:
    """What ``events/**/*.jsonl*`` and ``dead_letter/**/*.jsonl*`` match."""
    found = []
    for top in ("events", "dead_letter"):
        found += [p for p in (store / top).glob("**/*.jsonl*") if p.is_file()]
    return sorted(found)


def open_segments(store: Path) -> list[Path]:
    return sorted(store.glob("**/*.open"))


def segment_bytes(path: Path) -> bytes:
    if path.name.endswith(".gz"):
        with gzip.open(path, "rb") as handle:
            return handle.read()
    return path.read_bytes()


def read_store(store: Path) -> Contents:
    """Every line of every sealed segment; asserts that none is torn or unparseable."""
    contents = Contents()
    for path in sealed_segments(store):
        assert path.name.startswith("part-"), path
        assert path.name.endswith((".jsonl", ".jsonl.gz")), f"the reader glob matches {path}"
        data = segment_bytes(path)
        contents.segments.append(path)
        if not data:
            continue
        assert data.endswith(b"\n"), f"{path}: torn last line {data[-80:]!r}"
        target = contents.dead if path.is_relative_to(store / "dead_letter") else contents.events
        for number, line in enumerate(data[:-1].split(b"\n"), 1):
            try:
                value = json.loads(line)
            except ValueError as exc:
                raise AssertionError(
                    f"{path}:{number}: torn or broken line {line[:120]!r}"
                ) from exc
            target.append(Record(path, line, value))
    return contents


def raw_of(dead: dict[str, Any]) -> bytes:
    if "raw" in dead:
        return str(dead["raw"]).encode("utf-8", "surrogatepass")
    return base64.b64decode(dead["raw_base64"])


def partition_fields(path: Path) -> dict[str, str]:
    return dict(part.split("=", 1) for part in path.parent.parts if "=" in part)


def check_no_duplicates(contents: Contents) -> Counter[int]:
    """Counts by sequence number; asserts no line (and no id) is there twice."""
    ids = Counter(r.value["id"] for r in contents.events + contents.dead)
    twice = [i for i, n in ids.items() if n > 1]
    assert not twice, f"ids stored twice: {twice[:5]}"
    seqs: Counter[int] = Counter()
    for record in contents.events:
        seqs[seq_of(record.value["payload"]["query_id"].encode())] += 1
    for record in contents.dead:
        if record.value["reason"] == "torn_write":
            continue  # checked separately: it holds a fragment, not a line
        seqs[seq_of(raw_of(record.value))] += 1
    dups = [s for s, n in seqs.items() if n > 1]
    assert not dups, f"lines stored twice: {sorted(dups)[:10]}"
    return seqs


def assert_exactly_once(store: Path, lines: Sequence[Line]) -> Contents:
    """Each input line is in the store exactly once: as an envelope whose payload bytes are the
    input's, in the partition of its contract, or as a dead letter holding its exact bytes."""
    contents = read_store(store)
    check_no_duplicates(contents)
    by_seq = {line.seq: line for line in lines}
    found: dict[int, str] = {}
    for record in contents.events:
        envelope = record.value
        seq = seq_of(envelope["payload"]["query_id"].encode())
        line = by_seq.get(seq)
        assert line is not None, f"stored an event that was never sent: {seq}"
        assert line.valid, f"line {seq} ({line.reason}) was stored as valid"
        assert (envelope["contract"], envelope["version"]) == (line.contract, line.version)
        parts = partition_fields(record.path)
        assert parts == {
            "contract": envelope["contract"],
            "version": str(envelope["version"]),
            "dt": envelope["received_at"][:10],
        }, record.path
        assert record.data.endswith(b'"payload":' + payload_bytes(line.data) + b"}")
        found[seq] = "event"
    for record in contents.dead:
        dead = record.value
        if dead["reason"] == "torn_write":
            continue
        raw = raw_of(dead)
        seq = seq_of(raw)
        line = by_seq.get(seq)
        assert line is not None, f"dead-lettered a line that was never sent: {seq}"
        assert raw == line.data, f"dead letter {seq} does not hold the line's exact bytes"
        assert not line.valid, f"valid line {seq} was dead-lettered: {dead['errors']}"
        assert dead["reason"] == line.reason, (seq, dead["reason"], line.reason)
        assert partition_fields(record.path) == {"dt": dead["received_at"][:10]}
        found[seq] = "dead"
    missing = sorted(set(by_seq) - set(found))
    assert not missing, f"{len(missing)} lines lost, e.g. {missing[:10]}"
    return contents


def payload_bytes(line: bytes) -> bytes:
    """The payload of a routed line written by ``_routed``: everything after ``"payload": ``."""
    head = b'"payload": '
    return line[line.index(head) + len(head) : -1]


# -- killing -------------------------------------------------------------------------------


@contextlib.contextmanager
def reaped(proc: subprocess.Popen[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    """Kill ``proc`` on the way out if a failed assertion left it running."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        proc.wait()


def wait_for_writer(store: Path, proc: subprocess.Popen[bytes], timeout: float = 20) -> bool:
    """Wait until ``proc`` holds a writer lock in ``store`` (it is past start-up and recovery)."""
    writers = store / "_logkit" / "writers"
    mark = f"-{proc.pid}-"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if any(mark in name and name.endswith(".lock") for name in os.listdir(writers)):
                return True
        except FileNotFoundError:
            pass
        time.sleep(0.005)
    return False


class SealedWatch:
    """Reads sealed segments as they appear (a sealed segment never changes) and asserts, each
    time, that no line is torn and no line is there twice."""

    def __init__(self, store: Path) -> None:
        self.store = store
        self.seen: dict[Path, list[int]] = {}

    def check(self) -> None:
        for path in sealed_segments(self.store):
            if path in self.seen:
                continue
            data = segment_bytes(path)
            assert not data or data.endswith(b"\n"), f"{path}: torn last line"
            seqs = []
            for line in data.splitlines():
                assert line.startswith(b'{"id":"'), f"{path}: {line!r}"
                assert line.endswith(b"}"), f"{path}: {line!r}"
                if b'"reason":"torn_write"' not in line:
                    seqs.append(seq_of(line))
            self.seen[path] = seqs
        counts = Counter(seq for seqs in self.seen.values() for seq in seqs)
        twice = sorted(seq for seq, n in counts.items() if n > 1)
        assert not twice, f"lines stored twice: {twice[:10]}"


def kill_until_done(
    args: Sequence[str | Path],
    store: Path,
    rng: random.Random,
    kills: int,
    *,
    watch: SealedWatch | None = None,
) -> tuple[int, subprocess.CompletedProcess[bytes]]:
    """Run ``logkit *args`` and SIGKILL it at a random moment, up to ``kills`` times, re-running
    the same command after each kill; then let a run finish. Returns the kills that hit a live
    process and the finishing run. With ``watch``, the sealed segments are checked after every
    kill: no torn line and no line twice, whatever the moment.

    The moment is drawn three ways: any time after the start (start-up, recovery of the last
    victim), any time in the first 0.2 s after the writer took its lock, or just after the
    writer's first append shows (mid-block: syncs, checkpoints, sealing)."""
    done = 0
    attempts = 0
    while True:
        proc = subprocess.Popen(
            [LOGKIT, *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env(),
        )
        if done < kills and attempts < kills * 3:
            attempts += 1
            how = rng.random()
            if how < 0.2:
                time.sleep(rng.uniform(0.0, 0.6))
            elif how < 0.6:
                wait_for_writer(store, proc)
                time.sleep(rng.uniform(0.0, 0.2))
            else:
                wait_for_append(store, proc)
                time.sleep(rng.uniform(0.0, 0.05))
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
                done += 1
                if watch is not None:
                    watch.check()
                continue
        out, err = proc.communicate(timeout=120)
        return done, subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def wait_for_append(store: Path, proc: subprocess.Popen[bytes], timeout: float = 20) -> bool:
    """Wait until a segment of ``proc``'s writer holds data."""
    if not wait_for_writer(store, proc, timeout):
        return False
    deadline = time.monotonic() + timeout
    mark = f"-{proc.pid}-"
    while time.monotonic() < deadline and proc.poll() is None:
        for path in store.glob("*/**/.part-*.open"):
            try:
                if mark in path.name and path.stat().st_size:
                    return True
            except FileNotFoundError:
                pass
        time.sleep(0.005)
    return False
