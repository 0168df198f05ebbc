"""Exact-output reporter tests: results built by hand, rendered into StringIO, compared whole."""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET

import pytest

from logkit.reporters import FORMATS, make_reporter
from logkit.reporters.base import Outcome, Reporter
from logkit.reporters.github import GithubReporter
from logkit.reporters.json import JsonReporter
from logkit.reporters.junit import JunitReporter
from logkit.reporters.text import TextReporter, use_color
from logkit.results import EventFailure, Finding, Issue, failure_findings

TOOL = "logkit validate"
SUMMARY = "3 events checked in 1 file: 1 valid, 2 invalid"


def invalid_event() -> EventFailure:
    return EventFailure(
        "events.jsonl",
        3,
        "invalid",
        [
            Issue("", "required", "missing required property 'query_id'"),
            Issue("/position", "type", 'expected integer, found "0"'),
        ],
        "search",
        2,
    )


def malformed_line() -> EventFailure:
    # Markup-looking text must come out literally, never as rich styling.
    return EventFailure(
        "events.jsonl", 4, "malformed_json", [Issue("", "malformed_json", "invalid [bold]x[/]")]
    )


def lint_warning() -> Finding:
    return Finding(
        "registry/search/2.yaml",
        7,
        "/properties/tags",
        "closed-object",
        "objects should set additionalProperties: false",
        "warning",
        "search@2",
    )


def render(reporter: Reporter, out: io.StringIO, err: io.StringIO, *, ok: bool = False) -> None:
    reporter.event(invalid_event())
    reporter.event(malformed_line())
    reporter.finding(lint_warning())
    reporter.finish(Outcome(ok=ok, line=SUMMARY, counts={"events": 3, "invalid": 2}))


def test_failure_findings_one_per_issue() -> None:
    assert failure_findings(invalid_event()) == [
        Finding(
            "events.jsonl",
            3,
            "",
            "required",
            "missing required property 'query_id'",
            "error",
            "search@2",
        ),
        Finding(
            "events.jsonl",
            3,
            "/position",
            "type",
            'expected integer, found "0"',
            "error",
            "search@2",
        ),
    ]
    # A line that is not an event has no contract: the reason stands in for it.
    assert failure_findings(malformed_line())[0].subject == "malformed_json"


def test_make_reporter_covers_every_format() -> None:
    out, err = io.StringIO(), io.StringIO()
    kinds = {fmt: type(make_reporter(fmt, out, err, color=False)) for fmt in FORMATS}
    assert kinds == {
        "text": TextReporter,
        "json": JsonReporter,
        "github": GithubReporter,
        "junit": JunitReporter,
    }


# -- text ------------------------------------------------------------------------------------


def test_text_plain() -> None:
    out, err = io.StringIO(), io.StringIO()
    render(TextReporter(out, err, color=False, tool=TOOL), out, err)
    assert out.getvalue() == (
        "events.jsonl:3: search@2 (root) [required] missing required property 'query_id'\n"
        'events.jsonl:3: search@2 /position [type] expected integer, found "0"\n'
        "events.jsonl:4: malformed_json (root) [malformed_json] invalid [bold]x[/]\n"
        "registry/search/2.yaml:7: search@2 /properties/tags [closed-object] warning: "
        "objects should set additionalProperties: false\n"
    )
    assert err.getvalue() == SUMMARY + "\n"


def test_text_plain_without_line_or_subject() -> None:
    out, err = io.StringIO(), io.StringIO()
    reporter = TextReporter(out, err, color=False)
    reporter.finding(Finding("registry/_shared", None, "", "layout", "stray file", "info"))
    assert out.getvalue() == "registry/_shared: (root) [layout] info: stray file\n"


