"""Concurrent writers, several workers, SIGTERM under load, rotation and recovery: nothing that
was answered 200 is ever missing from the store, and nothing is stored twice."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from serving import CLICK, Server, post, read_store, sealed_only

JSON = {"content-type": "application/json"}


def event(tag: str) -> dict[str, Any]:
    return {**CLICK, "user_id": tag}


def post_many(
    server: Server, threads: int, per_thread: int, fresh: bool = False
) -> list[tuple[str, str]]:
    """(user_id, envelope id) of every event answered 200, posted from several threads (with a
    new connection for each event when ``fresh``)."""
    accepted: list[tuple[str, str]] = []
    failures: list[str] = []
    lock = threading.Lock()

    def work(worker: int) -> None:
        with server.client() as client:
            for i in range(per_thread):
                tag = f"t{worker}-{i}"
                body = json.dumps(event(tag)).encode()
                if fresh:
                    status, text = post(server.port, "/log/click", body)
                else:
                    answer = client.post("/log/click", content=body, headers=JSON)
                    status, text = answer.status_code, answer.content
                with lock:
                    if status == 200:
                        accepted.append((tag, json.loads(text)["id"]))
                    else:
                        failures.append(text.decode())

    pool = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(60)
    assert not failures, failures[:3]
    return accepted


def assert_exactly_once(server: Server, accepted: list[tuple[str, str]]) -> list[dict[str, Any]]:
    records = read_store(server.store)
    counts = Counter(r["id"] for r in records)
    by_id = {r["id"]: r for r in records}
    for tag, uid in accepted:
        assert counts[uid] == 1, f"{uid} stored {counts[uid]} times"
        assert by_id[uid]["payload"]["user_id"] == tag
    assert len(set(counts)) == len(records), "an envelope id is stored twice"
    return records


def test_concurrent_writers_store_every_event_exactly_once(server: Server) -> None:
    accepted = post_many(server, threads=8, per_thread=40)
    assert len(accepted) == 320
    assert_exactly_once(server, accepted)


def test_several_workers_and_sigterm_under_load(make_server: Callable[..., Server]) -> None:
    """Two workers write one store (metrics summed over both); SIGTERM in the middle of a load
    stops the service cleanly and every event answered 200 is in the store, once."""
    server = make_server("--workers", "2")
    deadline = time.monotonic() + 15
    while server.output().count("as writer") < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    first = post_many(server, threads=4, per_thread=25, fresh=True)
    writers = {tuple(p.name.split("-")[1:4]) for p in (server.store / "events").rglob("*part-*")}
    assert len(writers) == 2, f"expected both workers to write, found {writers}"
    with server.client() as client:
        metrics = client.get("/metrics").text
    line = next(
        x for x in metrics.splitlines()
        if x.startswith('logkit_events_total{contract="click",outcome="stored",version="1"}')
    )  # fmt: skip
    assert float(line.rsplit(" ", 1)[1]) == len(first), "metrics are summed over workers"

    accepted: list[tuple[str, str]] = list(first)
    refused = Counter[str]()
    lock = threading.Lock()
    stop = threading.Event()

    def work(worker: int) -> None:
        i = 0
        while not stop.is_set() and i < 5000:
            i += 1
            tag = f"t{worker}-{i}"
            # A fresh connection now and then, so that some requests arrive mid-shutdown.
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            try:
                for _ in range(5):
                    connection.request("POST", "/log/click", json.dumps(event(tag)), JSON)
                    answer = connection.getresponse()
                    text = answer.read()
                    with lock:
                        if answer.status == 200:
                            accepted.append((tag, json.loads(text)["id"]))
                        else:
                            refused[str(answer.status)] += 1
                    i += 1
                    tag = f"t{worker}-{i}"
            except (OSError, http.client.HTTPException) as exc:
                with lock:
                    refused[type(exc).__name__] += 1
                if server.process is not None and server.process.poll() is not None:
                    return
                time.sleep(0.01)
            finally:
                connection.close()

    pool = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in pool:
        thread.start()
    time.sleep(1.0)
    before = len(accepted) - len(first)
    server.terminate()
    code = server.wait()
    stop.set()
    for thread in pool:
        thread.join(30)
    assert before > 20, "the load was running when SIGTERM came"
    assert code == 143, server.output()
    assert sealed_only(server.store)
    assert_exactly_once(server, accepted)
    assert set(refused) <= {
        "ConnectionRefusedError", "RemoteDisconnected", "ConnectionResetError", "BrokenPipeError",
        "503",
    }, refused  # fmt: skip


def test_sigterm_drains_a_request_in_flight(make_server: Callable[..., Server]) -> None:
    server = make_server()
    body = json.dumps(event("in-flight")).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        raw.sendall(
            b"POST /log/click HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[:10]
        )
        time.sleep(0.3)
        server.terminate()
        time.sleep(0.5)
        assert server.process is not None
        assert server.process.poll() is None, "it waits for the request in flight"
        raw.sendall(body[10:])
        answer = b""
        while chunk := raw.recv(65536):  # the server closes the connection: it is stopping
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer
    uid = json.loads(answer.split(b"\r\n\r\n", 1)[1])["id"]
    assert server.wait() == 143
    assert sealed_only(server.store)
    assert [r["payload"]["user_id"] for r in read_store(server.store) if r["id"] == uid] == [
        "in-flight"
    ]


def test_fsync_always_rotation_and_recovery(make_server: Callable[..., Server]) -> None:
    """Under --fsync always events are answered after their fsync; segments older than
    --segment-seconds are sealed while serving; a killed server's open segments are sealed by
    the next one to start on the store."""
    server = make_server("--fsync", "always", "--segment-seconds", "0.5")
    accepted = post_many(server, threads=4, per_thread=10)
    assert_exactly_once(server, accepted)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        sealed = list((server.store / "events").rglob("part-*.jsonl"))
        if sealed:
            break
        time.sleep(0.1)
    assert sealed, "a segment older than --segment-seconds is sealed"
    assert accepted[0][1].encode() in b"".join(p.read_bytes() for p in sealed)

    later = post_many(server, threads=1, per_thread=5)
    assert server.process is not None
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(10)
    assert not sealed_only(server.store)
    again = make_server(store=server.store)
    assert sealed_only(again.store), "the dead writer's segments are sealed at start"
    assert_exactly_once(again, accepted + later)
