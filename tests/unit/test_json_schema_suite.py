"""The official JSON Schema Test Suite (draft 2020-12), run through logkit's own compile path.

The suite lives in ``shared/json-schema-test-suite`` beside the repository root (CI puts a copy
of ``shared/`` there too); ``LOGKIT_JSON_SCHEMA_SUITE`` overrides the location. Its ``remotes/``
folder is served from disk for ``http://localhost:1234/...``: nothing is ever fetched.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from logkit.registry import compile_schema

SUITE = Path(
    os.environ.get("LOGKIT_JSON_SCHEMA_SUITE")
    or Path(__file__).resolve().parents[3] / "shared" / "json-schema-test-suite"
)
TESTS = SUITE / "tests" / "draft2020-12"
REMOTES = SUITE / "remotes"
REMOTE_HOST = "localhost:1234"
# Test schemas without an $id get a base URI that no test or remote uses.
BASE_URI = "file:///json-schema-test-suite/test.json"
# The optional format files whose formats logkit relies on, so they must hold too.
FORMATS = ("date-time", "date", "time", "uuid", "email", "uri", "ipv4", "ipv6", "hostname")

# The required format.json tests say that by default `format` is only an annotation. logkit
# asserts formats on events on purpose, so that file runs with assert_formats=False (the spec's
# default); every other file, and the optional format tests, run with formats asserted.
ANNOTATION_ONLY = ("format",)


def retrieve(uri: str) -> Any:
    """Serve ``remotes/`` for ``http://localhost:1234/<path>``; refuse everything else."""
    parts = urlsplit(uri)
    if parts.scheme != "http" or parts.netloc != REMOTE_HOST:
        raise LookupError(f"the suite harness never fetches {uri!r}")
    path = (REMOTES / parts.path.lstrip("/")).resolve()
    if not path.is_relative_to(REMOTES.resolve()) or not path.is_file():
        raise LookupError(f"no suite remote for {uri!r}")
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


@cache
def _groups(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        groups: list[dict[str, Any]] = json.load(handle)
    return groups


@cache
def _validator(path: Path, index: int) -> Any:
    """One compiled validator per group, shared by the group's tests."""
    schema = _groups(path)[index]["schema"]
    return compile_schema(
        schema,
        base_uri=BASE_URI,
        retrieve=retrieve,
        where=f"{path.name}[{index}]",
        assert_formats=path.stem not in ANNOTATION_ONLY or path.parent.name == "format",
    )


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _cases() -> list[Any]:
    if not TESTS.is_dir():
        # Fail loudly rather than skip: a missing suite must not look like a green run.
        return [pytest.param(None, None, None, id="suite-missing")]
    files = sorted(TESTS.glob("*.json"))
    files += [TESTS / "optional" / "format" / f"{name}.json" for name in FORMATS]
    params = []
    seen: set[str] = set()
    for path in files:
        label = path.relative_to(TESTS).with_suffix("").as_posix()
        for index, group in enumerate(_groups(path)):
            for number, test in enumerate(group["tests"]):
                case_id = (
                    f"{label}::{_shorten(group['description'])}::{_shorten(test['description'])}"
                )
                if case_id in seen:
                    case_id = f"{case_id}#{number}"
                seen.add(case_id)
                params.append(pytest.param(path, index, test, id=case_id))
    return params


@pytest.mark.parametrize(("path", "index", "test"), _cases())
def test_suite(path: Path | None, index: int, test: dict[str, Any]) -> None:
    if path is None:
        pytest.fail(
            f"JSON Schema Test Suite not found at {SUITE}; "
            "set LOGKIT_JSON_SCHEMA_SUITE to its folder"
        )
    validator = _validator(path, index)
    assert validator.is_valid(test["data"]) is test["valid"], test["description"]
