"""Bytes of one event -> a JSON value, or a ParseProblem saying exactly what is wrong."""

from __future__ import annotations

import json

import pytest

from logkit.parse import BOM, DEFAULT_MAX_DEPTH, Limits, ParseProblem, decode, depth


def problem(data: bytes, limits: Limits = Limits()) -> ParseProblem:
    with pytest.raises(ParseProblem) as info:
        decode(data, limits)
    return info.value


def nested(levels: int) -> bytes:
    """An object ``levels`` deep: 1 is ``{}``."""
    return b'{"a": ' * (levels - 1) + b"{}" + b"}" * (levels - 1)


# -- what is accepted --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1}',
        '{"a": [1, 2.5, "x", null, true, false, {}], "b": {"c": "\\u00e9"}}',
        '[1, "two"]',
        '"a string"',
        "42",
        "null",
        '  {"padded": true}  ',
        '{"a": 1}\r',  # the \r of a CRLF line ending
        '{"emoji": "\\ud83d\\ude00"}',  # a surrogate pair is one character
        '{"same key": 1, "nested": {"same key": 2}}',
        '[{"k": 1}, {"k": 2}]',
    ],
)
def test_valid_json_decodes_like_the_standard_library(text: str) -> None:
    assert decode(text.encode()) == json.loads(text)


@pytest.mark.parametrize("number", [2**63, 2**64, 2**70, -(2**63) - 1, -(2**70), 10**40, 2**64 - 1])
def test_integers_of_any_size_are_exact(number: int) -> None:
    value = decode(f'{{"n": {number}, "list": [{number}]}}'.encode())
    assert value == {"n": number, "list": [number]}
    assert type(value["n"]) is int
    # The same, on the path that checks escaped strings for duplicate keys.
    assert decode(f'{{"a\\u0062": {number}}}'.encode()) == {"ab": number}


def test_floats_stay_floats() -> None:
    value = decode(b'{"f": 1.0, "e": 1e3, "i": 1}')
    assert [type(value[k]) for k in "fei"] == [float, float, int]


# -- each reason a line is refused ------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "rule", "fragment"),
    [
        (b'{"a": 1', "malformed_json", "invalid JSON: Expecting ',' delimiter at column 8"),
        (b'{"a": 1,}', "malformed_json", "invalid JSON"),
        (b"{'a': 1}", "malformed_json", "at column 2"),
        (b'{"a": 1} {"b": 2}', "malformed_json", "Extra data at column 10"),
        (b'{"a": 01}', "malformed_json", "invalid JSON"),
        (b"", "malformed_json", "empty event"),
        (b"   \t", "malformed_json", "empty event"),
        (BOM + b'{"a": 1}', "malformed_json", "byte order mark"),
        (b'{"s": NaN}', "non_finite_number", "NaN at offset 6"),
        (b'{"s": Infinity}', "non_finite_number", "Infinity at offset 6"),
        (b'{"s": -Infinity}', "non_finite_number", "-Infinity at offset 6"),
        (b"[1e400]", "number_out_of_range", "too large for a 64-bit float"),
        (b"[-1e400]", "number_out_of_range", "too large for a 64-bit float"),
        (b'{"q": "caf\\ud800"}', "lone_surrogate", "\\ud800 at offset 10"),
        (b'{"q": "\\udc00\\ud800"}', "lone_surrogate", "\\udc00 at offset 7"),
    ],
)
def test_malformed_json(data: bytes, rule: str, fragment: str) -> None:
    found = problem(data)
    assert found.reason == "malformed_json"
    assert found.rule == rule
    assert fragment in found.message, found.message


def test_nan_inside_a_string_is_only_a_string() -> None:
    assert decode(b'{"s": "NaN", "t": "-Infinity"}') == {"s": "NaN", "t": "-Infinity"}


@pytest.mark.parametrize(
    ("data", "offset", "byte"),
    [
        (b'{"q": "caf\xff"}', 10, 0xFF),
        (b'{"q": "\xc3"}', 7, 0xC3),  # a cut multi-byte sequence
        (b'{"q": "\xed\xa0\x80"}', 7, 0xED),  # a surrogate encoded as UTF-8 (CESU-8)
        (b'{"q": "\xc0\xaf"}', 7, 0xC0),  # an overlong encoding of "/"
    ],
)
def test_invalid_utf8(data: bytes, offset: int, byte: int) -> None:
    found = problem(data)
    assert (found.reason, found.rule) == ("invalid_utf8", "invalid_utf8")
    assert found.message == f"not valid UTF-8: byte 0x{byte:02x} at offset {offset}"


