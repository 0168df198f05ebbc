"""Throughput and latency of ``logkit serve``, each beside a baseline measured in the same run.

1. Single events: requests/s and p50/p99 latency of valid ``POST /log/search`` requests (one
   realistic event each) at 64 concurrent keep-alive connections, beside a trivial ``GET /``
   served by the same server, alternating, ``--repeat`` times each (the best run of each is
   kept, so that a noisy machine hurts both alike). Target: POST >= 0.5 x GET.
2. Batches: events/s of ``POST /log`` with JSON lines of routed events, beside ``logkit ingest``
   of the same file into another store, end to end (start-up included). Target: >= 0.5 x.

The load generator runs in its own process on loopback: ``wrk`` when it is installed
(``apt-get install wrk``; a C load generator that costs the server's cores little), otherwise
the asyncio raw-socket client below. Afterwards the store is checked: every event answered 200
is in it. Run from the repository root, with the serve extra installed::

    python bench/serve_bench.py                    # 10 s per run, 2 runs each, 200,000 events
    python bench/serve_bench.py --seconds 5 --repeat 1 --events 50000
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = ROOT / "registry"
CONNECTIONS = 64
TARGET = 0.5

WORDS = [
    "waterproof", "hiking", "boots", "gift", "card", "balance", "red", "dress", "wireless",
    "headphones", "usb", "charger", "laptop", "stand", "running", "shoes", "winter", "jacket",
    "returns", "policy", "coffee", "grinder", "phone", "case",
]  # fmt: skip


def make_event(rng: random.Random) -> dict[str, object]:
    """One valid ``search`` v2 event, shaped like a search service's log."""
    results = [
        {
            "document_id": f"doc_{rng.randrange(100000):05d}",
            "position": position,
            "score": round(rng.uniform(1.0, 20.0), 3),
        }
        for position in range(rng.choice((0, 1, 3, 5, 10, 10)))
    ]
    event: dict[str, object] = {
        "user_id": f"u_{rng.getrandbits(40):010x}",
        "query_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "raw_query": " ".join(rng.choices(WORDS, k=rng.randint(1, 4))),
        "results": results,
    }
    if rng.random() < 0.6:
        event["locale"] = rng.choice(("en", "en-GB", "de-DE", "fr"))
    if rng.random() < 0.3:
        event["page"] = rng.randrange(1, 6)
    return event


