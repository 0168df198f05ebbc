"""A real PostgreSQL server for the whole session (see pgserver.py), and a small registry."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from pgserver import PgServer

CONTRACT = """\
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


@pytest.fixture(scope="session")
def pg() -> Iterator[PgServer]:
    server = PgServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def seq_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("registry")
    (root / "seq").mkdir()
    (root / "seq" / "1.yaml").write_text(CONTRACT)
    return root