@pytest.fixture
def terminal_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A plain 256-colour terminal, whatever the machine running the tests says."""
    for name in (
        "NO_COLOR",
        "FORCE_COLOR",
        "COLORTERM",
        "TTY_COMPATIBLE",
        "TTY_INTERACTIVE",
        "COLUMNS",
        "LINES",
        "JUPYTER_COLUMNS",
        "JUPYTER_LINES",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")


@pytest.mark.usefixtures("terminal_env")
def test_text_colour() -> None:
    out, err = io.StringIO(), io.StringIO()
    render(TextReporter(out, err, color=True, tool=TOOL), out, err)
    bold, cyan, yellow, dim, reset = "\x1b[1m", "\x1b[36m", "\x1b[33m", "\x1b[2m", "\x1b[0m"
    assert out.getvalue() == (
        f"{bold}events.jsonl:3{reset}: {cyan}search@2{reset} {yellow}(root){reset} "
        f"{dim}[required]{reset} missing required property 'query_id'\n"
        f"{bold}events.jsonl:3{reset}: {cyan}search@2{reset} {yellow}/position{reset} "
        f'{dim}[type]{reset} expected integer, found "0"\n'
        f"{bold}events.jsonl:4{reset}: {cyan}malformed_json{reset} {yellow}(root){reset} "
        f"{dim}[malformed_json]{reset} invalid [bold]x[/]\n"
        f"{bold}registry/search/2.yaml:7{reset}: {cyan}search@2{reset} "
        f"{yellow}/properties/tags{reset} {dim}[closed-object]{reset} "
        f"{yellow}warning: {reset}objects should set additionalProperties: false\n"
    )
    assert err.getvalue() == f"\x1b[31m✗{reset} {SUMMARY}\n"


@pytest.mark.usefixtures("terminal_env")
def test_text_colour_success_mark_and_no_wrapping() -> None:
    out, err = io.StringIO(), io.StringIO()
    reporter = TextReporter(out, err, color=True)
    long_message = "word " * 60
    reporter.finding(Finding("f.jsonl", 1, "/a", "type", long_message.strip()))
    reporter.finish(Outcome(ok=True, line="1 event checked"))
    assert out.getvalue().count("\n") == 1  # soft wrap: one finding, one line
    assert err.getvalue() == "\x1b[32m✓\x1b[0m 1 event checked\n"


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_use_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert use_color(_Tty(), None) is True
    assert use_color(io.StringIO(), None) is False  # piped
    assert use_color(io.StringIO(), True) is True  # --color wins
    assert use_color(_Tty(), False) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert use_color(_Tty(), None) is False
    assert use_color(_Tty(), True) is True


def test_text_on_a_terminal_without_a_flag_is_coloured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    out, err = _Tty(), io.StringIO()
    reporter = TextReporter(out, err)
    reporter.finding(Finding("f.jsonl", 1, "", "required", "missing"))
    reporter.finish(Outcome(ok=False, line="done"))
    assert "\x1b[" in out.getvalue()
    assert err.getvalue() == "done\n"  # stderr is piped here: plain


# -- json ------------------------------------------------------------------------------------


def test_json_exact() -> None:
    out, err = io.StringIO(), io.StringIO()
    render(JsonReporter(out, err, tool=TOOL), out, err)
    assert (
        out.getvalue()
        == """\
{
  "tool": "logkit validate",
  "ok": false,
  "summary": {
    "events": 3,
    "invalid": 2
  },
  "results": [
    {
      "source": "events.jsonl",
      "line": 3,
      "contract": "search",
      "version": 2,
      "reason": "invalid",
      "errors": [
        {
          "path": "",
          "rule": "required",
          "message": "missing required property 'query_id'"
        },
        {
          "path": "/position",
          "rule": "type",
          "message": "expected integer, found \\"0\\""
        }
      ]
    },
    {
      "source": "events.jsonl",
      "line": 4,
      "contract": null,
      "version": null,
      "reason": "malformed_json",
      "errors": [
        {
          "path": "",
          "rule": "malformed_json",
          "message": "invalid [bold]x[/]"
        }
      ]
    },
    {
      "file": "registry/search/2.yaml",
      "line": 7,
      "path": "/properties/tags",
      "rule": "closed-object",
      "message": "objects should set additionalProperties: false",
      "severity": "warning",
      "subject": "search@2"
    }
  ]
}
"""
    )
    assert err.getvalue() == SUMMARY + "\n"


def test_json_with_nothing_found_is_one_document() -> None:
    out, err = io.StringIO(), io.StringIO()
    JsonReporter(out, err, tool=TOOL).finish(Outcome(ok=True, line="all valid", counts={}))
    assert json.loads(out.getvalue()) == {"tool": TOOL, "ok": True, "summary": {}, "results": []}


def test_json_keeps_unicode_and_control_characters_round_trip() -> None:
    out, err = io.StringIO(), io.StringIO()
    reporter = JsonReporter(out, err)
    text = 'café ✓ "q" \\ \x00 \n \u2028'
    reporter.event(EventFailure("e.jsonl", 1, "invalid", [Issue("/é", "const", text)], "a", 1))
    reporter.finish(Outcome(ok=False, line="x"))
    assert "café ✓" in out.getvalue()  # ensure_ascii=False
    assert json.loads(out.getvalue())["results"][0]["errors"][0]["message"] == text


# -- github ----------------------------------------------------------------------------------


def test_github_exact() -> None:
    out, err = io.StringIO(), io.StringIO()
    render(GithubReporter(out, err, tool=TOOL), out, err)
    assert out.getvalue() == (
        "::error file=events.jsonl,line=3,title=logkit validate required (search@2)::"
        "(root): missing required property 'query_id'\n"
        "::error file=events.jsonl,line=3,title=logkit validate type (search@2)::"
        '/position: expected integer, found "0"\n'
        "::error file=events.jsonl,line=4,title=logkit validate malformed_json "
        "(malformed_json)::(root): invalid [bold]x[/]\n"
        "::warning file=registry/search/2.yaml,line=7,title=logkit validate closed-object "
        "(search@2)::/properties/tags: objects should set additionalProperties: false\n"
    )
    assert err.getvalue() == SUMMARY + "\n"


def test_github_info_is_a_notice_and_no_line_means_no_line_property() -> None:
    out, err = io.StringIO(), io.StringIO()
    GithubReporter(out, err).finding(Finding("registry", None, "", "layout", "note", "info"))
    assert out.getvalue() == "::notice file=registry,title=logkit layout::(root): note\n"


_COMMAND = re.compile(r"::(error|warning|notice) ([^:\n]*)::([^\n]*)\n")


def _unescape(text: str) -> str:
    for escaped, raw in (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%")):
        text = text.replace(escaped, raw)
    return text


@pytest.mark.parametrize(
    "nasty",
    [
        "100% sure",
        "%0A is already escaped-looking",
        "line one\n::error file=evil.py,line=1::injected",
        "carriage\r::warning::injected",
        "a::b, c:d,e",
        "\n\n::add-mask::secret\n",
        "::set-output name=x::y",
    ],
)
def test_github_event_text_cannot_inject_a_command(nasty: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    reporter = GithubReporter(out, err)
    # Event text reaches the file name (a path given by the user), the subject (a contract
    # name read from the event), the pointer (a property name) and the message.
    reporter.event(
        EventFailure(
            f"in/{nasty}.jsonl",
            2,
            "unknown_contract",
            [Issue(f"/{nasty}", "unknown_contract", f"unknown {nasty!s}")],
            nasty,
            None,
        )
    )
    text = out.getvalue()
    # Exactly one workflow command, on one line, with no stray property separators.
    match = _COMMAND.fullmatch(text)
    assert match is not None, text
    assert match.group(1) == "error"
    props = dict(part.split("=", 1) for part in match.group(2).split(","))
    assert set(props) == {"file", "line", "title"}
    # What GitHub decodes is exactly what was reported.
    assert _unescape(props["file"]) == f"in/{nasty}.jsonl"
    assert _unescape(props["title"]) == f"logkit unknown_contract ({nasty})"
    assert _unescape(match.group(3)) == f"/{nasty}: unknown {nasty}"


# -- junit -----------------------------------------------------------------------------------


def test_junit_exact() -> None:
    out, err = io.StringIO(), io.StringIO()
    render(JunitReporter(out, err, tool=TOOL), out, err)
    assert (
        out.getvalue()
        == """\
