"""check-compat and diff end to end through ``logkit.cli.main`` on small registries."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema_rs
import pytest
import yaml

from logkit.cli import main

OWNER = {"owner": "team@example.com"}


def _contract(props: dict[str, object], required: list[str], **meta: object) -> dict[str, object]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "x-logkit": {**OWNER, **meta},
        "type": "object",
        "additionalProperties": False,
        "required": required,
        "properties": props,
    }


def _write(root: Path, name: str, version: int, schema: dict[str, object]) -> Path:
    folder = root / "registry" / name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{version}.yaml"
    path.write_text(yaml.safe_dump(schema))
    return path


@pytest.fixture
def breaking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: None) -> Path:
    monkeypatch.chdir(tmp_path)
    s = {"type": "string"}
    _write(tmp_path, "order", 1, _contract({"id": s, "note": s}, ["id"]))
    _write(tmp_path, "order", 2, _contract({"id": s, "note": s}, ["id", "note"]))
    _write(tmp_path, "user", 1, _contract({"id": s}, ["id"]))
    return tmp_path


def test_example_registry_is_backward_compatible(
    example_registry: Path, clean_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["check-compat", "--registry", str(example_registry), "--format", "json"])
    document = json.loads(capsys.readouterr().out)
    assert code == 0
    (pair,) = [p for p in document["pairs"] if p["contract"] == "search"]
    assert pair["relations"]["BACKWARD"]["answer"] == "compatible"
    # FORWARD is not required under BACKWARD: not decided, but what could break it is a warning
    assert pair["relations"]["FORWARD"]["answer"] == "unchecked"
    assert {r["severity"] for r in document["results"]} == {"warning"}


def test_example_registry_full_mode_breaks(
    example_registry: Path, clean_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-compat", "--registry", str(example_registry), "--mode", "FULL"]) == 1
    out = capsys.readouterr().out
    assert "[property-added-to-closed-object]" in out
    assert "Witness" in out


def test_required_added_is_breaking_with_a_verified_witness(
    breaking: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["check-compat", "--format", "json"])
    document = json.loads(capsys.readouterr().out)
    assert code == 1
    (error,) = [r for r in document["results"] if r["severity"] == "error"]
    assert error["rule"] == "required-added"
    assert error["new_pointer"] == "/required"
    assert error["fix"]
    event = error["witness"]["event"]
    old = yaml.safe_load((breaking / "registry/order/1.yaml").read_text())
    new = yaml.safe_load((breaking / "registry/order/2.yaml").read_text())
    assert jsonschema_rs.validator_for(old).is_valid(event)
    assert not jsonschema_rs.validator_for(new).is_valid(event)


def test_files_select_their_contracts(breaking: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-compat", "registry/user/1.yaml", "README.md"]) == 0
    assert "1 contract, 0 version pairs" in capsys.readouterr().err
    assert main(["check-compat", "registry/order/2.yaml"]) == 1


def test_mode_none_and_override(breaking: Path) -> None:
    assert main(["check-compat", "--mode", "NONE"]) == 0
    assert main(["check-compat", "--mode", "FORWARD"]) == 0
    assert main(["check-compat", "--mode", "SIDEWAYS"]) == 2
    assert main(["check-compat", "--policy", "loose"]) == 2


def test_ignore_entries_accept_a_break(breaking: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = {
        "compat": {
            "ignore": [
                {
                    "contract": "order",
                    "version": 2,
                    "rule": "required-added",
                    "reason": "all producers send it",
                }
            ]
        }
    }
    (breaking / "logkit.yaml").write_text(yaml.safe_dump(settings))
    assert main(["check-compat", "--format", "github"]) == 0
    assert "ignored: all producers send it" in capsys.readouterr().out
    settings["compat"]["ignore"][0].pop("reason")  # type: ignore[index]
    (breaking / "logkit.yaml").write_text(yaml.safe_dump(settings))
    assert main(["check-compat"]) == 2


def test_junit_and_github_formats(breaking: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-compat", "--format", "github"]) == 1
    assert capsys.readouterr().out.startswith("::error file=registry/order/2.yaml,line=")
    assert main(["check-compat", "--format", "junit"]) == 1
    assert "<testsuite" in capsys.readouterr().out


def test_diff_by_name_and_by_file(breaking: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", "order", "1", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("order@1 -> order@2: NOT compatible under BACKWARD")
    assert "[required-added]" in out
    assert main(["diff", "registry/order/1.yaml", "registry/order/2.yaml", "-f", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [c["rule"] for c in document["changes"]] == ["required-added"]
    assert document["edits"][0]["rule"] == "required-added"
    assert main(["diff", "order", "1"]) == 2
    assert main(["diff", "order", "1", "9"]) == 2


def test_shared_file_selects_contracts_using_it(
    example_registry: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    clean_env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    shutil.copytree(example_registry, tmp_path / "registry")
    monkeypatch.chdir(tmp_path)
    assert main(["check-compat", "registry/_shared/common.yaml"]) == 0
    assert "2 contracts" in capsys.readouterr().err


def _git(root: Path, *args: str) -> None:
    import subprocess

    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


def test_against_a_git_ref_guards_published_versions(
    breaking: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _git(breaking, "init", "-q")
    _git(breaking, "add", "registry")
    _git(breaking, "commit", "-qm", "publish")
    assert main(["check-compat", "--against", "HEAD", "--mode", "NONE"]) == 0
    capsys.readouterr()

    user = breaking / "registry/user/1.yaml"
    schema = yaml.safe_load(user.read_text())
    schema["description"] = "documentation only"
    user.write_text(yaml.safe_dump(schema))
    assert main(["check-compat", "--against", "HEAD", "--mode", "NONE"]) == 0
    assert "[published-version-documentation-changed]" in capsys.readouterr().out

    schema["properties"]["id"]["maxLength"] = 3
    user.write_text(yaml.safe_dump(schema))
    assert main(["check-compat", "--against", "HEAD", "--mode", "NONE", "-f", "json"]) == 1
    (result,) = json.loads(capsys.readouterr().out)["results"][-1:]
    assert result["rule"] == "published-version-changed"
    assert result["witness"] is not None

    user.unlink()
    (breaking / "registry/user/2.yaml").write_text(yaml.safe_dump(schema))
    assert main(["check-compat", "--against", "HEAD", "--mode", "NONE"]) == 1
    assert "[published-version-deleted]" in capsys.readouterr().out
    assert main(["check-compat", "--against", "no-such-ref"]) == 2


def test_settings_choose_the_mode_and_policy(
    breaking: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # required-added breaks BACKWARD only: FORWARD from the settings lets it pass
    (breaking / "logkit.yaml").write_text(yaml.safe_dump({"compat": {"mode": "FORWARD"}}))
    assert main(["check-compat"]) == 0
    per_contract = {"compat": {"mode": "FORWARD", "contracts": {"order": "FULL"}}}
    (breaking / "logkit.yaml").write_text(yaml.safe_dump(per_contract))
    assert main(["check-compat"]) == 1
    assert main(["check-compat", "--mode", "NONE"]) == 0  # the flag wins
    (breaking / "logkit.yaml").write_text(yaml.safe_dump({"compat": {"policy": "sloppy"}}))
    assert main(["check-compat"]) == 2
    assert "unknown policy 'sloppy'" in capsys.readouterr().err


def test_contract_mode_comes_from_x_logkit(
    breaking: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = breaking / "registry/order/2.yaml"
    schema = yaml.safe_load(path.read_text())
    schema["x-logkit"]["compatibility"] = "FORWARD"
    path.write_text(yaml.safe_dump(schema))
    assert main(["check-compat", "--format", "json"]) == 0
    (pair,) = json.loads(capsys.readouterr().out)["pairs"]
    assert pair["mode"] == "FORWARD"


@pytest.mark.parametrize("fmt", ["json", "text", "github"])
def test_two_processes_report_what_one_does(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    clean_env: None,
    capsys: pytest.CaptureFixture[str],
    fmt: str,
) -> None:
    import logkit.commands.compat as compat

    monkeypatch.chdir(tmp_path)
    s, n = {"type": "string", "maxLength": 20}, {"type": "integer", "minimum": 0}
    for i in range(6):
        mode = {"compatibility": "FULL_TRANSITIVE"} if i == 4 else {}
        _write(tmp_path, f"c{i}", 1, _contract({"id": s, "n": n}, ["id"], **mode))
        _write(tmp_path, f"c{i}", 2, _contract({"id": s, "n": n, "x": s}, ["id"], **mode))
        third = {"id": s, "x": s} if i % 2 else {"id": {"type": "string", "maxLength": 9}, "n": n}
        _write(tmp_path, f"c{i}", 3, _contract(third, ["id", "x"] if i == 3 else ["id"], **mode))
    outputs = []
    for versions in (10**9, 0):  # one process, then two
        monkeypatch.setattr(compat, "PARALLEL_VERSIONS", versions)
        code = main(["check-compat", "--registry", "registry", "--format", fmt])
        outputs.append((code, capsys.readouterr()))
    assert outputs[0] == outputs[1]
    assert outputs[0][0] == 1
