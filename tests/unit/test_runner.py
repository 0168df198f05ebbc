"""Sources -> ordered results: worker processes find exactly what one process finds.

The files here are made of realistic search events with a few bad lines at known line numbers,
cut into many small blocks (and pieces), so every boundary the parallel path adds is crossed.
"""

from __future__ import annotations

import io
import json
import math
import random
import sys
from pathlib import Path
from typing import Any

import pytest

from logkit import inputs, parse, runner, validation
from logkit.errors import InputError
from logkit.parse import Limits, decode
from logkit.registry import Registry
from logkit.validation import BlockResult, Checker

MAX_LINE_BYTES = 2_000


def event(number: int) -> dict[str, Any]:
    return {
        "user_id": f"u_{number:06d}",
        "query_id": f"2f85a6a1-598a-4b55-9c8c-{number:012d}",
        "raw_query": "waterproof boots" if number % 3 else 'say "hi" \\ é',
        "results": [
            {"document_id": f"doc_{number + k}", "position": k, "score": 10.5 - k}
            for k in range(number % 7)
        ],
    }


def compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


# The bad lines, by line number, with the reason logkit must give for each.
BAD = {
    5: (b'{"user_id": "u_1", "query_id": ', "malformed_json"),
    17: (compact({k: v for k, v in event(17).items() if k != "results"}), "invalid"),
    100: (compact({**event(100), "raw_query": "x" * 5_000}), "too_large"),
    150: (
        b'{"user_id":"a","user_id":"b","query_id":"x","raw_query":"","results":[]}',
        "duplicate_key",
    ),
    200: (compact({**event(200), "raw_query": [[[[[[[[[[["deep"]]]]]]]]]]]}), "too_deep"),
    201: (b"[1", "malformed_json"),
    202: (b"2]", "malformed_json"),
    203: (b'{"a":1} {"b":2}', "malformed_json"),
    250: (b"\xef\xbb\xbf" + compact(event(250)), "malformed_json"),
}
BLANK = {42, 43, 299}
LINES = 300


def write_events(path: Path, newline: bytes = b"\r\n") -> None:
    lines = []
    for number in range(1, LINES + 1):
        if number in BAD:
            lines.append(BAD[number][0])
        elif number in BLANK:
            lines.append(b"" if number != 43 else b"   ")
        else:
            lines.append(compact(event(number)))
    path.write_bytes(newline.join(lines) + newline)


