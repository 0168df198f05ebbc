"""Where things live in a store. Only sealed segments end in ``.jsonl`` or ``.jsonl.gz``.

A segment being written is ``.part-<writer>-<seq>.open`` and a gzip being made is
``.part-<writer>-<seq>.gz.tmp``: neither name contains ``.jsonl`` (DuckDB's ``*.jsonl*`` also
matches names that start with a dot), and the leading dot hides them from Spark and pyarrow,
which skip hidden files when they read a folder.
"""

from __future__ import annotations

import os
from pathlib import Path

EVENTS = "events"
DEAD_LETTER = "dead_letter"
STATE = "_logkit"  # writer locks and checkpoints; never matched by the reader globs
OPEN_PREFIX = ".part-"
OPEN_SUFFIX = ".open"
SEALED_SUFFIXES = (".jsonl", ".jsonl.gz")
#: The globs a warehouse tool reads: sealed segments only.
EVENT_GLOB = f"{EVENTS}/**/*.jsonl*"


def event_partition(root: Path, contract: str, version: int, dt: str) -> Path:
    return root / EVENTS / f"contract={contract}" / f"version={version}" / f"dt={dt}"


def dead_letter_partition(root: Path, dt: str) -> Path:
    return root / DEAD_LETTER / f"dt={dt}"


def locks_dir(root: Path) -> Path:
    return root / STATE / "writers"


def checkpoints_dir(root: Path) -> Path:
    return root / STATE / "checkpoints"


def is_sealed(path: Path) -> bool:
    return path.name.endswith(SEALED_SUFFIXES) and path.name.startswith("part-")


def is_open(path: Path) -> bool:
    return path.name.startswith(OPEN_PREFIX) and path.name.endswith(OPEN_SUFFIX)


def open_name(sealed: str) -> str:
    """``part-w-000001.jsonl`` -> ``.part-w-000001.open``, the name while it is written."""
    return "." + sealed.removesuffix(".jsonl") + OPEN_SUFFIX


def sealed_name(opened: str) -> str:
    """``.part-w-000001.open`` -> ``part-w-000001.jsonl``."""
    return opened[1:].removesuffix(OPEN_SUFFIX) + ".jsonl"


def gzip_temp_name(sealed: str) -> str:
    return "." + sealed.removesuffix(".jsonl") + ".gz.tmp"


def open_glob(writer: str) -> str:
    """Every open segment of ``writer``, anywhere under the store."""
    return f"**/{OPEN_PREFIX}{writer}-*{OPEN_SUFFIX}"


def writer_of(path: Path) -> str:
    """The writer id in a segment name ``part-<writer>-<seq>.jsonl...`` or ``.part-...``."""
    stem = path.name.lstrip(".").split(".", 1)[0]
    return stem[len("part-") :].rsplit("-", 1)[0]


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
