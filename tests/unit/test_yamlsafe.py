"""The JSON-safe YAML loader: YAML in, only what JSON can say out."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from logkit import yamlsafe
from logkit.yamlsafe import YamlError, load, load_all, load_all_with_lines, pointer_lines


def refused(text: str) -> YamlError:
    with pytest.raises(YamlError) as info:
        load(text)
    return info.value


# -- scalars mean what they would mean in JSON -------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("d: 2024-01-02", {"d": "2024-01-02"}),
        ("t: 2024-01-02T10:00:00Z", {"t": "2024-01-02T10:00:00Z"}),
        ("t: 2024-01-02 10:00:00", {"t": "2024-01-02 10:00:00"}),
        ("on: off", {"on": "off"}),
        ("flag: yes", {"flag": "yes"}),
        ("flag: No", {"flag": "No"}),
        ("flag: ON", {"flag": "ON"}),
        ("y: y", {"y": "y"}),
        ("flag: true", {"flag": True}),
        ("flag: False", {"flag": False}),
        ("n: null", {"n": None}),
        ("n: ~", {"n": None}),
        ("n:", {"n": None}),
        ("i: 42", {"i": 42}),
        ("i: -7", {"i": -7}),
        ("i: 0", {"i": 0}),
        ("f: 2.5", {"f": 2.5}),
        ("f: -0.5e-3", {"f": -0.0005}),
        ("s: '42'", {"s": "42"}),
        ("big: 1180591620717411303424", {"big": 2**70}),
    ],
)
def test_scalars(text: str, expected: dict[str, Any]) -> None:
    assert load(text) == expected


def test_a_number_written_like_json_is_that_number() -> None:
    # 1e3 is the number 1000 in JSON; YAML 1.1 wanted a dot in it.
    assert load("[1e3, 1E+3, 2.5e-1, -1e2]") == [1000.0, 1000.0, 0.25, -100.0]


@pytest.mark.parametrize(
    "text",
    [
        "22:22",  # YAML 1.1 reads base 60: 1342
        "1:30",  # 90
        "190:20:30.15",
        "012",  # YAML 1.1 reads octal: 10
        "0755",
        "0b101",  # 5
        "1_000",  # 1000
        "1_0.5",
    ],
)
def test_yaml_1_1_number_forms_stay_strings(text: str) -> None:
    # JSON has no such numbers; a port mapping or a zip code must not turn into arithmetic.
    assert load(f"v: {text}") == {"v": text}


def test_keys_are_strings_as_written() -> None:
    assert load("200: ok\non: x\nnull: y\ntrue: z\n1.5: w\n~: v") == {
        "200": "ok",
        "on": "x",
        "null": "y",
        "true": "z",
        "1.5": "w",
        "~": "v",
    }


def test_a_mapping_key_must_be_a_scalar() -> None:
    error = refused("a: 1\n? [x, y]\n: 2\n")
    assert error.line == 2
    assert "key" in str(error)


@pytest.mark.parametrize("text", ["v: .inf", "v: -.Inf", "v: .nan", "v: .NaN", "v: !!float .inf"])
def test_non_finite_floats_are_refused(text: str) -> None:
    error = refused(f"ok: 1\n{text}")
    assert error.line == 2
    assert "finite" in str(error)


@pytest.mark.parametrize(
    "text",
    [
        "v: !!binary aGVsbG8=",
        "v: !!set {a, b}",
        "v: !!timestamp 2024-01-02",
        "v: !!omap [{a: 1}]",
        "v: !!pairs [{a: 1}]",
        "v: !!python/object:os.system x",
        "v: !!python/name:os.system",
        "v: !custom x",
    ],
)
def test_tags_without_a_json_value_are_refused(text: str) -> None:
    # bytes, sets, dates and pairs are not JSON; the validator cannot take them either.
    error = refused(f"a: 1\n{text}\n")
    assert error.line == 2, error


def test_explicit_json_tags_are_fine() -> None:
    assert load('a: !!str 1\nb: !!int "3"\nc: !!float 1\nd: !!null ""') == {
        "a": "1",
        "b": 3,
        "c": 1.0,
        "d": None,
    }


def test_everything_loaded_is_json() -> None:
    text = """
    a: [1, 2.5, "x", null, true, {b: 2024-01-02}]
    c: &anchor {d: [on, off]}
    e: *anchor
    base: &base {x: 1}
    merged:
      <<: *base
      y: 2
    """
    value = load(text)
    assert json.loads(json.dumps(value)) == value
    assert value["merged"] == {"x": 1, "y": 2}
    assert value["e"] == {"d": ["on", "off"]}


# -- refusals name the line ------------------------------------------------------------------


def test_duplicate_keys_are_refused_with_their_line() -> None:
    error = refused("a: 1\nb:\n  c: 1\n  c: 2\n")
    assert error.line == 4
    assert str(error) == "duplicate key 'c'"


def test_duplicate_keys_are_compared_as_written_strings() -> None:
    error = refused("1: a\n'1': b\n")
    assert error.line == 2


def test_alias_bomb_is_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 9):
        refs = ", ".join([f"*a{level - 1}"] * 10)
        lines.append(f"a{level}: &a{level} [{refs}]")
    error = refused("\n".join(lines))
    assert "alias" in str(error)
    assert error.line is not None


def test_many_aliases_below_the_limit_are_fine() -> None:
    text = "base: &b [1, 2, 3]\n" + "".join(f"k{i}: *b\n" for i in range(100))
    assert len(load(text)) == 101


def test_recursive_alias_is_refused() -> None:
    error = refused("a: &loop\n  - *loop\n")
    assert "recursive" in str(error)


def test_very_deep_nesting_is_an_error_not_a_crash() -> None:
    with pytest.raises(YamlError):
        load("[" * 5000 + "]" * 5000)


def test_syntax_error_names_the_line() -> None:
    error = refused("a: 1\nb: [1, 2\nc: 3\n")
    assert error.line == 3


def test_load_refuses_several_documents_and_returns_none_for_none() -> None:
    assert load("") is None
    assert load("# only a comment\n") is None
    error = refused("a: 1\n---\nb: 2\n")
    assert "2" in str(error)


def test_load_all_with_lines_gives_each_documents_first_line() -> None:
    text = "a: 1\n---\n# comment\nb: 2\n---\n- 3\n"
    assert list(load_all_with_lines(text)) == [(1, {"a": 1}), (4, {"b": 2}), (6, [3])]
    assert list(load_all(text.encode())) == [{"a": 1}, {"b": 2}, [3]]


def test_bytes_with_a_bom_are_read() -> None:
    assert load("\ufeffa: 1".encode()) == {"a": 1}


def test_pointer_lines_maps_pointers_to_lines() -> None:
    text = "a: 1\nb:\n  c/d: [x, y]\n  e~f: 2\n"
    lines = pointer_lines(text)
    assert lines[""] == 1
    assert lines["/a"] == 1
    assert lines["/b/c~1d"] == 3
    assert lines["/b/c~1d/1"] == 3
    assert lines["/b/e~0f"] == 4
    assert pointer_lines("a: [1") == {}


def test_the_c_loader_is_used_when_libyaml_is_present() -> None:
    if not getattr(yaml, "__with_libyaml__", False):
        pytest.skip("PyYAML built without libyaml")
    assert issubclass(yamlsafe._JsonSafeLoader, yaml.CSafeLoader)


def test_the_loader_does_not_change_pyyaml_defaults() -> None:
    # The resolvers are the loader's own; plain safe_load is untouched.
    assert yaml.safe_load("v: on") == {"v": True}
    assert load("v: on") == {"v": "on"}


# -- the one-pass fast path gives what the full loader gives -------------------------------------

PLAIN = [
    "",
    "# only a comment\n",
    "a: 1\nb: [x, 2.5, -0.0, true, FALSE, null, ~, '', \"3\"]\n",
    "a:\n  - b: {c: [1, {d: e}]}\n  - []\n  - {}\n",
    "n:\nm: ''\nk: |\n  block\n  text\nj: >\n  folded\n",
    "200: ok\non: x\nnull: y\ntrue: z\n1.5: w\n~: v\n'<<': quoted\n",
    "big: 1180591620717411303424\nneg: -7\nplus: +3\nexp: 1e3\nsmall: .5\ndot: 1.\n",
    "v: 22:22\nw: 0755\nx: 1_000\ny: 2024-01-02\nz: yes\n",
    "a/b: 1\nc~d:\n  e/~f: [1, 2]\n",
    "- 1\n- - 2\n  - 3\n- x: 4\n",
    "scalar at the root",
    "'quoted root'",
    "\ufeffa: 1\n",
    "%YAML 1.1\n---\na: 1\n...\n",
    "é: ünïcödé\n",
]

FALLS_BACK = [
    "a: &x 1\nb: *x\n",  # anchors and aliases
    "base: &b {x: 1}\nm:\n  <<: *b\n  y: 2\n",  # a merge key
    "a: !!str 1\n",  # an explicit tag
    "a: !custom x\n",
    "v: .inf\n",  # refused, in the full loader's words
    "v: 1e400\n",
    "a: 1\na: 2\n",  # a duplicate key
    "1: a\n'1': b\n",
    "? [x, y]\n: 2\n",  # a non-scalar key
    "a: 1\n---\nb: 2\n",  # two documents
    "a: [1\n",  # a syntax error
    "v: =\n",
    "[" * 70 + "]" * 70,  # deeper than the fast path goes
    "[" * 5000 + "]" * 5000,
]


def _full(text: str) -> Any:
    docs = list(load_all(text))
    if len(docs) > 1:
        raise YamlError(f"expected one YAML document, found {len(docs)}")
    return docs[0] if docs else None


def _outcome(load_text: Any, text: str) -> tuple[str, Any]:
    try:
        value = load_text(text)
    except YamlError as exc:
        return "error", (str(exc), exc.line)
    return "value", json.dumps(value)  # json tells 1 from 1.0 from true, and keeps key order


@pytest.mark.parametrize("text", PLAIN + FALLS_BACK)
def test_the_fast_path_loads_what_the_full_loader_loads(text: str) -> None:
    assert _outcome(load, text) == _outcome(_full, text)
    if _outcome(_full, text)[0] == "value":
        value, lines = yamlsafe.load_with_lines(text)
        assert json.dumps(value) == json.dumps(_full(text))
        assert list(lines.items()) == list(pointer_lines(text).items())


@pytest.mark.parametrize("text", PLAIN)
def test_plain_documents_take_the_fast_path(text: str) -> None:
    assert yamlsafe._load_plain(text, None) is not yamlsafe._FALLBACK


@pytest.mark.parametrize("text", FALLS_BACK)
def test_anything_unusual_takes_the_full_loader(text: str) -> None:
    assert yamlsafe._load_plain(text, None) is yamlsafe._FALLBACK
