"""A real PostgreSQL server for the whole session (see pgserver.py), and a small registry."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "service"))

from pgserver import PgServer
from serving import write_seq_registry


@pytest.fixture(scope="session")
def pg() -> Iterator[PgServer]:
    server = PgServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def seq_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_seq_registry(tmp_path_factory.mktemp("registries") / "registry")