def run(
    path: Path | None, workers: int, monkeypatch: pytest.MonkeyPatch, data: bytes = b""
) -> tuple[int, list[tuple[Any, ...]]]:
    """(valid events, failures as plain tuples) of checking one file (or stdin)."""
    registry = Registry.load(Path(__file__).resolve().parents[2] / "registry")
    contract = registry.get("search@2")
    limits = Limits(max_line_bytes=MAX_LINE_BYTES, max_depth=8)
    checker = Checker(registry, contract, limits)
    job = runner.Job(registry.root, "search@2", limits.max_line_bytes, limits.max_depth)
    if path is None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
        source = inputs.Source("<stdin>", None, "jsonl")
    else:
        source = inputs.discover([str(path)])[0]
    valid, failures = 0, []
    results: list[BlockResult] = [r for _, r in runner.results(checker, job, [source], workers)]
    for result in results:
        valid += result.valid
        failures.extend(
            (f.source, f.line, f.reason, [(i.path, i.rule, i.message) for i in f.issues], f.label)
            for f in result.failures
        )
    return valid, failures


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of ~1 KiB and pieces of ~200 bytes: many boundaries to get wrong."""
    monkeypatch.setattr(inputs, "BLOCK_BYTES", 1024)
    monkeypatch.setattr(parse, "PIECE_BYTES", 200)


@pytest.mark.usefixtures("small_blocks")
@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_workers_find_what_one_process_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, newline: bytes
) -> None:
    path = tmp_path / "events.jsonl"
    write_events(path, newline)
    alone = run(path, 1, monkeypatch)
    together = run(path, 2, monkeypatch)
    assert together == alone
    valid, failures = alone
    assert [(line, reason) for _, line, reason, _, _ in failures] == [
        (line, reason) for line, (_, reason) in sorted(BAD.items())
    ]
    assert valid == LINES - len(BAD) - len(BLANK)
    assert {label for *_, label in failures} == {"search@2"}


@pytest.mark.usefixtures("small_blocks")
def test_workers_find_what_one_process_finds_on_stdin(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "events.jsonl"
    write_events(path)
    data = path.read_bytes()
    alone = run(None, 1, monkeypatch, data)
    together = run(None, 2, monkeypatch, data)
    assert together == alone
    valid, failures = run(path, 1, monkeypatch)
    assert alone == (valid, [("<stdin>", *rest) for _, *rest in failures])


def test_the_block_checker_gives_each_line_the_verdict_of_decode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Lines that read as fewer or more JSON values when taken together than one by one.
    tricky = [
        b"[1",
        b"2]",
        b"3 4",
        b'{"a":[',
        b'{"b":1}]}',
        b'{"a":1}',
        b'{"a":1}{"b":2}',
        b'{"k":1,',
        b'"l":2}',
        b"",
        b'{"a":1,"a":2}',
        b'{"a":"\\u0062","\\u0061":1}',
        b"1",
    ]
    monkeypatch.setattr(parse, "PIECE_BYTES", 1)
    for length in range(1, 5):
        for start in range(len(tricky) - length + 1):
            lines = tricky[start : start + length]
            expected = []
            for index, line in enumerate(lines):
                if line.strip():
                    try:
                        expected.append((index, decode(line)))
                    except parse.ParseProblem as problem:
                        expected.append((index, problem.reason))
            found = []
            for index, item in parse.BlockDecoder(b"\n".join(lines) + b"\n"):
                if isinstance(item, parse.ParseProblem):
                    found.append((index, item.reason))
                else:
                    found.extend(enumerate(item, index))
            assert found == expected, lines


def test_a_line_cut_short_among_good_lines_is_the_only_one_decoded_on_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A torn write runs on into the next line, and msgspec stops there or later: the line cut
    # short is singled out, not the good line where msgspec stopped. Every cut gets the
    # verdicts right; the cuts that leave a line ending as an object does cannot be told from
    # good lines without decoding them.
    good = [compact({"n": n, "tags": ["a", "b"], "payload": {"text": "x" * n}}) for n in range(30)]
    alone: list[bytes] = []
    real_decode = parse.decode

    def counted(data: bytes, limits: Limits = Limits()) -> Any:
        alone.append(data)
        return real_decode(data, limits)

    monkeypatch.setattr(parse, "decode", counted)
    for cut in range(1, len(good[10])):
        lines = [*good[:10], good[10][:cut], *good[11:]]
        alone.clear()
        found = []
        for index, item in parse.BlockDecoder(b"\n".join(lines) + b"\n"):
            found.extend(
                [(index, item.reason)]
                if isinstance(item, parse.ParseProblem)
                else enumerate(item, index)
            )
        expected = [(n, json.loads(line)) for n, line in enumerate(lines) if n != 10]
        assert found == sorted([*expected, (10, "malformed_json")]), cut
        if not good[10][:cut].endswith(b"}"):  # what tells a line cut short from a good one
            assert alone == [good[10][:cut]], cut


CAPS = {
    "flat": (
        {"type": "object", "additionalProperties": False, "properties": {"a": {"type": "string"}}},
        1,
    ),
    "nested": (
        {
            "type": "object",
            "additionalProperties": {
                "type": "array",
                "items": {"$ref": "../_shared/common.yaml#/$defs/point"},
            },
        },
        3,
    ),
    "open": ({"type": "object"}, None),  # any depth is valid
    "recursive": (
        {
            "$ref": "#/$defs/node",
            "$defs": {"node": {"type": "object", "additionalProperties": {"$ref": "#/$defs/node"}}},
        },
        None,
    ),
    "no_items": ({"type": "array"}, None),
    "branches": (
        {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "integer"}}]},
        1,
    ),
}


def caps_registry(root: Path) -> Registry:
    shared = {"$defs": {"point": {"type": "object", "additionalProperties": {"type": "number"}}}}
    (root / "_shared").mkdir(parents=True)
    (root / "_shared" / "common.yaml").write_text(json.dumps(shared))
    for name, (schema, _) in CAPS.items():
        (root / name).mkdir()
        (root / name / "1.json").write_text(
            json.dumps({"$schema": "https://json-schema.org/draft/2020-12/schema", **schema})
        )
    return Registry.load(root)


def test_depth_bounds_of_contracts(tmp_path: Path) -> None:
    registry = caps_registry(tmp_path / "registry")
    found = {name: validation.depth_bound(registry, registry.get(name)) for name in CAPS}
    assert found == {name: cap if cap is not None else math.inf for name, (_, cap) in CAPS.items()}


@pytest.mark.parametrize("workers", [1, 2])
def test_too_deep_is_found_whether_or_not_the_contract_caps_depth(
    tmp_path: Path, workers: int
) -> None:
    registry = caps_registry(tmp_path / "registry")
    deep = compact({"a": [[[[[[["x"]]]]]]]}) + b"\n"  # depth 8
    ok = compact({"a": "x"}) + b"\n"
    path = tmp_path / "events.jsonl"
    path.write_bytes((ok * 50 + deep) * 20)
    for name in ("flat", "open"):  # depth capped at 1; not capped
        checker = Checker(registry, registry.get(name), Limits(max_depth=4))
        job = runner.Job(registry.root, name, 1 << 20, 4)
        results = [
            r for _, r in runner.results(checker, job, inputs.discover([str(path)]), workers)
        ]
        failures = [(f.line, f.reason) for r in results for f in r.failures]
        assert failures == [(51 * k, "too_deep") for k in range(1, 21)], name
        assert sum(r.valid for r in results) == 1000


def test_thousands_of_bad_lines_in_a_row_are_each_reported() -> None:
    # Each bad line is split off the rest of its piece; the rest must be taken in a loop.
    block = b"x\n" * 5_000 + b'{"a":1}\n' + b"[1\n" * 5_000
    decoder = parse.BlockDecoder(block)
    found = list(decoder)
    assert decoder.lines == 10_001
    assert [index for index, _ in found] == list(range(10_001))
    assert found[5_000] == (5_000, [{"a": 1}])


# -- the block readers -------------------------------------------------------------------------


def lines_and_long_line() -> bytes:
    short = [b'{"n":%d}' % n for n in range(40)]
    return b"\n".join([*short[:10], b'{"long":"' + b"x" * 1_000 + b'"}', *short[10:]]) + b"\n"


def test_blocks_number_lines_and_stay_bounded_around_a_long_line() -> None:
    data = lines_and_long_line()
    found = list(inputs.blocks(io.BytesIO(data), 100, "x", block_bytes=64))
    expected_line = 1
    kept = []
    for block in found:
        assert block.first_line == expected_line
        assert len(block.data) <= 64 + 100 + 1
        expected_line += block.data.count(b"\n")
        kept.extend(block.data.split(b"\n")[:-1])
    assert expected_line == 42
    assert kept[10] == data.split(b"\n")[10][:101]  # the long line, cut just over the limit
    assert kept[:10] + kept[11:] == [b'{"n":%d}' % n for n in range(40)]
    # The cut line comes alone, with its real size; every other block is whole lines.
    long_line = len(data.split(b"\n")[10])
    assert [(b.first_line, b.cut_size) for b in found if b.cut_size] == [(11, long_line)]


class _ShortReads(io.BytesIO):
    """A stream whose reads return at most a random number of bytes, as pipes do."""

    def __init__(self, data: bytes, seed: int) -> None:
        super().__init__(data)
        self.rng = random.Random(seed)

    def read1(self, size: int = -1) -> bytes:
        return super().read1(min(size, self.rng.randrange(1, 80)))


@pytest.mark.parametrize("seed", range(40))
def test_blocks_hold_every_line_whole_or_cut_whatever_the_reads(seed: int) -> None:
    rng = random.Random(seed)
    limit = 30
    lines = [b"x" * rng.choice([0, 1, 5, 29, 30, 31, 45, 100]) for _ in range(rng.randrange(1, 40))]
    data = b"\n".join(lines) + rng.choice([b"", b"\n"])
    stream = _ShortReads(inputs.BOM * rng.randrange(2) + data, seed)
    blocks = list(inputs.blocks(stream, limit, "x", block_bytes=rng.choice([1, 7, 64, 1000])))
    got: list[bytes] = []
    number = 1
    for block in blocks:
        assert block.first_line == number
        if block.cut_size:
            assert block.data.removesuffix(b"\n") == b"x" * (limit + 1)
            got.append(b"x" * block.cut_size)  # the line it was cut from
        else:
            got.extend(block.data.removesuffix(b"\n").split(b"\n"))
        number = block.last_line + 1
        end = len(stream.getvalue()) - len(data)  # the BOM, if any
        assert block.end_offset == end + len(b"".join(line + b"\n" for line in got)) - (
            0 if block.data.endswith(b"\n") else 1
        )
    expected = data.split(b"\n")
    if expected[-1] == b"":
        expected.pop()  # a final newline ends the last line; it starts none
    assert got == expected


def test_spans_cut_a_file_where_blocks_do(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(inputs.BOM + lines_and_long_line() + b'{"last":1}')
    with open(path, "rb") as stream:
        found = list(inputs.blocks(stream, 100, "x", block_bytes=64))
    with open(path, "rb") as stream, open(path, "rb") as reader:
        spans = list(inputs.spans(stream, 100, "x", block_bytes=64))
        read = [inputs.read_span(reader, span, "x") for span in spans]
    assert all(span.length <= 64 + 100 + 1 for span in spans)
    # blocks() ends a cut line with a newline of its own; a span holds only the file's bytes.
    assert [block.data.removesuffix(b"\n") for block in found] == [
        block.removesuffix(b"\n") for block in read
    ]
    assert [b.cut_size for b in found] == [s.cut_size for s in spans]
    assert max(s.cut_size for s in spans) == len(lines_and_long_line().split(b"\n")[10])
    assert read[0].startswith(b'{"n":0}')
    assert read[-1].endswith(b'{"last":1}')


def test_a_file_that_shrinks_while_read_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"a":1}\n' * 100)
    with open(path, "rb") as stream:
        span = next(inputs.spans(stream, 100, "x", block_bytes=64))
    path.write_bytes(b"")
    with open(path, "rb") as reader, pytest.raises(InputError, match="shrank"):
        inputs.read_span(reader, span, "x")


@pytest.mark.parametrize("stop_early", [False, True])
def test_a_finished_run_closes_its_pool_and_never_terminates_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop_early: bool
) -> None:
    """``Pool.terminate`` can wait for ever for a worker forked during it (a loop of small
    runs hung within tens of runs on a loaded machine); a run that ends, or that its caller
    stops (``--max-errors``), lets the workers exit on their own."""
    ended: list[str] = []
    start_pool = runner.start_pool

    def spying_start_pool(*args: Any, **kwargs: Any) -> Any:
        pool = start_pool(*args, **kwargs)
        for name in ("close", "terminate"):
            method = getattr(pool, name)
            monkeypatch.setattr(pool, name, lambda m=method, n=name: (ended.append(n), m())[1])
        return pool

    monkeypatch.setattr(runner, "start_pool", spying_start_pool)
    path = tmp_path / "events.jsonl"
    write_events(path)
    registry = Registry.load(Path(__file__).resolve().parents[2] / "registry")
    checker = Checker(registry, registry.get("search@2"), Limits(MAX_LINE_BYTES, 8))
    job = runner.Job(registry.root, "search@2", MAX_LINE_BYTES, 8)
    found = runner.results(checker, job, inputs.discover([str(path)]), 2)
    if stop_early:
        next(found)
        found.close()
    else:
        assert sum(r.valid for _, r in found) == LINES - len(BAD) - len(BLANK)
    assert ended == ["close"]


def test_newlines_counts_what_bytes_count_counts() -> None:
    rng = random.Random(7)
    samples = [b"", b"\n", b"\n\n\n", b"x", b"{}\n{}", b"\r\n" * 5]
    for _ in range(200):
        alphabet = rng.choice([b"\n", b"ab\n", b'{"a":1}\n\r ', bytes(range(256))])
        samples.append(bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 3000))))
    for data in samples:
        assert inputs.newlines(data) == data.count(b"\n")