# -- the server ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def logkit() -> list[str]:
    script = Path(sys.executable).parent / "logkit"
    return [str(script)] if script.exists() else [sys.executable, "-m", "logkit"]


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    store: Path

    @classmethod
    def start(cls, store: Path, workers: int) -> Server:
        port = free_port()
        process = subprocess.Popen(
            [*logkit(), "serve", "--port", str(port), "--store", str(store), "--registry",
             str(REGISTRY), "--workers", str(workers)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if request(port, "GET", "/")[0] == 200:
                    time.sleep(1.0 if workers > 1 else 0.2)  # let every worker come up
                    return cls(process, port, store)
            except OSError:
                time.sleep(0.1)
        process.kill()
        raise SystemExit("logkit serve did not start")

    def cpu_seconds(self) -> float:
        """CPU time used so far by the server and its worker processes (Linux /proc)."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0.0
        pids = [self.process.pid]
        try:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
            pids += [int(p) for p in children.read_text().split()]
        except OSError:
            pass
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / ticks
        return total

    def measure(self, load: Any, path: str, bodies: list[bytes] | None, seconds: float) -> Load:
        before = self.cpu_seconds()
        result: Load = load(self.port, path, bodies, seconds)
        result.cpu_us = (self.cpu_seconds() - before) / max(result.requests, 1) * 1e6
        return result

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def request(
    port: int, method: str, path: str, body: bytes | None = None, content_type: str = ""
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        headers = {"content-type": content_type} if content_type else {}
        connection.request(method, path, body, headers)
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


# -- load generators -------------------------------------------------------------------------


@dataclass
class Load:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us: float = 0.0  # the server's CPU time per request (user + system)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def run_wrk(port: int, path: str, bodies: list[bytes] | None, seconds: float) -> Load:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        if bodies:
            quoted = ",\n".join(_lua_string(b) for b in bodies)
            script.write(
                f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                f"local bodies = {{\n{quoted}\n}}\nlocal i = 0\n"
                "request = function()\n  i = i % #bodies + 1\n"
                "  return wrk.format(nil, nil, nil, bodies[i])\nend\n"
            )
    try:
        done = subprocess.run(
            ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds:g}s", "--latency", "-s", script.name,
             f"http://127.0.0.1:{port}{path}"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    finally:
        os.unlink(script.name)
    out = done.stdout
    total = int(_find(r"(\d+) requests in", out).group(1))
    elapsed = _wrk_seconds(_find(r"requests in ([\d.]+)(\w+)", out))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return Load(
        total,
        elapsed,
        _wrk_ms(_find(r"50%\s+([\d.]+\w+)", out).group(1)),
        _wrk_ms(_find(r"99%\s+([\d.]+\w+)", out).group(1)),
        (int(errors.group(1)) if errors else 0) + (1 if socket_errors else 0),
    )


def _find(pattern: str, text: str) -> re.Match[str]:
    match = re.search(pattern, text)
    if match is None:
        raise SystemExit(f"unexpected wrk output (no {pattern!r}):\n{text}")
    return match


def _lua_string(data: bytes) -> str:
    return '"' + data.decode().replace("\\", "\\\\").replace('"', '\\"') + '"'


def _wrk_seconds(match: re.Match[str]) -> float:
    value, unit = float(match.group(1)), match.group(2)
    return value * {"s": 1.0, "m": 60.0, "ms": 0.001}.get(unit, 1.0)


def _wrk_ms(text: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s|m)", text)
    assert match is not None, text
    return (
        float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[match.group(2)]
    )


def run_asyncio(port: int, path: str, bodies: list[bytes] | None, seconds: float) -> Load:
    """The fallback load generator, in a child process: 64 keep-alive connections."""
    spec = json.dumps(
        {
            "port": port,
            "path": path,
            "bodies": [b.decode() for b in bodies] if bodies else None,
            "seconds": seconds,
        }
    )
    done = subprocess.run(
        [sys.executable, __file__, "--client", spec], capture_output=True, text=True, check=True
    )
    data = json.loads(done.stdout)
    return Load(**data)


def _client_main(spec_text: str) -> None:
    spec = json.loads(spec_text)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print(json.dumps(asyncio.run(_client(spec))))


async def _client(spec: dict[str, Any]) -> dict[str, float | int]:
    port, path, seconds = int(spec["port"]), str(spec["path"]), float(spec["seconds"])
    raw_bodies: list[str] | None = spec["bodies"]
    if raw_bodies:
        requests = [
            (
                f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body.encode())}\r\n\r\n{body}"
            ).encode()
            for body in raw_bodies
        ]
    else:
        requests = [f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()]
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def connection(offset: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = offset
        while time.perf_counter() < deadline:
            data = requests[i % len(requests)]
            i += 1
            started = time.perf_counter()
            writer.write(data)
            head = await reader.readuntil(b"\r\n\r\n")
            found = re.search(rb"content-length: (\d+)", head.lower())
            length = int(found.group(1)) if found else 0
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if not head.startswith(b"HTTP/1.1 2"):
                errors += 1
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection(n) for n in range(CONNECTIONS)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "errors": errors,
    }


# -- batches ---------------------------------------------------------------------------------


def post_batches(port: int, path: Path, batch_lines: int, threads: int) -> tuple[float, int, int]:
    """Post the file's lines as JSON-lines batches; (seconds, stored, dead-lettered)."""
    batches = list(_batches(path, batch_lines))
    stored = dead = 0
    lock = threading.Lock()
    queue = iter(batches)

    def work() -> None:
        nonlocal stored, dead
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            while True:
                with lock:
                    body = next(queue, None)
                if body is None:
                    return
                connection.request("POST", "/log", body, {"content-type": "application/x-ndjson"})
                answer = connection.getresponse()
                data = json.loads(answer.read())
                if answer.status != 200:
                    raise SystemExit(f"POST /log answered {answer.status}: {data}")
                with lock:
                    stored += data["stored"]
                    dead += data["dead_lettered"]
        finally:
            connection.close()

    started = time.perf_counter()
    pool = [threading.Thread(target=work) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return time.perf_counter() - started, stored, dead


def _batches(path: Path, lines: int) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        chunk: list[bytes] = []
        for line in handle:
            chunk.append(line)
            if len(chunk) == lines:
                yield b"".join(chunk)
                chunk = []
        if chunk:
            yield b"".join(chunk)


def cli_ingest(path: Path, store: Path) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [*logkit(), "ingest", "--store", str(store), "--registry", str(REGISTRY), str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return time.perf_counter() - started, done.stderr.strip().splitlines()[0]


def count_events(store: Path) -> int:
    return sum(
        p.read_bytes().count(b"\n") for p in (store / "events").rglob("*part-*") if p.is_file()
    )


# -- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each load run")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each load")
    parser.add_argument("--events", type=int, default=200_000, help="events in the batch file")
    parser.add_argument("--batch", type=int, default=2000, help="events per POST /log")
    parser.add_argument("--workers", type=int, default=1, help="logkit serve --workers")
    parser.add_argument(
        "--generator", choices=("auto", "wrk", "asyncio"), default="auto", help="load generator"
    )
    parser.add_argument("--client", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        _client_main(args.client)
        return 0
    generator = args.generator
    if generator == "auto":
        generator = "wrk" if shutil.which("wrk") else "asyncio"
    load = run_wrk if generator == "wrk" else run_asyncio

    rng = random.Random(7)
    bodies = [json.dumps(make_event(rng), separators=(",", ":")).encode() for _ in range(200)]
    work = Path(tempfile.mkdtemp(prefix="logkit-serve-bench-"))
    print(
        f"logkit serve --workers {args.workers} (fsync batch), load from {generator} with "
        f"{CONNECTIONS} connections, {args.seconds:g} s x {args.repeat} runs each; "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    try:
        server = Server.start(work / "store", args.workers)
        try:
            load(server.port, "/", None, 2.0)  # warm-up
            warm = load(server.port, "/log/search", bodies[:10], 2.0)
            gets: list[Load] = []
            posts: list[Load] = []
            for _ in range(args.repeat):
                gets.append(server.measure(load, "/", None, args.seconds))
                posts.append(server.measure(load, "/log/search", bodies, args.seconds))
            answered = sum(p.requests - p.errors for p in [warm, *posts])
            events_file = work / "events.jsonl"
            with open(events_file, "wb") as out:
                for _ in range(args.events):
                    routed = {"contract": "search", "version": 2, "payload": make_event(rng)}
                    out.write(json.dumps(routed, separators=(",", ":")).encode() + b"\n")
            before = count_events(server.store)
            batch_seconds, stored, dead = post_batches(server.port, events_file, args.batch, 2)
        finally:
            code = server.stop()
        after = count_events(server.store)
        cli_seconds, cli_summary = cli_ingest(events_file, work / "cli-store")
        cli_stored = count_events(work / "cli-store")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    get = max(gets, key=lambda r: r.rate)
    post = max(posts, key=lambda r: r.rate)
    print(
        f"\n{'single events':<28} {'requests/s':>12} {'p50 ms':>9} {'p99 ms':>9} {'errors':>7} "
        f"{'server CPU/req':>15}"
    )
    for label, result in (("GET / (baseline)", get), ("POST /log/search", post)):
        print(
            f"{label:<28} {result.rate:>12,.0f} {result.p50_ms:>9.2f} {result.p99_ms:>9.2f} "
            f"{result.errors:>7} {result.cpu_us:>12,.0f} us"
        )
    for label, runs in (("  GET / runs", gets), ("  POST runs", posts)):
        print(
            f"{label:<28} " + ", ".join(f"{r.rate:,.0f}/s ({r.cpu_us:,.0f} us CPU)" for r in runs)
        )
    single_ratio = post.rate / get.rate
    cpu_ratio = statistics.median(r.cpu_us for r in gets) / statistics.median(
        r.cpu_us for r in posts
    )
    batch_rate = stored / batch_seconds
    cli_rate = cli_stored / cli_seconds
    batch_ratio = batch_rate / cli_rate
    print(f"\n{'batches':<28} {'events/s':>12} {'events':>9} {'seconds':>9}")
    print(
        f"{'logkit ingest (baseline)':<28} {cli_rate:>12,.0f} {cli_stored:>9,} {cli_seconds:>9.2f}"
    )
    print(
        f"{f'POST /log ({args.batch:,}/batch)':<28} {batch_rate:>12,.0f} {stored:>9,} "
        f"{batch_seconds:>9.2f}"
    )
    print(f"\nsingle events: POST / GET = {single_ratio:.2f}x (target >= {TARGET}x)")
    print(
        f"  by the server's CPU per request (medians, independent of the load generator): "
        f"{cpu_ratio:.2f}x"
    )
    print(f"batches: POST /log / logkit ingest = {batch_ratio:.2f}x (target >= {TARGET}x)")
    problems = []
    if code != 143:
        problems.append(f"logkit serve exited {code} on SIGTERM (expected 143)")
    if post.errors or get.errors or dead:
        problems.append(f"errors: GET {get.errors}, POST {post.errors}, dead-lettered {dead}")
    if after - before != stored or stored != args.events:
        problems.append(f"the store holds {after - before:,} batch events, {stored:,} answered")
    if after < answered + stored:
        problems.append(
            f"the store holds {after:,} events, fewer than the {answered + stored:,} answered"
        )
    if cli_stored != args.events:
        problems.append(f"logkit ingest stored {cli_stored:,}: {cli_summary}")
    for problem in problems:
        print(f"PROBLEM: {problem}")
    print(
        "verdict: "
        + ("ok" if single_ratio >= TARGET and batch_ratio >= TARGET else "below target")
        + (" (with problems)" if problems else "")
    )
    print(
        f"(medians: GET {statistics.median(r.rate for r in gets):,.0f}/s, "
        f"POST {statistics.median(r.rate for r in posts):,.0f}/s)"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