<?xml version="1.0" encoding="UTF-8"?>
<testsuite name="logkit validate" tests="4" failures="3" errors="0" skipped="0">
  <testcase classname="search@2" name="events.jsonl:3 (root)">
    <failure type="required" message="[required] missing required property 'query_id'">\
[required] missing required property 'query_id'</failure>
  </testcase>
  <testcase classname="search@2" name="events.jsonl:3 /position">
    <failure type="type" message="[type] expected integer, found &quot;0&quot;">\
[type] expected integer, found "0"</failure>
  </testcase>
  <testcase classname="malformed_json" name="events.jsonl:4 (root)">
    <failure type="malformed_json" message="[malformed_json] invalid [bold]x[/]">\
[malformed_json] invalid [bold]x[/]</failure>
  </testcase>
  <testcase classname="search@2" name="registry/search/2.yaml:7 /properties/tags">
    <system-out>warning: [closed-object] objects should set additionalProperties: false\
</system-out>
  </testcase>
  <system-out>3 events checked in 1 file: 1 valid, 2 invalid</system-out>
</testsuite>
"""
    )
    assert err.getvalue() == SUMMARY + "\n"


def test_junit_parses_and_counts() -> None:
    out, err = io.StringIO(), io.StringIO()
    render(JunitReporter(out, err, tool=TOOL), out, err)
    suite = ET.fromstring(out.getvalue().split("\n", 1)[1])
    assert suite.tag == "testsuite"
    cases = suite.findall("testcase")
    assert suite.get("tests") == str(len(cases)) == "4"
    assert suite.get("failures") == str(len(suite.findall("testcase/failure"))) == "3"
    assert suite.get("errors") == "0"


def test_junit_with_nothing_found_has_one_passing_case() -> None:
    out, err = io.StringIO(), io.StringIO()
    JunitReporter(out, err, tool=TOOL).finish(Outcome(ok=True, line="5 events: all valid"))
    suite = ET.fromstring(out.getvalue().split("\n", 1)[1])
    assert (suite.get("tests"), suite.get("failures")) == ("1", "0")
    [case] = suite.findall("testcase")
    assert case.get("name") == "5 events: all valid"
    assert case.find("failure") is None


def test_junit_survives_characters_xml_cannot_carry() -> None:
    out, err = io.StringIO(), io.StringIO()
    reporter = JunitReporter(out, err)
    message = 'nul \x00 esc \x1b bell \x07 <tag> & "q" ]]> \ufffe\uffff tab\tnewline\n'
    reporter.event(
        EventFailure(
            "a\x01\udcff.jsonl", 1, "invalid", [Issue("/\x02", "const", message)], "demo", 1
        )
    )
    reporter.finish(Outcome(ok=False, line="1 invalid \x03"))
    suite = ET.fromstring(out.getvalue().split("\n", 1)[1])
    failure = suite.find("testcase/failure")
    assert failure is not None
    assert (
        failure.text
        == r'[const] nul \x00 esc \x1b bell \x07 <tag> & "q" ]]> \ufffe\uffff tab' + "\tnewline\n"
    )
    case = suite.find("testcase")
    assert case is not None
    assert case.get("name") == r"a\x01\udcff.jsonl:1 /\x02"


# -- event text cannot drive the terminal or forge lines ----------------------------------


NASTY_KEY = (
    "\x1b]0;pwned\x07\x1b[2J\nevents.jsonl:99: search@2 (root) [required] forged\r\x9b\u2028"
)


@pytest.mark.parametrize("color", [False, True])
@pytest.mark.usefixtures("terminal_env")
def test_text_escapes_control_characters_from_event_data(color: bool) -> None:
    out, err = io.StringIO(), io.StringIO()
    reporter = TextReporter(out, err, color=color)
    # A property name (in the pointer), a contract name read from the event (the subject) and
    # a message quoting event text all come from the event.
    reporter.event(
        EventFailure(
            "in\x1b[1m.jsonl",
            2,
            "unknown_contract",
            [Issue(f"/{NASTY_KEY}", "additionalProperties", f"bad {NASTY_KEY}")],
            f"x{NASTY_KEY}",
            None,
        )
    )
    reporter.finish(Outcome(ok=False, line="1 event checked"))
    text = out.getvalue()
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)  # the reporter's own colours, if any
    assert plain.count("\n") == 1  # one finding, one line
    assert plain.endswith("\n")
    assert not re.search(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", plain[:-1]), repr(plain)
    assert r"\x1b]0;pwned\x07" in plain
    assert r"\x1b[2J\nevents.jsonl:99:" in plain
    assert plain.startswith(r"in\x1b[1m.jsonl:2: ")


# -- a file name that is not UTF-8 -------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_non_utf8_file_name_is_written_to_a_strict_utf8_stream(fmt: str) -> None:
    # Python hands such names over with surrogate escapes; a UTF-8 stream with strict errors
    # (PYTHONIOENCODING=utf-8, a UTF-8 locale) cannot encode them raw.
    name = "bad\udcff.jsonl"
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="utf-8", errors="strict")
    reporter = make_reporter(fmt, out, io.StringIO(), color=False)
    reporter.event(EventFailure(name, 1, "invalid", [Issue("", "required", "missing")], "d", 1))
    reporter.finish(Outcome(ok=False, line="1 invalid"))
    out.flush()
    text = raw.getvalue().decode("utf-8")
    if fmt == "json":
        assert json.loads(text)["results"][0]["source"] == name
    else:
        assert "bad\\udcff.jsonl" in text


def test_the_quick_check_for_escapes_knows_every_character_printable_escapes() -> None:
    from logkit.reporters.text import _CONTROL, _NEEDS_ESCAPE, printable

    for code in range(0x10000):
        assert bool(_NEEDS_ESCAPE.match(chr(code))) == (code in _CONTROL), hex(code)
    assert printable("plain ✓ text") == "plain ✓ text"
    assert printable("a\nb\x1b[31m\udcff") == "a\\nb\\x1b[31m\\udcff"
