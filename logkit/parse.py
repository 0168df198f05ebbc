"""Bytes of one event -> a JSON value, or a ParseProblem that says exactly what is wrong.

The fast path is msgspec (exact integers of any size, strict JSON); the checks JSON parsers skip
(duplicate keys, nesting depth, line size) cost one or two ``bytes.count`` calls per line, and
the careful diagnosis only runs on a line that already failed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

_dumps: Callable[[Any], bytes]
try:
    import orjson

    _dumps = orjson.dumps
except ImportError:  # pragma: no cover - orjson is a dependency; stay correct without it
    _dumps = msgspec.json.encode

DEFAULT_MAX_LINE_BYTES = 1024 * 1024
DEFAULT_MAX_DEPTH = 64
BOM = b"\xef\xbb\xbf"

_decode = msgspec.json.Decoder().decode
_NON_FINITE = re.compile(rb"(?<![\w\"])(-?Infinity|NaN)(?![\w\"])")
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


@dataclass(frozen=True, slots=True)
class Limits:
    """Guards against inputs that would exhaust memory or the stack."""

    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    max_depth: int = DEFAULT_MAX_DEPTH


class ParseProblem(ValueError):
    """A line that is not one JSON event; ``reason`` is a dead-letter reason."""

    def __init__(self, reason: str, message: str, rule: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.rule = rule or reason


def decode(data: bytes, limits: Limits = Limits()) -> Any:  # noqa: B008 - frozen, shared
    """Decode one JSON document; raise ParseProblem when it is not acceptable JSON."""
    if len(data) > limits.max_line_bytes:
        raise ParseProblem(
            "too_large",
            f"event is {len(data):,} bytes, over the limit of {limits.max_line_bytes:,} "
            "(raise it with --max-line-bytes)")
    try:
        value = _decode(data)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise diagnose(data, limits, str(exc)) from exc
    # Depth can only exceed the limit if the line has that many brackets at all.
    if data.count(b"{") + data.count(b"[") > limits.max_depth and \
            depth(value) > limits.max_depth:
        raise ParseProblem("too_deep",
                           f"nesting is deeper than the limit of {limits.max_depth} levels")
    if b"\\" in data:
        _check_duplicates_slow(data)
    elif _reencoded_quotes(value) != data.count(b'"'):
        # Without escapes every '"' delimits a string, so re-encoding loses quotes only when
        # the parser dropped a repeated key.
        _check_duplicates_slow(data)
    return value


def _reencoded_quotes(value: Any) -> int:
    try:
        return _dumps(value).count(b'"')
    except TypeError:  # orjson stops at 64-bit integers; msgspec writes any size exactly
        return msgspec.json.encode(value).count(b'"')


def depth(value: Any) -> int:
    """Nesting depth of a decoded value, without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in item)
    return deepest


def _check_duplicates_slow(data: bytes) -> None:
    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result = dict(pairs)
        if len(result) != len(pairs):
            seen: set[str] = set()
            for key, _ in pairs:
                if key in seen:
                    raise ParseProblem("duplicate_key",
                                       f"duplicate key {key!r}: JSON parsers disagree on which "
                                       "value wins, so logkit refuses the event")
                seen.add(key)
        return result

    try:
        json.loads(data, object_pairs_hook=pairs_hook)
    except ParseProblem:
        raise
    except (ValueError, RecursionError):  # msgspec already accepted it; nothing to add
        return


def diagnose(data: bytes, limits: Limits, detail: str = "") -> ParseProblem:
    """Explain why a line that msgspec refused is not valid JSON, in a person's terms."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return ParseProblem("invalid_utf8",
                            f"not valid UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start}")
    if text.startswith("\ufeff"):
        return ParseProblem("malformed_json", "a byte order mark (BOM) inside the stream")
    if not text.strip():
        return ParseProblem("malformed_json", "empty event")
    match = _NON_FINITE.search(data)
    if match:
        return ParseProblem(
            "malformed_json",
            f"{match.group(1).decode()} at offset {match.start()} is not valid JSON "
            "(numbers must be finite; send null or a string)", rule="non_finite_number")
    if data.count(b"{") + data.count(b"[") > limits.max_depth:
        return ParseProblem("too_deep",
                            f"nesting is deeper than the limit of {limits.max_depth} levels")
    if "out of range" in detail:
        return ParseProblem(
            "malformed_json",
            "a number is too large for a 64-bit float (send it as a string)",
            rule="number_out_of_range")
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return ParseProblem("malformed_json",
                            f"invalid JSON: {exc.msg} at column {exc.colno}")
    except (ValueError, RecursionError) as exc:
        return ParseProblem("malformed_json", f"invalid JSON: {exc}")
    surrogate = _SURROGATE.search(data)
    if surrogate:
        return ParseProblem(
            "malformed_json",
            f"{surrogate.group().decode()} at offset {surrogate.start()} is a lone UTF-16 "
            "surrogate, which is not a Unicode character", rule="lone_surrogate")
    return ParseProblem("malformed_json", "invalid JSON")
