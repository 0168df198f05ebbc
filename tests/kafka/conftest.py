"""Fixtures for the Kafka tests: one Tansu broker for the session, and a broker of its own for a
test that kills it. The store tests' helpers (inputs with sequence numbers, the store oracle)
are shared through ``tests/store/storekit.py``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "store"))

from kafkakit import Broker, running_broker


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    log = tmp_path_factory.mktemp("tansu") / "broker.log"
    with running_broker(log) as started:
        yield started


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Broker]:
    """A broker only this test uses (it may kill and restart it)."""
    with running_broker(tmp_path / "broker.log") as started:
        yield started
