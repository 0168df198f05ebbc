"""Helpers of the service tests: a real ``logkit serve`` in a subprocess on a free loopback
port, events, and reading the store back."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_REGISTRY = REPO_ROOT / "registry"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 40.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def logkit_command() -> list[str]:
    script = Path(sys.executable).parent / "logkit"
    return [str(script)] if script.exists() else [sys.executable, "-m", "logkit"]


@dataclass
class Server:
    """One ``logkit serve`` process."""

    store: Path
    args: list[str] = field(default_factory=list)
    registry: Path = EXAMPLE_REGISTRY
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        self.port = self.port or free_port()
        self.log = self.store.parent / f"serve-{self.port}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOGKIT_")}
        command = [
            *logkit_command(),
            "serve",
            "--port",
            str(self.port),
            "--store",
            str(self.store),
            "--registry",
            str(self.registry),
            *self.args,
        ]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT, env=env
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"logkit serve exited {self.process.returncode}:\n{self.output()}"
                )
            try:
                if get(self.port, "/")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError(
            f"logkit serve did not answer within {START_TIMEOUT} s:\n{self.output()}"
        )

    def terminate(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        assert self.process is not None
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            raise AssertionError(
                f"logkit serve did not stop in {timeout} s:\n{self.output()}"
            ) from None

    def stop(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.terminate()
        return self.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log and self.log.exists() else ""

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=kwargs.pop("timeout", 10), **kwargs)


def post(
    port: int, path: str, body: bytes, content_type: str = "application/json"
) -> tuple[int, bytes]:
    """One POST on a new connection (http.client: cheap, where httpx.Client takes 0.1 s)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", path, body, {"content-type": content_type})
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def get(port: int, path: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def read_store(store: Path, part: str = "events") -> list[dict[str, Any]]:
    """Every record in the store's sealed and open segments."""
    import gzip
    import json

    records = []
    for path in sorted((store / part).rglob("*")):
        if not path.is_file() or "part-" not in path.name:
            continue
        data = (
            gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
        )
        records.extend(json.loads(line) for line in data.splitlines() if line)
    return records


def sealed_only(store: Path) -> bool:
    """No segment of the store is still open."""
    return not [p for p in store.rglob("*") if p.is_file() and ".open" in p.name]


#: A one-field contract whose events carry their sequence number, so that a test can tell
#: exactly which ones arrived (the sink and Kafka tests).
SEQ_CONTRACT = """\
$schema: https://json-schema.org/draft/2020-12/schema
title: A numbered event
description: Events numbered in sequence, so that a test can tell which ones arrived.
x-logkit:
  owner: tests@example.com
type: object
required: [seq]
properties:
  seq:
    type: integer
    description: The event's number in its stream.
"""


def write_seq_registry(root: Path) -> Path:
    """A registry at ``root`` holding ``seq`` version 1 only."""
    (root / "seq").mkdir(parents=True)
    (root / "seq" / "1.yaml").write_text(SEQ_CONTRACT)
    return root


SEARCH = {
    "user_id": "u_7f3k29qx",
    "query_id": "2f85a6a1-598a-4b55-9c8c-137984ad4994",
    "raw_query": "waterproof hiking boots",
    "results": [{"document_id": "doc_51102", "position": 0, "score": 8.91}],
}
CLICK = {
    "user_id": "u_7f3k29qx",
    "query_id": "9723a714-014d-42d2-9772-db832eb6de0e",
    "document_id": "doc_48213",
    "position": 0,
    "clicked_at": "2026-12-03T17:54:41.087Z",
}