def test_too_large_exactly_at_the_boundary() -> None:
    data = b'{"pad": "' + b"x" * 89 + b'"}'
    assert len(data) == 100
    assert decode(data, Limits(max_line_bytes=100)) == {"pad": "x" * 89}
    found = problem(data + b" ", Limits(max_line_bytes=100))
    assert found.reason == found.rule == "too_large"
    assert found.message == (
        "event is 101 bytes, over the limit of 100 (raise it with --max-line-bytes)"
    )


def test_too_large_is_checked_before_parsing() -> None:
    # Even bytes that are not JSON at all: the size is the first thing said.
    assert problem(b"\xff" * 2000, Limits(max_line_bytes=1000)).reason == "too_large"


# -- duplicate keys ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "key"),
    [
        # No backslash in the line: the quote-count check finds these.
        (b'{"a": 1, "a": 2}', "a"),
        (b'{"a": 1, "a": 1}', "a"),  # even with equal values
        (b'{"x": {"deep": 1, "deep": 2}}', "deep"),
        (b'[{"ok": 1}, {"k": 1, "k": 2}]', "k"),
        (b'{"a": 1, "b": 2, "a": 3}', "a"),
        (b'{"big": 1180591620717411303424, "big": 1}', "big"),
        # A backslash somewhere in the line: the careful check runs.
        (b'{"a\\u0062": 1, "ab": 2}', "ab"),
        (b'{"path": "C:\\\\dir", "path": "D:\\\\dir"}', "path"),
        (b'{"q": "say \\"hi\\"", "q": 1}', "q"),
        (b'{"\\u00e9": 1, "\xc3\xa9": 2}', "é"),
    ],
)
def test_duplicate_keys_are_refused(data: bytes, key: str) -> None:
    found = problem(data)
    assert (found.reason, found.rule) == ("duplicate_key", "duplicate_key")
    assert found.message.startswith(f"duplicate key {key!r}:")


@pytest.mark.parametrize(
    "data",
    [
        b'{"a": 1, "b": "\\"a\\": 2"}',  # looks like a repeated key, but is inside a string
        b'{"a": "\\"", "b": "\\""}',
        b'{"a": "x\\"y", "c": {"a": 1}}',
        b'{"k": 1, "k\\u0000": 2}',
        b'{"a": "\\\\", "A": 1}',
    ],
)
def test_no_false_duplicates(data: bytes) -> None:
    assert decode(data) == json.loads(data)


# -- nesting depth -----------------------------------------------------------------------------


def test_depth_counts_containers() -> None:
    assert depth(1) == 0
    assert depth("[[[") == 0
    assert depth([]) == 1
    assert depth({"a": [1, {"b": []}]}) == 4
    assert depth([[], [[[]]]]) == 4


def test_depth_limit_exactly_at_the_boundary() -> None:
    assert depth(decode(nested(DEFAULT_MAX_DEPTH))) == DEFAULT_MAX_DEPTH
    found = problem(nested(DEFAULT_MAX_DEPTH + 1))
    assert found.reason == found.rule == "too_deep"
    assert found.message == f"nesting is deeper than the limit of {DEFAULT_MAX_DEPTH} levels"


@pytest.mark.parametrize("limit", [1, 2, 3, 10])
def test_a_custom_depth_limit(limit: int) -> None:
    limits = Limits(max_depth=limit)
    arrays = b"[" * limit + b"]" * limit
    assert depth(decode(arrays, limits)) == limit
    assert problem(b"[" + arrays + b"]", limits).reason == "too_deep"
    assert problem(b"[" + nested(limit) + b"]", limits).reason == "too_deep"


def test_brackets_inside_strings_are_not_nesting() -> None:
    assert decode(b'{"a": "[[[[{{{{"}', Limits(max_depth=1)) == {"a": "[[[[{{{{"}


def test_far_too_deep_input_is_refused_without_a_crash() -> None:
    # Deep enough to overflow a recursive parser: still one clear problem.
    assert problem(b"[" * 100_000 + b"]" * 100_000).reason == "too_deep"
    assert problem(b"[" * 100_000).reason == "too_deep"


def test_a_raised_depth_limit_never_calls_deep_valid_json_malformed() -> None:
    found = problem(b"[" * 2000 + b"]" * 2000, Limits(max_depth=5000))
    assert found.reason == "too_deep", found.message
