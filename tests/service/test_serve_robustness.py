"""Bad requests never crash a worker: stalled and slow clients, broken HTTP, hostile bodies.

The shared server gives clients ``CLIENT_TIMEOUT`` seconds for their headers and again for their
body. Each test ends by checking that the same process still answers and logged no traceback.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from conftest import CLIENT_TIMEOUT
from serving import SEARCH, Server, get, post


@pytest.fixture
def healthy(server: Server) -> Iterator[Server]:
    assert server.process is not None
    pid = server.process.pid
    yield server
    assert server.process.poll() is None, server.output()
    assert server.process.pid == pid
    assert get(server.port, "/") == (200, b'{"ok":true}')
    assert "Traceback" not in server.output(), server.output()


def connect(server: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=CLIENT_TIMEOUT + 5)


def read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes the connection."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def read_response(sock: socket.socket) -> bytes:
    """One response (its Content-Length says where it ends), or b"" if the server hung up."""
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            (int(line.split(b":")[1]) for line in head.lower().split(b"\r\n")
             if line.startswith(b"content-length:")),
            0,
        )  # fmt: skip
        while len(body) < length and (chunk := sock.recv(65536)):
            body += chunk
        return head + b"\r\n\r\n" + body
    except ConnectionResetError:
        return data


def test_a_client_that_sends_nothing_is_disconnected(healthy: Server) -> None:
    with connect(healthy) as sock:
        started = time.monotonic()
        assert read_all(sock) == b""
        assert time.monotonic() - started < CLIENT_TIMEOUT + 3


def test_headers_sent_too_slowly_are_cut_off(healthy: Server) -> None:
    with connect(healthy) as sock:
        started = time.monotonic()
        sock.sendall(b"POST /log/search HTTP/1.1\r\nHost: x\r\n")
        for _ in range(CLIENT_TIMEOUT * 4):
            time.sleep(0.5)
            try:
                sock.sendall(b"X-Slow: 1\r\n")  # a byte now and then does not keep it open
            except OSError:
                break
        assert read_all(sock) == b""
        assert time.monotonic() - started < CLIENT_TIMEOUT + 3


def test_a_body_that_stalls_is_408(healthy: Server) -> None:
    with connect(healthy) as sock:
        sock.sendall(
            b"POST /log/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"user_id":'
        )
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b'"reason":"timeout"' in answer


def test_a_client_that_goes_away_mid_body(healthy: Server) -> None:
    with connect(healthy) as sock:
        sock.sendall(
            b"POST /log/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000\r\n\r\n{"user_id":'
        )
    time.sleep(0.2)


def test_idle_connections_do_not_block_others(healthy: Server) -> None:
    idle = [connect(healthy) for _ in range(50)]
    try:
        status, _ = post(healthy.port, "/log/search", json.dumps(SEARCH).encode())
        assert status == 200
    finally:
        for sock in idle:
            sock.close()


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\r\n\r\n",
        b"POST /log/search HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n",
        b"POST /log/search HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        b"POST /log/search HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Many: 1\r\n" * 20_000 + b"\r\n",
        b"POST /log/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 4\r\n\r\n\xff\xfe\x00\x01",
    ],
    ids=["garbage", "length-word", "length-negative", "bad-chunk", "long-url", "big-header",
         "many-headers", "binary-body"],
)  # fmt: skip
def test_broken_http_is_refused(healthy: Server, request_bytes: bytes) -> None:
    with connect(healthy) as sock:
        try:
            sock.sendall(request_bytes)
        except OSError:
            return  # refused before it was all sent
        answer = read_response(sock)
    assert answer == b"" or answer.startswith((b"HTTP/1.1 4", b"HTTP/1.0 4")), answer[:200]


def test_a_huge_body_is_refused_without_being_read(healthy: Server) -> None:
    with connect(healthy) as sock:
        sock.sendall(
            b"POST /log HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
            b"Content-Length: 10000000000\r\n\r\n"
        )
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 413"), answer
    assert b"connection: close" in answer.lower()


def test_a_batch_of_hostile_lines_is_answered_line_by_line(
    healthy: Server, client: httpx.Client
) -> None:
    lines = [
        b"[" * 100_000,
        b'{"contract": "search", "payload": ' + b"[" * 70 + b"]" * 70 + b"}",
        b'{"contract": "search", "payload": {"user_id": "\xc3\x28"}}',
        b'{"contract": "search", "payload": {}, "payload": {}}',
        b'{"contract": 1e400, "payload": {}}',
        b'{"contract": "search", "version": 99999999999999999999999, "payload": {}}',
        b'{"contract": "search", "version": true, "payload": {}}',
        b"\xef\xbb\xbf{}",
        b'"just a string"',
        b'{"contract": "search", "payload": ' + json.dumps(SEARCH).encode() + b"}",
    ]
    answer = client.post(
        "/log", content=b"\n".join(lines), headers={"content-type": "application/x-ndjson"}
    )
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["line"] for r in results] == list(range(1, 11))
    assert [r["status"] for r in results][-1] == 200
    assert all(r["status"] >= 400 for r in results[:-1]), results
    assert results[0]["reason"] == "too_deep"
    assert results[1]["reason"] == "too_deep"
    assert results[2]["reason"] == "invalid_utf8"
    assert results[3]["reason"] == "duplicate_key"
