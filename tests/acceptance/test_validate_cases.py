"""Data-driven acceptance tests: one folder per case under ``tests/cases/validate/``.

A case folder holds:

- ``contract.yaml`` (becomes ``registry/demo/1.yaml``) or a whole ``registry/`` folder;
- one event file named ``events.<jsonl|ndjson|json|yaml|yml>`` (bytes used exactly as stored);
- ``args.txt`` (optional): extra command-line arguments, shell-quoted, e.g. ``--contract demo``;
- ``expected.txt``: the exact stdout of ``logkit validate --format text --no-color``;
- ``expected_exit``: the exit code (0, 1 or 2);
- ``expected_stderr.txt`` (optional): the exact stderr, with ``{tmp}`` standing for the
  temporary folder the case runs in;
- ``xfail.txt`` (optional): why the case fails today (a known bug, reported upstream).

The CLI runs in a temporary folder holding ``registry/`` and the event file, so file names in
the output are short and stable. Adding a case is adding a folder.
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest

from logkit.cli import main

CASES = Path(__file__).resolve().parent.parent / "cases" / "validate"
EVENT_FILES = ("events.jsonl", "events.ndjson", "events.json", "events.yaml", "events.yml")


def _cases() -> list[object]:
    params = []
    for folder in sorted(p for p in CASES.iterdir() if p.is_dir()):
        xfail = folder / "xfail.txt"
        marks = (
            [pytest.mark.xfail(strict=True, reason=xfail.read_text().strip())]
            if xfail.is_file()
            else []
        )
        params.append(pytest.param(folder, id=folder.name, marks=marks))
    return params


def _event_file(case: Path) -> Path:
    found = [case / name for name in EVENT_FILES if (case / name).is_file()]
    assert len(found) == 1, f"{case.name}: expected exactly one events.* file, found {found}"
    return found[0]


def _build(case: Path, into: Path) -> Path:
    """Lay the case out in ``into``: ``registry/`` plus the event file; return the event file."""
    if (case / "registry").is_dir():
        shutil.copytree(case / "registry", into / "registry")
    else:
        (into / "registry" / "demo").mkdir(parents=True)
        shutil.copyfile(case / "contract.yaml", into / "registry" / "demo" / "1.yaml")
    events = _event_file(case)
    shutil.copyfile(events, into / events.name)
    return into / events.name


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize("workers", [[], ["--workers", "2"]], ids=["", "workers2"])
@pytest.mark.parametrize("case", _cases())
def test_validate_case(
    case: Path,
    workers: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each case, in this process and (same output) with worker processes."""
    events = _build(case, tmp_path)
    args_file = case / "args.txt"
    extra = [*workers, *(shlex.split(args_file.read_text()) if args_file.is_file() else [])]
    monkeypatch.chdir(tmp_path)

    code = main(
        [
            "validate",
            "--format",
            "text",
            "--no-color",
            "--registry",
            "registry",
            *extra,
            events.name,
        ]
    )

    out, err = capsys.readouterr()
    assert "Traceback" not in err
    assert "internal error" not in err
    assert out == (case / "expected.txt").read_text(encoding="utf-8")
    assert code == int((case / "expected_exit").read_text())
    if (case / "expected_stderr.txt").is_file():
        shown = err.replace(str(tmp_path.resolve()), "{tmp}")
        assert shown == (case / "expected_stderr.txt").read_text(encoding="utf-8")
    if code == 2:
        # A usage or configuration error is one clear line on stderr and nothing on stdout.
        assert out == ""
        assert len(err.splitlines()) == 1, err
        assert err.startswith("logkit: error: ")


def test_there_are_enough_cases() -> None:
    cases = [p for p in CASES.iterdir() if p.is_dir()]
    assert len(cases) >= 25
    codes = {int((p / "expected_exit").read_text()) for p in cases}
    assert codes == {0, 1, 2}
