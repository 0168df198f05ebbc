"""``logkit tail``: the newest events across partitions, filters, dead letters, and ``--follow``
across rotations."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from storekit import LOGKIT, SCHEMAS, env, logkit, read_store, reaped, seq_id

from logkit.commands.tail import TailOptions, tail
from logkit.store import layout
from logkit.store.writer import StoreWriter, WriterOptions

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _line(n: int) -> bytes:
    """Event ``n``: a search or a click of one of three users."""
    user = f"u_user{n % 3}"
    if n % 4 == 3:
        payload = {
            "user_id": user,
            "query_id": seq_id(n),
            "document_id": f"doc_{n}",
            "position": n % 5,
            "clicked_at": "2026-12-05T10:15:09.004Z",
        }
        return json.dumps({"contract": "click", "version": 1, "payload": payload}).encode()
    payload = {
        "user_id": user,
        "query_id": seq_id(n),
        "raw_query": f"query {n}",
        "results": [{"document_id": f"doc_{n}", "position": 0, "score": 1.5}],
    }
    version = 1 if n % 4 == 1 else 2
    return json.dumps({"contract": "search", "version": version, "payload": payload}).encode()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three ingests, one after the other: events of three partitions, and dead letters."""
    folder = tmp_path_factory.mktemp("tail")
    root = folder / "store"
    for part in range(3):
        lines = [_line(n) for n in range(part * 40, part * 40 + 40)]
        source = folder / f"in{part}.jsonl"
        source.write_bytes(b"".join(x + b"\n" for x in lines))
        assert logkit("ingest", source, "--store", root).returncode == 0
        time.sleep(0.05)
    assert logkit("ingest", EXAMPLES / "events.jsonl", "--store", root).returncode == 0
    return root


def _all(store: Path) -> list[dict[str, Any]]:
    return sorted((r.value for r in read_store(store).events), key=lambda e: e["received_at"])


def _tail_json(store: Path, *args: str) -> list[dict[str, Any]]:
    done = logkit("tail", "--store", store, "--format", "json", *args)
    assert done.returncode == 0, done.stderr.decode()
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_n_newest_across_partitions_in_received_at_order(store: Path) -> None:
    everything = _all(store)
    shown = _tail_json(store, "-n", "9")
    assert shown == everything[-9:]
    assert len({(e["contract"], e["version"]) for e in shown}) == 3
    schema = json.loads((SCHEMAS / "envelope.schema.json").read_text())
    for envelope in shown:
        jsonschema.validate(envelope, schema)
    assert _tail_json(store, "-n", "100000") == everything


def test_contract_filter(store: Path) -> None:
    everything = _all(store)
    assert (
        _tail_json(store, "search@1", "-n", "4")
        == [e for e in everything if (e["contract"], e["version"]) == ("search", 1)][-4:]
    )
    clicks = _tail_json(store, "click", "-n", "3")
    assert clicks == [e for e in everything if e["contract"] == "click"][-3:]


def test_since(store: Path) -> None:
    everything = _all(store)
    moment = everything[-6]["received_at"]
    assert _tail_json(store, "--since", moment, "-n", "100") == [
        e for e in everything if e["received_at"] >= moment
    ]
    assert len(_tail_json(store, "--since", "1h", "-n", "1000")) == len(everything)
    assert _tail_json(store, "--since", "2999-01-01T00:00:00Z") == []
    bad = logkit("tail", "--store", store, "--since", "yesterday")
    assert bad.returncode == 2
    assert b"--since" in bad.stderr


def test_where(store: Path) -> None:
    everything = _all(store)
    assert (
        _tail_json(store, "--where", "/user_id=u_user1", "-n", "5")
        == [e for e in everything if e["payload"]["user_id"] == "u_user1"][-5:]
    )
    both = _tail_json(store, "--where", "/user_id=u_user2", "--where", "/position=3", "-n", "50")
    assert both == [
        e
        for e in everything
        if e["payload"]["user_id"] == "u_user2" and e["payload"].get("position") == 3
    ]
    assert both


def test_dead_letters_show_reason_and_errors(store: Path) -> None:
    dead = _tail_json(store, "--dead-letter", "-n", "100")
    assert [d["reason"] for d in dead] == ["invalid"] * 6
    minimum = next(d for d in dead if d["errors"][0]["rule"] == "minimum")
    assert minimum["errors"][0]["path"] == "/position"

    pretty = logkit("tail", "--store", store, "--dead-letter", "-n", "100")
    assert pretty.returncode == 0
    text = pretty.stdout.decode()
    assert text.count(" invalid ") == 6
    assert "/position" in text
    assert "[minimum]" in text
    assert "-1 is less than the minimum of 0" in text
    assert '"position": -1' in text  # the raw line


def _follow(options: TailOptions) -> threading.Thread:
    thread = threading.Thread(target=tail, args=(options,))
    thread.start()
    time.sleep(0.5)  # it has listed the store and printed the newest lines
    return thread


