"""A few strings that match a regular expression, from Python's own regex parser.

Used only to propose candidate witnesses; every candidate is checked by the real validator, so
an approximate translation (ECMA-262 versus Python syntax) can cost a witness, never a wrong
answer.
"""

from __future__ import annotations

import importlib
import re
from functools import lru_cache
from typing import Any

# Python 3.11+: the parser is private, and stable enough for proposals
sre_parse: Any = importlib.import_module("re._parser")

_CATEGORY = {
    "CATEGORY_DIGIT": "0",
    "CATEGORY_NOT_DIGIT": "a",
    "CATEGORY_SPACE": " ",
    "CATEGORY_NOT_SPACE": "a",
    "CATEGORY_WORD": "a",
    "CATEGORY_NOT_WORD": "-",
}
_LIMIT = 40


def _emit(parsed: Any, variant: int) -> str:
    out: list[str] = []
    for op, arg in parsed:
        name = str(op)
        if name == "LITERAL":
            out.append(chr(arg))
        elif name == "NOT_LITERAL":
            out.append("a" if chr(arg) != "a" else "b")
        elif name == "ANY":
            out.append("a")
        elif name == "IN":
            out.append(_class(arg, variant))
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, body = arg
            count = low if variant % 2 == 0 else min(max(low + 1, 1), high)
            count = min(count, _LIMIT)
            out.extend(_emit(body, variant // 2) for _ in range(count))
        elif name == "SUBPATTERN":
            out.append(_emit(arg[-1], variant))
        elif name == "BRANCH":
            branches = arg[1]
            out.append(_emit(branches[variant % len(branches)], variant // len(branches)))
        elif name in ("AT", "ASSERT", "ASSERT_NOT", "GROUPREF"):
            continue
        elif name == "CATEGORY":
            out.append(_CATEGORY.get(str(arg), "a"))
        else:
            raise ValueError(name)
    return "".join(out)


def _class(items: Any, variant: int) -> str:
    choices: list[str] = []
    negate = False
    for op, arg in items:
        name = str(op)
        if name == "NEGATE":
            negate = True
        elif name == "LITERAL":
            choices.append(chr(arg))
        elif name == "RANGE":
            choices.extend([chr(arg[0]), chr(arg[1])])
        elif name == "CATEGORY":
            choices.append(_CATEGORY.get(str(arg), "a"))
    if negate:
        for candidate in "a0_-Z ":
            if candidate not in choices:
                return candidate
        return "~"
    return choices[variant % len(choices)] if choices else "a"


@lru_cache(maxsize=512)
def _samples(pattern: str) -> tuple[str, ...]:
    try:
        parsed = sre_parse.parse(pattern)
    except (re.error, ValueError, OverflowError, RecursionError):
        return ()
    found: list[str] = []
    for variant in range(6):
        try:
            text = _emit(parsed, variant)
        except (ValueError, RecursionError, IndexError, TypeError):
            continue
        if text not in found:
            found.append(text)
    return tuple(found)


def samples(pattern: str) -> list[str]:
    """Up to six strings proposed to match ``pattern`` (unchecked)."""
    return list(_samples(pattern))


__all__ = ["samples"]
