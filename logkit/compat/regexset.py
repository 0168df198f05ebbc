"""Exact inclusion between two ``pattern`` regexes, for the common subset of regex syntax.

jsonschema-rs answers UNKNOWN when two versions differ by a ``pattern``. For the regexes
contracts actually use (literals, classes, ``\\d \\w \\s``, ``.``, groups, alternation, bounded
and unbounded repetition, ``^`` at the start and ``$`` at the end) the languages are regular, so
inclusion is decided here by exploring the product of the two automata. The semantics are
ECMA-262's, as jsonschema-rs applies them: ``\\d`` is ``[0-9]``, ``\\w`` is ``[A-Za-z0-9_]``,
``.`` excludes line terminators, ``$`` is the end of the string, and a pattern matches anywhere
unless anchored. Anything else (look-around, back-references, ``\\b``, flags, Unicode classes,
big counted repetitions) returns None: undecided, never a guess.
"""

from __future__ import annotations

import importlib
import re
from collections import deque
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

sre_parse: Any = importlib.import_module("re._parser")

MAX_CODE = 0x10FFFF
MAX_REPEAT_COPIES = 60
MAX_PRODUCT_STATES = 20_000

Ranges = tuple[tuple[int, int], ...]

_DIGIT: Ranges = ((0x30, 0x39),)
_WORD: Ranges = ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A))
_SPACE: Ranges = (
    (0x09, 0x0D), (0x20, 0x20), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
    (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000), (0xFEFF, 0xFEFF),
)  # fmt: skip
_LINE_TERMINATORS: Ranges = ((0x0A, 0x0A), (0x0D, 0x0D), (0x2028, 0x2029))


class Unsupported(Exception):
    """The regex uses syntax this module does not model exactly."""


def _normalise(ranges: list[tuple[int, int]]) -> Ranges:
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return tuple(merged)


def _complement(ranges: Ranges) -> Ranges:
    out: list[tuple[int, int]] = []
    start = 0
    for lo, hi in ranges:
        if lo > start:
            out.append((start, lo - 1))
        start = hi + 1
    if start <= MAX_CODE:
        out.append((start, MAX_CODE))
    return tuple(out)


_CATEGORIES: dict[str, Ranges] = {
    "CATEGORY_DIGIT": _DIGIT,
    "CATEGORY_NOT_DIGIT": _complement(_DIGIT),
    "CATEGORY_WORD": _WORD,
    "CATEGORY_NOT_WORD": _complement(_WORD),
    "CATEGORY_SPACE": _SPACE,
    "CATEGORY_NOT_SPACE": _complement(_SPACE),
}
_ANY = _complement(_LINE_TERMINATORS)
_EVERYTHING: Ranges = ((0, MAX_CODE),)


@dataclass
class Nfa:
    """States are ints; ``edges[s]`` holds (ranges, target); ``eps[s]`` epsilon targets."""

    edges: list[list[tuple[Ranges, int]]] = field(default_factory=list)
    eps: list[list[int]] = field(default_factory=list)

    def state(self) -> int:
        self.edges.append([])
        self.eps.append([])
        return len(self.edges) - 1


def _class(items: Any) -> Ranges:
    ranges: list[tuple[int, int]] = []
    negate = False
    for op, arg in items:
        name = str(op)
        if name == "NEGATE":
            negate = True
        elif name == "LITERAL":
            ranges.append((arg, arg))
        elif name == "RANGE":
            ranges.append((arg[0], arg[1]))
        elif name == "CATEGORY" and str(arg) in _CATEGORIES:
            ranges.extend(_CATEGORIES[str(arg)])
        else:
            raise Unsupported(name)
    result = _normalise(ranges)
    return _complement(result) if negate else result


def _build(nfa: Nfa, parsed: Any, start: int) -> int:
    """Add ``parsed`` after ``start``; return the state reached at its end."""
    here = start
    for op, arg in parsed:
        name = str(op)
        if name == "LITERAL":
            here = _step(nfa, here, ((arg, arg),))
        elif name == "NOT_LITERAL":
            here = _step(nfa, here, _complement(((arg, arg),)))
        elif name == "ANY":
            here = _step(nfa, here, _ANY)
        elif name == "IN":
            here = _step(nfa, here, _class(arg))
        elif name == "CATEGORY":
            if str(arg) not in _CATEGORIES:
                raise Unsupported(str(arg))
            here = _step(nfa, here, _CATEGORIES[str(arg)])
        elif name == "SUBPATTERN":
            _group, add_flags, del_flags, body = arg
            if add_flags or del_flags:
                raise Unsupported("inline flags")
            here = _build(nfa, body, here)
        elif name == "BRANCH":
            end = nfa.state()
            for branch in arg[1]:
                begin = nfa.state()
                nfa.eps[here].append(begin)
                nfa.eps[_build(nfa, branch, begin)].append(end)
            here = end
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, body = arg
            unbounded = high == sre_parse.MAXREPEAT
            if low > MAX_REPEAT_COPIES or (not unbounded and high > MAX_REPEAT_COPIES):
                raise Unsupported("large repetition")
            for _ in range(low):
                here = _build(nfa, body, here)
            if unbounded:
                loop = nfa.state()
                nfa.eps[here].append(loop)
                nfa.eps[_build(nfa, body, loop)].append(loop)
                here = loop
            else:
                end = nfa.state()
                nfa.eps[here].append(end)
                for _ in range(high - low):
                    here = _build(nfa, body, here)
                    nfa.eps[here].append(end)
                here = end
        else:
            raise Unsupported(name)
    return here


