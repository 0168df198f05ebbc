"""The bad-input corpus through ``ingest``: lines read = stored + dead-lettered, every record is
valid against logkit's own schemas, and stored payloads are the input's bytes exactly."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import jsonschema
import pytest
from storekit import SCHEMAS, logkit, partition_fields, raw_of, read_store

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MAX_LINE = 4096


def _routed(payload: bytes, contract: bytes = b"search", version: bytes = b"2") -> bytes:
    return b'{"contract": "%s", "version": %s, "payload": %s}' % (contract, version, payload)


SEARCH = b'"user_id": "u_1", "query_id": "2b5f7958-25c1-4851-9bb3-26cb66e24225"'
#: (line, what must happen to it): "stored", "blank" or a dead-letter reason.
NASTY: list[tuple[bytes, str]] = [
    # numbers and strings that must round-trip byte for byte
    (_routed(b'{%s, "raw_query": "x", "results": [{"document_id": "d", "position": 0, '
             b'"score": 1180591620717411303424}]}' % SEARCH), "stored"),  # 2**70
    (_routed(b'{%s, "raw_query": "caf\\u00e9 \\/ \\"q\\"", "results": [{"document_id": "d", '
             b'"position": 0, "score": 1.10}, {"document_id": "e", "position": 1, '
             b'"score": -0.0e-0}]}' % SEARCH), "stored"),
    (_routed(b'{%s,"raw_query":"\xc3\xa9t\xc3\xa9 \xf0\x9f\x8e\x89","results":[]}' % SEARCH),
     "stored"),
    (_routed(b'{%s, "raw_query": "a\\u0000b", "results": [{"document_id": "d", "position": 0, '
             b'"score": 1E+2}], "page": 0}' % SEARCH), "invalid"),
    (_routed(b'{%s, "raw_query": "a\\u0000b", "results": [{"document_id": "d", "position": 0, '
             b'"score": 1E+2}], "page": 2.0}' % SEARCH), "stored"),  # 2.0 is an integer
    (_routed(b'{%s, "raw_query": "trailing space", "results": []}' % SEARCH) + b"  \t", "stored"),
    # not JSON
    (_routed(b'{%s, "raw_query": "x", "results": [{"document_id": "d", "position": 0, '
             b'"score": Infinity}]}' % SEARCH), "malformed_json"),
    (_routed(b'{%s, "raw_query": "\\udc00", "results": []}' % SEARCH), "malformed_json"),
    (_routed(b'{%s, "raw_query": "tab\there", "results": []}' % SEARCH), "malformed_json"),
    (b'{"contract": "search", "version": 2, "payload": {', "malformed_json"),
    # structure
    (b'{"contract": "click", "contract": "search", "version": 2, "payload": {}}',
     "duplicate_key"),
    (_routed(b'{%s, "raw_query": "x", "results": [], "deep": %s1%s}'
             % (SEARCH, b"[" * 70, b"]" * 70)), "too_deep"),
    (_routed(b'{%s, "raw_query": "%s", "results": []}' % (SEARCH, b"x" * (MAX_LINE * 3))),
     "too_large"),
    (b'"a string"', "not_an_object"),
    (b"42", "not_an_object"),
    (b"null", "not_an_object"),
    # bytes that are not UTF-8: an overlong '/', a lone continuation byte
    (_routed(b'{%s, "raw_query": "\xc0\xaf", "results": []}' % SEARCH), "invalid_utf8"),
    (b'\x80{"contract": "search"}', "invalid_utf8"),
    # routing
    (_routed(b"{}", b"nope", b"1"), "unknown_contract"),
    (_routed(b'{%s, "raw_query": "x", "results": []}' % SEARCH, b"search", b"9"),
     "unknown_contract"),
    (_routed(b'{%s, "raw_query": "x", "results": [], "session": 1}' % SEARCH), "invalid"),
    # a contract name that is not a string (it once crashed ingest: a list is unhashable)
    (b'{"contract": ["search"], "payload": {}}', "invalid"),
    (b'{"contract": {"a": 1}, "version": 2, "payload": {}}', "invalid"),
    # the shape of a remembered route, without its payload, or with a bool for its version
    (b'{"contract": "search", "version": 2, "session": 1}', "invalid"),
    (_routed(b'{%s, "raw_query": "x", "results": []}' % SEARCH, b"search", b"true"),
     "invalid"),
    (b"   \t", "blank"),
    (b"", "blank"),
]  # fmt: skip

#: examples/bad-input.jsonl, line by line (examples/README.md says what each must become).
BAD_INPUT = [
    "malformed_json",
    "malformed_json",
    "duplicate_key",
    "malformed_json",
    "blank",
    "invalid_utf8",
    "stored",
    "not_an_object",
    "stored",
]


def _payload(line: bytes) -> bytes:
    line = line.rstrip(b"\r \t")
    head = line.index(b'"payload":')
    return line[head + len(b'"payload":') : -1].strip()


def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / name).read_text())
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[bytes]]]:
    folder = tmp_path_factory.mktemp("bad")
    bad = (EXAMPLES / "bad-input.jsonl").read_bytes()
    assert len(bad.split(b"\n")[:-1]) == len(BAD_INPUT)
    nasty = b"".join(line + b"\n" for line, _ in NASTY)
    # A BOM starts the second file; the last line has no newline (and is valid).
    nasty = b"\xef\xbb\xbf" + nasty + NASTY[0][0].replace(b"u_1", b"u_2")
    (folder / "1-bad.jsonl").write_bytes(bad)
    (folder / "2-nasty.jsonl").write_bytes(nasty)
    files = {
        str(folder / "1-bad.jsonl"): bad.split(b"\n")[:-1],
        str(folder / "2-nasty.jsonl"): nasty[3:].split(b"\n"),
    }
    return folder, files


def test_every_line_is_stored_or_dead_lettered_exactly_as_it_arrived(
    corpus: tuple[Path, dict[str, list[bytes]]],
) -> None:
    folder, files = corpus
    expected = dict(zip(files, [BAD_INPUT, [o for _, o in NASTY] + ["stored"]], strict=True))
    store = folder / "store"
    summary = folder / "summary.json"
    done = logkit(
        "ingest",
        *files,
        "--store",
        store,
        "--max-line-bytes",
        MAX_LINE,
        "--summary-json",
        summary,
    )
    assert done.returncode == 0, done.stderr.decode()
    report = json.loads(summary.read_text())
    outcomes = [o for outs in expected.values() for o in outs]
    assert report["blank"] == outcomes.count("blank")
    assert report["lines"] == len(outcomes) - outcomes.count("blank")
    assert report["lines"] == report["stored"] + report["dead_lettered"]
    assert report["stored"] == outcomes.count("stored")

    contents = read_store(store)
    assert len(contents.events) == report["stored"]
    assert len(contents.dead) == report["dead_lettered"]

    envelope_schema = _validator("envelope.schema.json")
    dead_schema = _validator("dead_letter.schema.json")
    for record in contents.events:
        assert list(envelope_schema.iter_errors(record.value)) == [], record.data
    for record in contents.dead:
        assert list(dead_schema.iter_errors(record.value)) == [], record.data
        assert partition_fields(record.path) == {"dt": record.value["received_at"][:10]}

    # Each dead letter is the line it names, with the expected reason and its exact bytes.
    reasons = Counter()
    for record in contents.dead:
        dead = record.value
        source = dead["source"]
        line = files[source["file"]][source["line"] - 1]
        assert dead["reason"] == expected[source["file"]][source["line"] - 1], (line, dead)
        raw = raw_of(dead)
        assert raw == line
        assert ("raw_base64" in dead) == (dead["reason"] == "invalid_utf8")
        assert dead["errors"]
        reasons[(source["file"], source["line"])] += 1
    assert all(n == 1 for n in reasons.values())

    # Stored payloads are the input's payload bytes, byte for byte.
    stored_payloads = Counter(record.data[record.data.index(b'"payload":') + 10 : -1]
                              for record in contents.events)  # fmt: skip
    wanted = Counter(
        _payload(line)
        for name, lines in files.items()
        for line, outcome in zip(lines, expected[name], strict=True)
        if outcome == "stored"
    )
    assert stored_payloads == wanted
    assert any(b"1180591620717411303424}" in p for p in stored_payloads)
    assert any(b'"score": 1.10}' in p for p in stored_payloads)
    assert any(b"caf\\u00e9 \\/" in p for p in stored_payloads)


def test_a_dead_letter_from_stdin_names_its_source_as_dash(tmp_path: Path) -> None:
    """schemas/dead_letter.schema.json: source.file is the file as given, or "-" for stdin."""
    store = tmp_path / "store"
    done = logkit("ingest", "--store", store, input=b'{"contract": "nope"}\n{"broken\n')
    assert done.returncode == 0, done.stderr.decode()
    sources = sorted((r.value["source"]["file"], r.value["source"]["line"])
                     for r in read_store(store).dead)  # fmt: skip
    assert sources == [("-", 1), ("-", 2)]
