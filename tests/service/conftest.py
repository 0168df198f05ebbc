"""Fixtures: real ``logkit serve`` processes on free loopback ports, and httpx clients.

Servers are started by the fixtures and always stopped by them (SIGTERM, then SIGKILL after a
deadline), so no test leaves a process behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from serving import Server

#: Seconds the shared server gives a client for its headers, then for its body.
CLIENT_TIMEOUT = 2


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server shared by the tests that need no special settings (starting one takes 2 s);
    tests find their own events in its store by id."""
    root = tmp_path_factory.mktemp("serve")
    running = Server(root / "store", ["--client-timeout", str(CLIENT_TIMEOUT)]).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as http:
        yield http


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Any]:
    """Start servers with extra arguments; each is stopped when the test ends."""
    started: list[Server] = []

    def make(*args: str, store: Path | None = None, registry: Path | None = None) -> Server:
        running = Server(store or tmp_path / f"store{len(started)}", list(args))
        if registry is not None:
            running.registry = registry
        started.append(running)
        return running.start()

    yield make
    for running in started:
        running.stop()