def _step(nfa: Nfa, here: int, ranges: Ranges) -> int:
    nxt = nfa.state()
    if ranges:
        nfa.edges[here].append((ranges, nxt))
    return nxt


@lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> tuple[Nfa, int, int]:
    """An NFA for the strings a JSON Schema ``pattern`` accepts (search semantics)."""
    if "{," in pattern:  # Python reads {,n} as {0,n}; ECMA-262 reads it literally
        raise Unsupported("{,n}")
    try:
        tree = sre_parse.parse(pattern)
    except (re.error, OverflowError, RecursionError, ValueError) as exc:
        raise Unsupported(str(exc)) from exc
    if tree.state.flags & ~re.UNICODE:  # (?i), (?s), (?m), (?x) ...
        raise Unsupported("flags")
    parsed = list(tree)
    anchored_start = (
        bool(parsed) and str(parsed[0][0]) == "AT" and str(parsed[0][1]) == "AT_BEGINNING"
    )
    if anchored_start:
        parsed = parsed[1:]
    anchored_end = bool(parsed) and str(parsed[-1][0]) == "AT" and str(parsed[-1][1]) == "AT_END"
    if anchored_end:
        parsed = parsed[:-1]
    nfa = Nfa()
    start = nfa.state()
    here = start
    if not anchored_start:
        here = _star_any(nfa, here)
    here = _build(nfa, parsed, here)
    if not anchored_end:
        here = _star_any(nfa, here)
    return nfa, start, here


def _star_any(nfa: Nfa, here: int) -> int:
    loop = nfa.state()
    nfa.eps[here].append(loop)
    nfa.edges[loop].append((_EVERYTHING, loop))
    return loop


def _closure(nfa: Nfa, states: frozenset[int]) -> frozenset[int]:
    stack = list(states)
    seen = set(states)
    while stack:
        s = stack.pop()
        for t in nfa.eps[s]:
            if t not in seen:
                seen.add(t)
                stack.append(t)
    return frozenset(seen)


def _boundaries(nfa: Nfa, into: set[int]) -> None:
    for edges in nfa.edges:
        for ranges, _ in edges:
            for lo, hi in ranges:
                into.add(lo)
                into.add(hi + 1)


def _move(nfa: Nfa, states: frozenset[int], code: int) -> frozenset[int]:
    out = set()
    for s in states:
        for ranges, target in nfa.edges[s]:
            if any(lo <= code <= hi for lo, hi in ranges):
                out.add(target)
    return _closure(nfa, frozenset(out))


def _representative(lo: int, hi: int) -> int:
    """A readable character of [lo, hi] when there is one."""
    for preferred in (0x61, 0x41, 0x30, 0x5F, 0x2D, 0x20):
        if lo <= preferred <= hi:
            return preferred
    for code in range(max(lo, 0x21), min(hi, 0x7E) + 1):
        return code
    return lo


def counterexample(a: str, b: str) -> str | None:
    """A string ``a`` accepts and ``b`` rejects (possibly the empty string).

    Returns None when ``a``'s language is included in ``b``'s. Raises Unsupported when either
    regex is outside the modelled subset or the search grows too large.
    """
    nfa_a, start_a, end_a = compile_pattern(a)
    nfa_b, start_b, end_b = compile_pattern(b)
    cuts: set[int] = {0, MAX_CODE + 1}
    _boundaries(nfa_a, cuts)
    _boundaries(nfa_b, cuts)
    points = sorted(c for c in cuts if 0 <= c <= MAX_CODE + 1)
    symbols = [(points[i], points[i + 1] - 1) for i in range(len(points) - 1)]
    first = (_closure(nfa_a, frozenset({start_a})), _closure(nfa_b, frozenset({start_b})))
    parents: dict[tuple[frozenset[int], frozenset[int]], Any] = {first: None}
    queue = deque([first])
    while queue:
        pair = queue.popleft()
        sa, sb = pair
        if end_a in sa and end_b not in sb:
            chars = []
            node: Any = pair
            while parents[node] is not None:
                node, code = parents[node]
                chars.append(chr(code))
            return "".join(reversed(chars))
        if not sa:
            continue
        for lo, hi in symbols:
            code = _representative(lo, hi)
            nxt = (_move(nfa_a, sa, code), _move(nfa_b, sb, code))
            if nxt not in parents:
                parents[nxt] = (pair, code)
                if len(parents) > MAX_PRODUCT_STATES:
                    raise Unsupported("too many states")
                queue.append(nxt)
    return None


def relation(old: str, new: str) -> tuple[str | None, str | None] | None:
    """``(old_only, new_only)`` example strings (None where there is none), or None if unknown."""
    try:
        return counterexample(old, new), counterexample(new, old)
    except (Unsupported, RecursionError):
        return None


__all__ = ["Unsupported", "counterexample", "relation"]
