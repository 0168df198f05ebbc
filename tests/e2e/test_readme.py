"""The README's commands and outputs are real: each ``$ command`` in a ``console`` block is run
with the installed ``logkit`` and its output compared with what the README shows.

In the README, a line ``…`` stands for any number of lines, and a line ending in ``…`` matches any
line that starts with what comes before it. ``$ echo $?`` checks the previous exit code.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")
BIN = Path(sys.executable).parent


STORE = Path(tempfile.mkdtemp(prefix="logkit-readme-")) / "store"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGKIT_")}
    env["LOGKIT_STORE"] = str(STORE)  # the README's ingest and tail use a fresh store
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["NO_COLOR"] = "1"
    env.pop("FORCE_COLOR", None)
    return env


def _sessions() -> list[tuple[str, list[str], int | None]]:
    """``(command, expected lines, expected exit code or None)`` from the console blocks."""
    sessions: list[tuple[str, list[str], int | None]] = []
    for block in re.findall(r"```console\n(.*?)```", README, flags=re.S):
        current: tuple[str, list[str]] | None = None
        for line in block.splitlines():
            if line.startswith("$ "):
                if line == "$ echo $?":
                    continue  # handled below, attached to the previous command
                if current:
                    sessions.append((*current, None))
                current = (line[2:], [])
            elif current is not None:
                current[1].append(line)
        if current:
            sessions.append((*current, None))
    # Attach "echo $?" results: the expected code is the last line of the command's output.
    fixed = []
    for command, lines, _ in sessions:
        code = None
        if lines and re.fullmatch(r"\d+", lines[-1]) and f"$ {command}\n" in README:
            tail = README.split(f"$ {command}\n", 1)[1]
            if re.search(r"\n\$ echo \$\?\n" + re.escape(lines[-1]) + r"\n", tail[:4000]):
                code = int(lines.pop())
        fixed.append((command, lines, code))
    return fixed


def _matches(expected: list[str], actual: list[str]) -> bool:
    """Match with ``…`` wildcards (a whole line: any lines; a line's end: any rest)."""
    if not expected:
        return not actual
    head, rest = expected[0], expected[1:]
    if head == "…":
        return any(_matches(rest, actual[i:]) for i in range(len(actual) + 1))
    if not actual:
        return False
    line = actual[0].rstrip()
    if head.endswith("…"):
        ok = line.startswith(head[:-1].rstrip())
    else:
        ok = line == head.rstrip()
    return ok and _matches(rest, actual[1:])


SESSIONS = [s for s in _sessions() if "/tmp/broken" not in s[0]]


def test_readme_has_console_sessions() -> None:
    assert len(SESSIONS) >= 8


@pytest.mark.parametrize(("command", "expected", "code"), SESSIONS, ids=[s[0] for s in SESSIONS])
def test_readme_command(command: str, expected: list[str], code: int | None) -> None:
    if shutil.which("logkit", path=str(BIN)) is None:
        pytest.fail(f"the logkit command is not installed beside {sys.executable}")
    proc = subprocess.run(
        ["bash", "-c", command],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    actual = proc.stdout.splitlines() + proc.stderr.splitlines()
    assert "Traceback" not in proc.stderr
    assert _matches(expected, actual), (
        f"README output of {command!r} is stale.\n--- README\n"
        + "\n".join(expected)
        + "\n--- actual\n"
        + "\n".join(actual)
    )
    if code is not None:
        assert proc.returncode == code


def test_readme_opens_with_the_two_commands_and_ci_runs_the_second() -> None:
    blocks = re.findall(r"```sh\n(.*?)\n```", README, flags=re.S)
    setup_and_run, setup_and_test = blocks[0], blocks[1]
    assert "logkit validate" in setup_and_run
    assert "pytest" in setup_and_test
    assert setup_and_test in (REPO / ".ci" / "run").read_text(encoding="utf-8")


def test_readme_main_job_runs() -> None:
    """The logkit part of the first command, with the installed command."""
    main_job = re.findall(r"```sh\n(.*?)\n```", README, flags=re.S)[0]
    logkit_part = " && ".join(
        part.strip().replace(".venv/bin/", "")
        for part in main_job.split("&&")
        if "logkit" in part and "pip" not in part
    )
    proc = subprocess.run(
        ["bash", "-c", logkit_part],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "all valid" in proc.stderr
