"""Bytes of JSONL -> JSON values, or ParseProblems that say exactly what is wrong.

The fast path is msgspec (exact integers of any size, strict JSON); the checks JSON parsers skip
(duplicate keys, nesting depth, line size) cost a few ``bytes`` scans, and the careful diagnosis
only runs on a line that already failed. ``BlockDecoder`` decodes many lines per call and falls
back to ``decode``, line by line, only around a line that needs a closer look.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Generator, Iterator
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
#: Bytes of JSONL that ``BlockDecoder`` decodes in one call: small enough that a bad line costs
#: little decoding of its neighbours again and that few decoded events are alive at once, large
#: enough to spread the cost of each call (4 KiB ran fewest instructions per line of 1..32 KiB).
PIECE_BYTES = 4 * 1024

_decoder = msgspec.json.Decoder()
_decode = _decoder.decode
_decode_lines = _decoder.decode_lines
_NON_FINITE = re.compile(rb"(?<![\w\"])(-?Infinity|NaN)(?![\w\"])")
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
# A block's skeleton keeps only the characters that give JSON text its structure (brackets,
# quotes, commas, backslashes) and newlines; from it, only the opening brackets (as "{").
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'{}[]",\\\n')
_OPENERS = bytes.maketrans(b"[", b"{")
_NOT_OPENERS = bytes(b for b in range(256) if b not in b"{[\n")
_NEWLINE = ord("\n")
_AT_BYTE = re.compile(r"\(byte (\d+)\)$")  # where msgspec stopped: "... (byte 123)"


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


def decode(data: bytes, limits: Limits = Limits()) -> Any:
    """Decode one JSON document; raise ParseProblem when it is not acceptable JSON."""
    if len(data) > limits.max_line_bytes:
        raise too_large(len(data), limits)
    try:
        value = _decode(data)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise diagnose(data, limits, str(exc)) from exc
    # Depth can only exceed the limit if the line has that many brackets at all.
    if data.count(b"{") + data.count(b"[") > limits.max_depth and depth(value) > limits.max_depth:
        raise too_deep(limits)
    if _reencoded_strings(value) != _strings(data):
        _check_duplicates_slow(data)
    return value


def too_large(size: int, limits: Limits) -> ParseProblem:
    """The problem of an event of ``size`` bytes, over ``limits.max_line_bytes``."""
    return ParseProblem(
        "too_large",
        f"event is {size:,} bytes, over the limit of {limits.max_line_bytes:,} "
        "(raise it with --max-line-bytes)",
    )


def too_deep(limits: Limits) -> ParseProblem:
    """The problem of an event nested deeper than ``limits`` allow."""
    return ParseProblem(
        "too_deep", f"nesting is deeper than the limit of {limits.max_depth} levels"
    )


# Duplicate keys: a JSON parser keeps one value of a repeated key and drops the others, and
# with them the key's string. Every string of valid JSON is delimited by two unescaped '"', and
# re-encoding the decoded value writes exactly one string for each string that survived. So
# the re-encoding has as many delimiters as the input exactly when no key was dropped, and
# never more. The slow check, which names the key, runs only when the counts differ.


def _strings(data: bytes) -> int:
    """Unescaped '"' in valid JSON text: twice the number of strings (keys included)."""
    if b"\\" not in data:
        return data.count(b'"')
    # Escapes pair up left to right, so deleting every escaped backslash (two backslashes)
    # leaves a backslash only before the character it escapes: a '"' with a backslash left
    # before it is escaped, every other '"' is a delimiter.
    data = data.replace(b"\\\\", b"")
    return data.count(b'"') - data.count(b'\\"')


def _reencoded_strings(value: Any) -> int | None:
    """``_strings`` of ``value`` written as JSON; None if it cannot be written."""
    try:
        return _strings(_dumps(value))
    except TypeError:  # orjson stops at 64-bit integers; msgspec writes any size exactly
        try:
            return _strings(msgspec.json.encode(value))
        except (TypeError, RecursionError):
            return None
    except RecursionError:  # pragma: no cover - orjson has its own, lower limit (TypeError)
        return None


# -- many lines at once --------------------------------------------------------------------


class BlockDecoder:
    """The lines of a JSONL block, decoded in order, many per call where they are clean.

    Iterating yields ``(index, values)``: ``values`` is a list of the decoded events of the
    lines from ``index`` on (lines count from 0, as in ``block.split(b"\\n")``), or a
    ParseProblem for the single line ``index``. Blank and whitespace-only lines yield nothing.
    Every line gets exactly the verdict ``decode`` would give it, except that with
    ``check_depth`` false, values decoded many at a time are not measured against
    ``limits.max_depth``: the caller does that (when a contract caps the depth of valid events,
    only for the invalid ones). Once iterated, ``lines`` is the number of lines in the block (a
    last line without a newline counts). While the caller looks at what was yielded last,
    ``compact`` says whether those lines are compact: each line is its value written as
    compact JSON, with no whitespace outside strings.
    """

    def __init__(
        self, block: bytes, limits: Limits = Limits(), *, check_depth: bool = True
    ) -> None:
        self.block = block
        self.limits = limits
        self.check_depth = check_depth
        self.lines = 0
        self.compact = False

    def __iter__(self) -> Iterator[tuple[int, list[Any] | ParseProblem]]:
        block, size = self.block, len(self.block)
        start = index = 0
        while start < size:
            end = block.find(b"\n", start + PIECE_BYTES)
            end = size if end < 0 else end + 1
            index += yield from self._piece(start, end, index)
            start = end
        self.lines = index

    def _piece(
        self, start: int, end: int, index: int
    ) -> Generator[tuple[int, list[Any] | ParseProblem], None, int]:
        """Lines ``block[start:end]``, in one call if all are clean; returns how many there are.

        Otherwise the piece is split around the line msgspec stopped at, or in halves, so a bad
        line costs a few decodes of its neighbourhood, not a decode of each neighbour alone.
        The lines after a bad one are taken in a loop, not by recursion: a piece of a thousand
        bad lines must not nest a thousand generators.
        """
        done = 0
        while start < end:
            raw = self.block[start:end]
            values = _clean_lines(raw, self.limits, self.check_depth)
            if isinstance(values, tuple):
                self.compact = values[1]
                yield index + done, values[0]
                return done + len(values[0])
            if values is None:
                break
            # msgspec stopped at offset ``values``: the lines before, the culprit, then the rest.
            first, after = _culprit(raw, values)
            if first:
                done += yield from self._piece(start, start + first, index + done)
            self.compact = False
            yield from _line_by_line(raw[first:after], index + done, self.limits)
            done, start = done + 1, start + after
        if start >= end:
            return done
        raw = self.block[start:end]
        lines = raw.count(b"\n") + (raw[-1] != _NEWLINE)
        if lines <= 4:
            self.compact = False
            yield from _line_by_line(raw, index + done, self.limits)
            return done + lines
        half = (start + end) // 2
        cut = self.block.rfind(b"\n", start, half)
        if cut < 0:  # a long first line; with five lines or more, its end is not the last
            cut = self.block.find(b"\n", half)
        head = yield from self._piece(start, cut + 1, index + done)
        tail = yield from self._piece(cut + 1, end, index + done + head)
        return done + head + tail


def _culprit(raw: bytes, offset: int) -> tuple[int, int]:
    """``(start, end)`` of the line of ``raw`` most likely to blame for msgspec stopping at
    ``offset``: the line holding that offset, unless one of the two lines before it does not
    end as a JSON object does. A line cut short (a torn write) runs on into the next one, and
    msgspec stops there or later, often at the start of a good line. Any choice gives every
    line its right verdict (the lines before are decoded again, the culprit alone); a good one
    spares its neighbours being decoded again one by one, and looking back only two lines
    keeps a piece of lines that are not objects from being split one line at a time."""
    first = raw.rfind(b"\n", 0, offset) + 1
    culprit = (first, raw.find(b"\n", offset) + 1 or len(raw))
    end = first
    for _ in range(2):
        if end == 0:
            break
        start = raw.rfind(b"\n", 0, end - 1) + 1
        line = raw[start : end - 1].rstrip()
        if line and not line.endswith(b"}"):
            culprit = (start, end)
        end = start
    return culprit


def _clean_lines(
    raw: bytes, limits: Limits, check_depth: bool
) -> tuple[list[Any], bool] | int | None:
    """The values of the lines of ``raw`` and whether the lines are compact, if each line is
    one acceptable JSON value; else the offset where msgspec found the text malformed, if it
    says, or None.

    msgspec's ``decode_lines`` reads whitespace-separated values, so on its own it would take
    ``[1`` and ``2]`` on two lines for one value, or ``1 2`` on one line for two. Two checks
    rule that out, and duplicate keys with it:

    * Compact input, as most producers write it, re-encodes to itself. If the values written
      as one JSON array are ``raw`` with its newlines turned into the array's commas, every
      line holds exactly one value (a newline inside a value would stand where the re-encoding
      has a comma, and JSON needs that comma) and no key was dropped.
    * Otherwise the skeleton decides (``raw`` without whitespace, scalars and string contents):
      when every newline in it sits between a "}" and a "{", no newline of ``raw`` is inside a
      string (JSON forbids that) or a container (a "," or a closing bracket would have to come
      first), so each line holds whole values, and as many values as lines means one each.
      Duplicate keys are then found by counting strings.
    """
    try:
        values: list[Any] = _decode_lines(raw)
    except msgspec.DecodeError as exc:
        found = _AT_BYTE.search(str(exc))
        return int(found.group(1)) if found and int(found.group(1)) < len(raw) else None
    except RecursionError:
        return None
    if not values:
        return None
    if len(raw) > limits.max_line_bytes and max(map(len, raw.split(b"\n"))) > limits.max_line_bytes:
        return None
    try:
        text: bytes | None = _dumps(values)
    except TypeError:  # orjson stops at 64-bit integers; such input is not compact JSON anyway
        text = None
    body = raw[:-1] if raw[-1] == _NEWLINE else raw
    compact = True
    if (
        text is None
        or len(text) != len(body) + 2
        or not text.startswith(body.replace(b"\n", b","), 1)  # text is "[" ... "]"
    ):
        compact = False
        skeleton = raw.translate(None, _NOT_STRUCTURE)
        lines = skeleton.count(b"\n") + (raw[-1] != _NEWLINE)
        if (
            lines != len(values)
            or not skeleton.startswith(b"{")
            or not skeleton.endswith((b"}", b"}\n"))
            or skeleton.count(b"}\n{") != lines - 1
        ):
            return None
        strings = skeleton.count(b'"') if b"\\" not in skeleton else _strings(raw)
        if (_strings(text) if text is not None else _reencoded_strings(values)) != strings:
            return None
    if not check_depth:
        return values, compact
    # Depth can only exceed the limit on a line with that many opening brackets at all.
    openers = raw.translate(_OPENERS, _NOT_OPENERS)
    if b"{" * (limits.max_depth + 1) in openers:
        for number, line in enumerate(openers.split(b"\n")):
            if len(line) > limits.max_depth and depth(values[number]) > limits.max_depth:
                return None
    return values, compact


def _line_by_line(
    raw: bytes, index: int, limits: Limits
) -> Iterator[tuple[int, list[Any] | ParseProblem]]:
    for offset, data in enumerate(raw.split(b"\n")):
        if not data or data.isspace():
            continue  # blank lines separate events; they are not events
        try:
            yield index + offset, [decode(data, limits)]
        except ParseProblem as problem:
            yield index + offset, problem


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


def deeper_than(value: Any, limit: int) -> bool:
    """Whether ``depth(value) > limit``, found level by level, looking only at containers."""
    try:  # few brackets at all, as in most events, settle it at C speed
        text = _dumps(value)
        if text.count(b"{") + text.count(b"[") <= limit:
            return False
    except TypeError:  # integers beyond 64 bits, or nesting beyond orjson's own limit
        pass
    level = [value] if isinstance(value, (dict, list)) else []
    levels = 0
    while level:
        levels += 1
        if levels > limit:
            return True
        below: list[Any] = []
        for item in level:
            below.extend(
                child
                for child in (item.values() if isinstance(item, dict) else item)
                if isinstance(child, (dict, list))
            )
        level = below
    return False


def _check_duplicates_slow(data: bytes) -> None:
    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result = dict(pairs)
        if len(result) != len(pairs):
            seen: set[str] = set()
            for key, _ in pairs:
                if key in seen:
                    raise ParseProblem(
                        "duplicate_key",
                        f"duplicate key {key!r}: JSON parsers disagree on which "
                        "value wins, so logkit refuses the event",
                    )
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
        return ParseProblem(
            "invalid_utf8", f"not valid UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start}"
        )
    if text.startswith("\ufeff"):
        return ParseProblem("malformed_json", "a byte order mark (BOM) inside the stream")
    if not text.strip():
        return ParseProblem("malformed_json", "empty event")
    match = _NON_FINITE.search(data) if b"NaN" in data or b"Infinity" in data else None
    if match:
        return ParseProblem(
            "malformed_json",
            f"{match.group(1).decode()} at offset {match.start()} is not valid JSON "
            "(numbers must be finite; send null or a string)",
            rule="non_finite_number",
        )
    if data.count(b"{") + data.count(b"[") > limits.max_depth:
        return ParseProblem(
            "too_deep", f"nesting is deeper than the limit of {limits.max_depth} levels"
        )
    if "recursion" in detail:
        # Deeper than the parser itself goes (about a thousand levels), whatever the limit.
        return ParseProblem("too_deep", "nesting is deeper than logkit's parser can follow")
    if "out of range" in detail:
        return ParseProblem(
            "malformed_json",
            "a number is too large for a 64-bit float (send it as a string)",
            rule="number_out_of_range",
        )
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        message = exc.msg.removesuffix(" at")  # "Invalid control character at"
        return ParseProblem("malformed_json", f"invalid JSON: {message} at column {exc.colno}")
    except (ValueError, RecursionError) as exc:
        return ParseProblem("malformed_json", f"invalid JSON: {exc}")
    surrogate = _SURROGATE.search(data)
    if surrogate:
        return ParseProblem(
            "malformed_json",
            f"{surrogate.group().decode()} at offset {surrogate.start()} is a lone UTF-16 "
            "surrogate, which is not a Unicode character",
            rule="lone_surrogate",
        )
    return ParseProblem("malformed_json", "invalid JSON")
