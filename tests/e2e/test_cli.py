"""End-to-end: the installed ``logkit`` command (and ``python -m logkit``) run for real."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
# The command installed beside this interpreter (CI runs `.venv/bin/python -m pytest` without
# the venv on PATH), else the one on PATH. Missing, every test here fails: it never skips.
_BESIDE = Path(sys.executable).parent / "logkit"
LOGKIT = str(_BESIDE) if _BESIDE.exists() else shutil.which("logkit")

COMMANDS = {"logkit": [str(LOGKIT)], "python -m logkit": [sys.executable, "-m", "logkit"]}


def environment(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LOGKIT_") and k not in ("NO_COLOR", "FORCE_COLOR")
    }
    env.update(extra)
    return env


def run(
    *args: str,
    stdin: bytes | None = None,
    cwd: Path = REPO,
    command: str = "logkit",
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*COMMANDS[command], *args],
        input=stdin.decode("utf-8", "surrogateescape") if stdin is not None else None,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="surrogateescape",
        cwd=cwd,
        env=env or environment(),
        timeout=timeout,
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert "internal error" not in result.stderr, result.stderr
    return result


def lines_named(stdout: str, source: str) -> set[int]:
    return {int(n) for n in re.findall(rf"^{re.escape(source)}:(\d+):", stdout, re.MULTILINE)}


# -- the documented examples ---------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_examples_events_names_the_six_invalid_lines(command: str) -> None:
    result = run("validate", "examples/events.jsonl", command=command)
    assert result.returncode == 1
    assert lines_named(result.stdout, "examples/events.jsonl") == {3, 4, 6, 7, 8, 9}
    assert "\x1b[" not in result.stdout  # piped: plain text
    assert result.stderr.strip().splitlines()[-1] == (
        "10 events checked in 1 file: 4 valid, 6 invalid"
    )


def test_examples_valid_folder_exits_0() -> None:
    result = run("validate", "examples/valid/")
    assert (result.returncode, result.stdout) == (0, "")
    assert "all valid" in result.stderr


@pytest.mark.parametrize("name", ["search.jsonl", "search.yaml"])
def test_bare_examples_with_contract_exit_0(name: str) -> None:
    result = run("validate", "--contract", "search", f"examples/{name}")
    assert (result.returncode, result.stdout) == (0, "")


def test_bad_input_example() -> None:
    result = run("validate", "examples/bad-input.jsonl")
    assert result.returncode == 1
    # examples/README.md: lines 7 and 9 are valid, line 5 is blank.
    assert lines_named(result.stdout, "examples/bad-input.jsonl") == {1, 2, 3, 4, 6, 8}
    reasons = re.findall(r"^\S+ (\S+) ", result.stdout, re.MULTILINE)
    assert reasons == [
        "malformed_json",
        "malformed_json",
        "duplicate_key",
        "malformed_json",
        "invalid_utf8",
        "not_an_object",
    ]


@pytest.mark.parametrize("how", ["pipe", "dash"])
def test_stdin(how: str) -> None:
    data = (EXAMPLES / "events.jsonl").read_bytes()
    result = run("validate", *(["-"] if how == "dash" else []), stdin=data)
    assert result.returncode == 1
    assert lines_named(result.stdout, "<stdin>") == {3, 4, 6, 7, 8, 9}


def test_stdin_bare_events_with_a_contract() -> None:
    data = (EXAMPLES / "search.jsonl").read_bytes()
    result = run("validate", "--contract", "search@2", stdin=data)
    assert (result.returncode, result.stdout) == (0, "")


def test_format_json() -> None:
    result = run("validate", "--format", "json", "examples/events.jsonl")
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert document["ok"] is False
    summary = document["summary"]
    assert (summary["events"], summary["valid"], summary["invalid"]) == (10, 4, 6)
    assert [r["line"] for r in document["results"]] == [3, 4, 6, 7, 8, 9]
    assert {r["reason"] for r in document["results"]} == {"invalid"}
    assert document["results"][0]["errors"] == [
        {"path": "", "rule": "required", "message": "missing required property 'query_id'"}
    ]


def test_format_json_all_valid() -> None:
    result = run("validate", "--format", "json", "examples/valid")
    assert result.returncode == 0
    assert json.loads(result.stdout)["ok"] is True


def test_format_github() -> None:
    result = run("validate", "--format", "github", "examples/events.jsonl")
    assert result.returncode == 1
    out = result.stdout.splitlines()
    assert len(out) == 6
    for line, number in zip(out, [3, 4, 6, 7, 8, 9], strict=True):
        assert line.startswith(f"::error file=examples/events.jsonl,line={number},title=")


def test_format_junit() -> None:
    result = run("validate", "--format", "junit", "examples/events.jsonl")
    assert result.returncode == 1
    suite = ET.fromstring(result.stdout.split("\n", 1)[1])
    assert (suite.get("tests"), suite.get("failures")) == ("6", "6")


# -- usage and configuration errors: exit 2, one line --------------------------------------------


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_and_version(command: str) -> None:
    result = run("--help", command=command)
    assert result.returncode == 0
    assert "validate" in result.stdout
    assert run("validate", "--help", command=command).returncode == 0
    version = run("--version", command=command)
    assert version.returncode == 0
    assert version.stdout.startswith("logkit ")


def test_no_input_at_all_on_a_terminal() -> None:
    import pty

    leader, follower = pty.openpty()
    try:
        result = subprocess.run(
            [str(LOGKIT), "validate"],
            stdin=follower,
            capture_output=True,
            text=True,
            cwd=REPO,
            env=environment(),
            timeout=60,
        )
    finally:
        os.close(leader)
        os.close(follower)
    assert "Traceback" not in result.stderr
    line = one_line_error(result)
    assert line.startswith("logkit: error: give event files or folders, or pipe events")


def test_unknown_contract_suggests_one() -> None:
    line = one_line_error(run("validate", "--contract", "serch", "examples/search.jsonl"))
    assert line == "logkit: error: unknown contract 'serch' (did you mean 'search'?)"


def test_unknown_version() -> None:
    line = one_line_error(run("validate", "--contract", "search@7", "examples/search.jsonl"))
    assert line == "logkit: error: contract 'search' has no version 7 (versions: 1, 2)"


def test_bad_contract_name_and_format() -> None:
    assert "not a contract name" in one_line_error(
        run("validate", "--contract", "Search!", "examples/search.jsonl")
    )
    assert "unknown --format 'jsn' (did you mean 'json'?)" in one_line_error(
        run("validate", "--format", "jsn", "examples/events.jsonl")
    )


def test_missing_file() -> None:
    line = one_line_error(run("validate", "examples/nope.jsonl"))
    assert line == "logkit: error: examples/nope.jsonl: no such file or folder"


def test_unreadable_file(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        # root reads any file; a /proc file that refuses reads stands in for one.
        target = Path("/proc/self/mem")
        if not target.exists():
            pytest.skip("no unreadable file for root here")
    else:
        target = tmp_path / "secret.jsonl"
        target.write_text("{}\n")
        target.chmod(0)
    line = one_line_error(run("validate", "--contract", "search", str(target)))
    assert line.startswith(f"logkit: error: {target}: cannot read")


def test_a_missing_registry(tmp_path: Path) -> None:
    line = one_line_error(run("validate", "--registry", str(tmp_path / "none"), "-", stdin=b""))
    assert "not found" in line


def test_an_unknown_flag() -> None:
    result = run("validate", "--nope", "examples/events.jsonl")
    assert result.returncode == 2
    assert "--nope" in result.stderr


@pytest.mark.skipif(sys.platform != "linux", reason="needs a file system that takes any bytes")
@pytest.mark.parametrize("fmt", ["text", "json", "github", "junit"])
def test_a_file_name_that_is_not_utf8(tmp_path: Path, fmt: str) -> None:
    name = os.fsdecode(b"bad\xff.jsonl")
    (tmp_path / name).write_bytes(b'{"contract": "search", "payload": {}}\n')
    env = environment(PYTHONIOENCODING="utf-8")  # a strict UTF-8 stdout, as on most desktops
    result = run(
        "validate",
        "--registry",
        str(REPO / "registry"),
        "--format",
        fmt,
        name,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 1
    assert "bad\\udcff.jsonl" in result.stdout


def test_settings_file_and_env(tmp_path: Path) -> None:
    shutil.copytree(REPO / "registry", tmp_path / "contracts")
    (tmp_path / "logkit.yaml").write_text("registry: contracts\n")
    (tmp_path / "events.jsonl").write_bytes((EXAMPLES / "events.jsonl").read_bytes())
    result = run("validate", "events.jsonl", cwd=tmp_path)
    assert lines_named(result.stdout, "events.jsonl") == {3, 4, 6, 7, 8, 9}
    env = environment(LOGKIT_REGISTRY=str(tmp_path / "elsewhere"))
    assert "elsewhere" in one_line_error(run("validate", "events.jsonl", cwd=tmp_path, env=env))


# -- never a traceback ---------------------------------------------------------------------------


EXAMPLE_FILES = sorted(
    str(p.relative_to(REPO)) for p in EXAMPLES.rglob("*") if p.is_file() and p.suffix != ".md"
)


@pytest.mark.parametrize("fmt", ["text", "json", "github", "junit"])
@pytest.mark.parametrize("contract", [[], ["--contract", "search"], ["--contract", "click@1"]])
def test_no_traceback_for_any_example(fmt: str, contract: list[str]) -> None:
    # Every example file, named explicitly (so even .gitattributes is read as JSONL).
    result = run("validate", "--format", fmt, *contract, *EXAMPLE_FILES)  # run() checks stderr
    assert result.returncode == 1, result.stderr
    if fmt == "json":
        assert json.loads(result.stdout)["summary"]["files"] == len(EXAMPLE_FILES)
    elif fmt == "junit":
        ET.fromstring(result.stdout.split("\n", 1)[1])


def nasty_lines() -> list[bytes]:
    search = {
        "user_id": "u",
        "query_id": "2b5f7958-25c1-4851-9bb3-26cb66e24225",
        "raw_query": "q",
        "results": [],
    }

    def routed(**fields: object) -> bytes:
        return json.dumps({"contract": "search", **fields}).encode()

    lines = [
        b"",
        b" ",
        b"\t",
        b"\r",
        b"\x00",
        b"\x00{}",
        b"{}\x00",
        b"\xff\xfe{}",
        b"\xef\xbb\xbf",
        b"\xef\xbb\xbf{}",
        b"null",
        b"true",
        b"0",
        b"[]",
        b"{}",
        b'"',
        b"{",
        b"}",
        b"]",
        b",",
        b"[" * 20_000,
        b"[" * 20_000 + b"]" * 20_000,
        b'{"a":' * 5_000,
        b"1" * 5_000,
        b"-" + b"9" * 400,
        b"1e999999",
        b"-1e-999999",
        b"0.0",
        b"-0",
        b"01",
        b"1.",
        b".5",
        b'{"a": 1, "a": 2}',
        b'{"\\u0000": 1, "\\u0000": 2}',
        b'"\\ud800"',
        b'"\\udfff\\ud800"',
        b'{"contract": null}',
        b'{"contract": [], "payload": 1}',
        b'{"contract": {"a": 1}}',
        b'{"contract": true, "version": true, "payload": true}',
        b'{"contract": "search", "version": 99999999999999999999999999, "payload": {}}',
        b'{"contract": "search", "version": -1, "payload": {}}',
        b'{"contract": "search", "version": 1e400, "payload": {}}',
        b'{"contract": "search\\u0000", "payload": {}}',
        b'{"contract": "' + b"a" * 100_000 + b'", "payload": {}}',
        b'{"contract": "\\u001b[31mred", "payload": {}}',
        b'{"contract": "search.' + b"x." * 500 + b'y", "payload": {}}',
        routed(payload=None),
        routed(payload=[]),
        routed(payload="x"),
        routed(version="2"),
        routed(version=2, payload=dict(search, raw_query="\x00\x1b[2J\u202e%0A::error::x")),
        routed(version=2, payload=dict(search, **{"\n::error::forged": 1, "[red]x[/]": 2})),
        routed(version=2, payload=dict(search, results=[{"position": 2**80}] * 200)),
        routed(version=2, payload=dict(search, raw_query="😀" * 2_000)),
        routed(version=2, payload=dict(search, user_id=["deep"] * 5_000)),
        routed(version=2, payload={str(i): i for i in range(5_000)}),
    ]
    rng = random.Random(20261203)
    tokens = [
        b"{",
        b"}",
        b"[",
        b"]",
        b":",
        b",",
        b'"',
        b"\\",
        b"\\u",
        b"d800",
        b"1",
        b"-",
        b"e",
        b"null",
        b"true",
        b"NaN",
        b"Infinity",
        b'"contract"',
        b'"payload"',
        b'"search"',
        b" ",
        b"\xff",
        b"\xc3",
        b"\xa9",
        b"\x00",
        b"\r",
    ]
    for _ in range(300):
        lines.append(b"".join(rng.choice(tokens) for _ in range(rng.randint(1, 60))))
    for _ in range(100):
        lines.append(
            bytes(rng.randrange(256) for _ in range(rng.randint(1, 200))).replace(b"\n", b"")
        )
    return lines


@pytest.mark.parametrize("fmt", ["text", "json", "github", "junit"])
@pytest.mark.parametrize("contract", [None, "search"])
def test_no_traceback_for_nasty_input(tmp_path: Path, fmt: str, contract: str | None) -> None:
    corpus = tmp_path / "nasty.jsonl"
    lines = nasty_lines()
    corpus.write_bytes(b"\n".join(lines) + b"\n")
    args = ["validate", "--format", fmt, "--max-line-bytes", "50000"]
    result = run(*args, *(["--contract", contract] if contract else []), str(corpus))
    assert result.returncode == 1
    if fmt == "json":
        document = json.loads(result.stdout)
        assert document["summary"]["invalid"] >= 300
        assert all(r["line"] >= 1 for r in document["results"])
    elif fmt == "junit":
        ET.fromstring(result.stdout.split("\n", 1)[1])
    elif fmt == "github":
        assert all(line.startswith("::error ") for line in result.stdout.splitlines())
    else:
        # One finding per line, and no raw control character reaches the terminal.
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", result.stdout)
        assert all(re.match(r"^\S+:\d+: ", line) for line in result.stdout.splitlines())


def test_nasty_input_as_yaml_and_json_files(tmp_path: Path) -> None:
    files = {
        "bomb.yaml": "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n"
            for p, c in zip("abcdefgh", "bcdefghi", strict=True)
        ),
        "loop.yaml": "a: &x [*x]\n",
        "tags.yaml": "a: !!python/object:os.system x\n---\nb: !!binary aGVsbG8=\n",
        "inf.yaml": "a: .inf\n",
        "bad.yaml": "a: [\n",
        "empty.json": "",
        "two.json": "{} {}",
        "deep.json": "[" * 100_000,
        "bin.json": "\udcff\udcfe",
    }
    for name, text in files.items():
        (tmp_path / name).write_bytes(text.encode("utf-8", "surrogateescape"))
    result = run("validate", "--contract", "search", str(tmp_path))
    assert result.returncode == 1
    assert len(result.stdout.splitlines()) >= len(files)


def test_broken_pipe_is_quiet(tmp_path: Path) -> None:
    corpus = tmp_path / "many.jsonl"
    corpus.write_bytes(b'{"contract": "nope", "payload": {}}\n' * 50_000)
    with subprocess.Popen(
        [str(LOGKIT), "validate", str(corpus)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env=environment(),
    ) as child:
        assert child.stdout is not None
        assert child.stderr is not None
        child.stdout.readline()
        child.stdout.close()
        stderr = child.stderr.read().decode()
        child.wait(timeout=60)
    assert "Traceback" not in stderr
    assert "Broken pipe" not in stderr
    assert child.returncode in (0, 1)


def test_interrupt_exits_130_without_a_traceback() -> None:
    with subprocess.Popen(
        [str(LOGKIT), "validate"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env=environment(),
    ) as child:
        assert child.stdin is not None
        child.stdin.write(b'{"contract": "search", "payload": {}}\n')
        child.stdin.flush()
        time.sleep(2)  # started, and blocked reading the open pipe
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate(timeout=60)
    assert "Traceback" not in stderr.decode()
    assert child.returncode == 130


def test_interrupt_says_so() -> None:
    with subprocess.Popen(
        [str(LOGKIT), "validate"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        cwd=REPO,
        env=environment(),
    ) as child:
        time.sleep(2)
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate(timeout=60)
    assert "logkit: interrupted" in stderr.decode()


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_to_the_process_group_stops_validate_workers_cleanly(
    tmp_path: Path, signum: signal.Signals, code: int
) -> None:
    """Ctrl-C, or ``kill -TERM -PGID``, reaches the workers too. Run over and over, each at a
    random moment (the pool starting, blocks in flight): every run exits with the signal's code,
    with no traceback and no process left. Before the workers ignored both signals, SIGINT
    printed workers' tracebacks in most runs and SIGTERM hung about one run in five."""
    line = (EXAMPLES / "valid" / "events.jsonl").read_bytes().splitlines()[0] + b"\n"
    path = tmp_path / "events.jsonl"
    path.write_bytes(line * (100_000_000 // len(line)))  # about 1.5 s of work
    rng = random.Random(signum)
    for run in range(10):
        child = subprocess.Popen(
            [str(LOGKIT), "validate", "--workers", "2", str(path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=REPO,
            env=environment(),
            start_new_session=True,
        )
        time.sleep(rng.uniform(0.2, 0.8))
        os.killpg(child.pid, signum)
        try:
            _, stderr = child.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.communicate()
            pytest.fail(f"run {run}: validate --workers 2 hung after {signum.name}")
        assert child.returncode == code, (run, child.returncode, stderr[-2000:])
        assert b"Traceback" not in stderr, (run, stderr[-2000:])
        with pytest.raises(ProcessLookupError):  # the group is gone: no worker left behind
            os.killpg(child.pid, 0)


# -- memory stays flat ---------------------------------------------------------------------------


_MEASURE = textwrap.dedent("""
    import resource, subprocess, sys
    subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
""")


def max_rss_kib(*args: str) -> int:
    """Peak RSS of one logkit run, measured by a wrapper whose only child is that run."""
    measured = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(LOGKIT), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=environment(),
        check=True,
        timeout=600,
    )
    return int(measured.stdout)


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["1", "2"])
def test_memory_does_not_grow_with_input_size(tmp_path: Path, workers: str) -> None:
    valid = (EXAMPLES / "valid" / "events.jsonl").read_bytes()
    mixed = (EXAMPLES / "events.jsonl").read_bytes().splitlines(keepends=True)
    block = valid * 166 + b"".join(mixed[i - 1] for i in (3, 4, 6, 7))  # 1,000 lines, 4 bad
    assert block.count(b"\n") == 1_000
    small, large = tmp_path / "small.jsonl", tmp_path / "large.jsonl"
    small.write_bytes(block * 20)
    with large.open("wb") as out:
        for _ in range(200):
            out.write(block)
    args = ["validate", "--workers", workers]
    small_kib = max_rss_kib(*args, str(small))
    large_kib = max_rss_kib(*args, str(large))
    assert large_kib - small_kib < 30 * 1024, (small_kib, large_kib)


@pytest.mark.slow
def test_memory_does_not_grow_with_distinct_unknown_routes(tmp_path: Path) -> None:
    line = '{{"contract": "search", "version": {}, "payload": {{}}}}\n'
    small, large = tmp_path / "small.jsonl", tmp_path / "large.jsonl"
    small.write_text("".join(line.format(n) for n in range(3, 10_003)))
    large.write_text("".join(line.format(n) for n in range(3, 100_003)))
    small_kib = max_rss_kib("validate", "--workers", "1", str(small))
    large_kib = max_rss_kib("validate", "--workers", "1", str(large))
    assert large_kib - small_kib < 30 * 1024, (small_kib, large_kib)
