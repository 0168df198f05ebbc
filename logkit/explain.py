"""jsonschema-rs errors -> Issues a person can act on (pointer, rule, plain message).

For ``anyOf``/``oneOf`` failures the raw message ("is not valid under any of the given
schemas") says nothing useful; we descend into the branch that came closest, the way
python-jsonschema's ``best_match`` does: prefer branches whose type matched, then the branch with
the fewest errors, and report that branch's own errors.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import msgspec

from logkit.results import Issue

if TYPE_CHECKING:
    import jsonschema_rs

_SHOWN = 60  # characters of a value quoted in a message
_NOTED = " (closest of "


def pointer(parts: Iterable[str | int]) -> str:
    """RFC 6901 JSON pointer from path parts."""
    texts = list(map(str, parts))
    if not texts:
        return ""
    joined = "/".join(texts)
    if "~" in joined or joined.count("/") != len(texts) - 1:  # a part to escape
        return "".join("/" + t.replace("~", "~0").replace("/", "~1") for t in texts)
    return "/" + joined


def show(value: Any) -> str:
    """A short JSON rendering of a value for messages."""
    try:
        text = msgspec.json.encode(value).decode()
    except (TypeError, OverflowError):
        text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def explain(validator: jsonschema_rs.Validator, instance: Any, limit: int = 50) -> list[Issue]:
    """Every reason ``instance`` fails ``validator`` (at most ``limit``), best matches first."""
    issues: list[Issue] = []
    for error in validator.iter_errors(instance):
        issues.extend(_issues(error))
        if len(issues) >= limit:
            break
    return issues[:limit]


def _issues(error: jsonschema_rs.ValidationError) -> list[Issue]:
    kind = type(error.kind).__name__
    details: Any = error.kind  # attributes differ per kind
    where = pointer(error.instance_path)
    if kind in ("AnyOf", "OneOfNotValid"):
        branches: list[list[jsonschema_rs.ValidationError]] = details.context
        best = _best_branch(branches, len(error.instance_path))
        if best:
            keyword = "anyOf" if kind == "AnyOf" else "oneOf"
            issues = [leaf for sub in best for leaf in _issues(sub)]
            note = f" (closest of {len(branches)} {keyword} alternatives)"
            # A nested anyOf/oneOf has already said which alternative it picked.
            return [
                i if _NOTED in i.message else Issue(i.path, i.rule, i.message + note)
                for i in issues
            ]
    if kind == "AdditionalProperties":
        unexpected: list[str] = details.unexpected
        return [
            Issue(
                f"{where}/{pointer([name])[1:]}",
                "additionalProperties",
                f"property {name!r} is not allowed by the contract",
            )
            for name in unexpected
        ]
    if kind == "Required":
        name = details.property
        if error.schema_path and error.schema_path[-1] == "dependentRequired":
            return [
                Issue(
                    where,
                    "dependentRequired",
                    f"missing property {name!r}, required by another property that is present",
                )
            ]
        return [Issue(where, "required", f"missing required property {name!r}")]
    if kind == "PropertyNames":
        # The error is about a key, not a value; jsonschema-rs words it like a value's.
        return [Issue(where, "propertyNames", f"property name {_message(error, kind)}")]
    return [Issue(where, _rule(error, kind), _message(error, kind))]


def _best_branch(
    branches: list[list[jsonschema_rs.ValidationError]], depth: int
) -> list[jsonschema_rs.ValidationError] | None:
    def score(errors: list[jsonschema_rs.ValidationError]) -> tuple[int, int, int]:
        # A type error at the alternative's own level means the branch describes another kind
        # of value altogether: the least relevant explanation.
        wrong_type = any(
            type(e.kind).__name__ == "Type" and len(e.instance_path) == depth for e in errors
        )
        deepest = max((len(e.instance_path) for e in errors), default=0)
        return (1 if wrong_type else 0, len(errors), -deepest)

    candidates = [b for b in branches if b]
    return min(candidates, key=score) if candidates else None


_KIND_RULES = {
    "AnyOf": "anyOf",
    "OneOfNotValid": "oneOf",
    "OneOfMultipleValid": "oneOf",
    "FalseSchema": "false",
    "Constant": "const",
    "Referencing": "$ref",
    "FromUtf8": "contentEncoding",
    "BacktrackLimitExceeded": "pattern",
    "RegexEngineFailure": "pattern",
}


def _rule(error: jsonschema_rs.ValidationError, kind: str) -> str:
    if kind in _KIND_RULES:
        return _KIND_RULES[kind]
    for part in reversed(error.schema_path):
        if isinstance(part, str) and not part.isdigit():
            return part
    return kind[:1].lower() + kind[1:]


#: The kinds whose message logkit words itself; jsonschema-rs's own serve the others.
_OWN_WORDS = frozenset({"Type", "Format", "Enum", "OneOfMultipleValid", "FalseSchema"})


def _message(error: jsonschema_rs.ValidationError, kind: str) -> str:
    if kind not in _OWN_WORDS:
        message: str = error.message
        # jsonschema-rs quotes the whole instance; keep messages one readable line.
        if len(message) <= 200:
            return message
        return message.replace(_raw(error.instance), show(error.instance), 1)
    as_dict = getattr(error.kind, "as_dict", None)
    details: dict[str, Any] = as_dict() if as_dict is not None else {}
    value = show(error.instance)
    if kind == "Type":
        expected = details.get("types") or details.get("type") or "?"
        if isinstance(expected, list):
            expected = " or ".join(map(str, expected))
        return f"expected {expected}, found {value}"
    if kind == "Format":
        return f"{value} is not a valid {details.get('format', 'value')}"
    if kind == "Enum":
        options = details.get("options", [])
        shown = ", ".join(show(o) for o in options[:10]) + (", …" if len(options) > 10 else "")
        return f"{value} is not one of the allowed values: {shown}"
    if kind == "OneOfMultipleValid":
        return f"{value} matches more than one oneOf alternative; exactly one must match"
    return f"{value} is not allowed here (the schema is false)"  # FalseSchema


def _raw(value: Any) -> str:
    try:
        return msgspec.json.encode(value).decode()
    except (TypeError, OverflowError):
        return repr(value)