def _envelope(n: int) -> bytes:
    return (
        f'{{"id":"0190c6d2-0000-7000-8000-{n:012d}","received_at":"2026-12-03T10:00:{n:02d}.0Z",'
        f'"contract":"search","version":2,"payload":{{"n":{n}}}}}\n'
    ).encode()


def test_follow_prints_new_events_once_across_rotations(tmp_path: Path) -> None:
    root = tmp_path / "store"
    folder = layout.event_partition(root, "search", 2, "2026-12-03")
    first = StoreWriter(root)
    first.append(folder, _envelope(0), 1)  # there before tail starts: not followed
    out = io.StringIO()
    thread = _follow(
        TailOptions(
            root, count=0, follow=True, follow_for=3.0, poll_seconds=0.05, fmt="json", out=out
        )
    )
    first.append(folder, _envelope(1) + _envelope(2), 2)
    time.sleep(0.3)
    first.append(folder, _envelope(3)[:40], 0)  # half a line: not printed yet
    time.sleep(0.3)
    first.append(folder, _envelope(3)[40:], 1)
    first.close()  # sealed: renamed while followed
    time.sleep(0.3)
    second = StoreWriter(root, WriterOptions(gzip=True))
    second.append(folder, _envelope(4), 1)
    time.sleep(0.3)
    second.append(folder, _envelope(5), 1)
    second.close()  # sealed by gzip: a new file replaces the open one
    third = StoreWriter(root)
    third.append(folder, _envelope(6), 1)  # still open when tail stops
    thread.join()
    third.close()

    printed = [json.loads(line)["payload"]["n"] for line in out.getvalue().splitlines()]
    assert printed == [1, 2, 3, 4, 5, 6]


def test_follow_command_sees_an_ingest_that_rotates(tmp_path: Path) -> None:
    """The real commands: ``tail --follow`` while ``ingest`` writes segments that it seals
    every half second; SIGINT ends tail with 130."""
    root = tmp_path / "store"
    root.mkdir()
    follower = subprocess.Popen(
        [LOGKIT, "tail", "--store", str(root), "--follow", "-n", "0", "--format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env(),
    )
    with reaped(follower):
        time.sleep(1.5)  # started, listed the empty store
        producer = subprocess.Popen(
            [LOGKIT, "ingest", "--store", str(root), "--segment-seconds", "0.5"],
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env(),
        )
        assert producer.stdin is not None
        for part in range(4):
            producer.stdin.write(
                b"".join(_line(n) + b"\n" for n in range(part * 25, part * 25 + 25))
            )
            producer.stdin.flush()
            time.sleep(0.7)
        _, producer_err = producer.communicate(timeout=30)  # closes stdin: the stream ends
        assert producer.returncode == 0, producer_err.decode()
        time.sleep(1.5)  # tail polls every half second
        follower.send_signal(signal.SIGINT)
        out, _err = follower.communicate(timeout=30)

    assert follower.returncode == 130
    segments = read_store(root).segments
    assert len(segments) > 3  # it rotated while followed
    printed = [json.loads(line)["id"] for line in out.splitlines()]
    stored = [e["id"] for e in _all(root)]
    assert sorted(printed) == sorted(stored)
    assert len(printed) == len(set(printed)) == 100


def test_follow_ends_cleanly_on_sigterm(tmp_path: Path) -> None:
    """systemd and ``kill`` stop a follower with SIGTERM: exit 143 and one line, no
    traceback, as PRODUCT.md says."""
    root = tmp_path / "store"
    root.mkdir()
    follower = subprocess.Popen(
        [LOGKIT, "tail", "--store", str(root), "--follow", "-n", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env(),
    )
    with reaped(follower):
        time.sleep(1.5)  # following
        assert follower.poll() is None
        follower.send_signal(signal.SIGTERM)
        _out, err = follower.communicate(timeout=30)
    assert follower.returncode == 143
    assert err.decode() == "logkit: terminated\n"


def test_with_workers_ids_and_stamps_increase_in_every_segment(tmp_path: Path) -> None:
    """Blocks are enveloped by several workers at once but written in input order, so their
    stamps must not come from each worker's clock: a segment would then go back in time
    (tail reads a segment from its end and stops at the first older line, missing newer
    ones) and ids would not sort as received_at."""
    root = tmp_path / "store"
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"".join(_line(n) + b"\n" for n in range(40_000)))  # 6 blocks
    done = logkit("ingest", source, "--store", root, "--workers", "2")
    assert done.returncode == 0, done.stderr.decode()
    contents = read_store(root)
    for segment in contents.segments:
        records = [r.value for r in contents.events if r.path == segment]
        stamps = [r["received_at"] for r in records]
        assert stamps == sorted(stamps), segment
        assert [r["id"] for r in records] == sorted(r["id"] for r in records), segment
    everything = _all(root)
    assert len({e["received_at"] for e in everything}) == len(everything)
    assert _tail_json(root, "-n", "20") == everything[-20:]
