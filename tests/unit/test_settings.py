"""Settings, strongest first: flags > LOGKIT_* env > logkit.yaml > pyproject [tool.logkit]."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from logkit.cli import main
from logkit.errors import ConfigError
from logkit.parse import DEFAULT_MAX_DEPTH, DEFAULT_MAX_LINE_BYTES
from logkit.settings import Settings, find_upwards, load_settings


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder with nothing above it that logkit would read."""
    root = tmp_path / "project"
    root.mkdir()
    assert find_upwards(tmp_path, "logkit.yaml") is None
    assert find_upwards(tmp_path, "pyproject.toml") is None
    return root


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


PYPROJECT = """\
[project]
name = "x"

[tool.logkit]
registry = "from-pyproject"
store = "pyproject-store"
max_line_bytes = 111
max_depth = 11
"""

LOGKIT_YAML = """\
registry: from-yaml
max_line_bytes: 222
"""


def test_defaults(project: Path) -> None:
    settings = load_settings(cwd=project, env={})
    assert settings == Settings()
    assert settings.registry == Path("registry")
    assert settings.store == Path(".logkit/store")
    assert settings.max_line_bytes == DEFAULT_MAX_LINE_BYTES
    assert settings.max_depth == DEFAULT_MAX_DEPTH
    assert settings.origin == "defaults"
    assert settings.warnings == []


def test_pyproject_section(project: Path) -> None:
    write(project / "pyproject.toml", PYPROJECT)
    settings = load_settings(cwd=project, env={})
    # Relative paths are relative to the file that names them.
    assert settings.registry == project / "from-pyproject"
    assert settings.store == project / "pyproject-store"
    assert (settings.max_line_bytes, settings.max_depth) == (111, 11)
    assert settings.origin == str(project / "pyproject.toml")


def test_pyproject_without_a_logkit_section_is_defaults(project: Path) -> None:
    write(project / "pyproject.toml", '[project]\nname = "x"\n')
    assert load_settings(cwd=project, env={}) == Settings()


def test_logkit_yaml_beats_pyproject(project: Path) -> None:
    write(project / "pyproject.toml", PYPROJECT)
    write(project / "logkit.yaml", LOGKIT_YAML)
    settings = load_settings(cwd=project, env={})
    assert settings.registry == project / "from-yaml"
    assert settings.max_line_bytes == 222
    # One settings file is read: the pyproject's values do not fill the gaps.
    assert settings.max_depth == DEFAULT_MAX_DEPTH
    assert settings.origin == str(project / "logkit.yaml")


def test_the_nearest_parent_is_found_from_a_subfolder(project: Path) -> None:
    write(project / "logkit.yaml", LOGKIT_YAML)
    deep = project / "services" / "api"
    deep.mkdir(parents=True)
    settings = load_settings(cwd=deep, env={})
    assert settings.registry == project / "from-yaml"
    write(project / "services" / "logkit.yaml", "registry: nearer\n")
    assert load_settings(cwd=deep, env={}).registry == project / "services" / "nearer"


def test_env_beats_the_file(project: Path) -> None:
    write(project / "logkit.yaml", LOGKIT_YAML)
    env = {"LOGKIT_REGISTRY": "env-registry", "LOGKIT_MAX_LINE_BYTES": "333"}
    settings = load_settings(cwd=project, env=env)
    assert settings.registry == Path("env-registry")  # as given: relative to the working folder
    assert settings.max_line_bytes == 333


def test_flags_beat_env(project: Path) -> None:
    write(project / "logkit.yaml", LOGKIT_YAML)
    env = {"LOGKIT_REGISTRY": "env-registry", "LOGKIT_MAX_LINE_BYTES": "333"}
    settings = load_settings(
        cwd=project, env=env, registry=Path("flag-registry"), max_line_bytes=444
    )
    assert settings.registry == Path("flag-registry")
    assert settings.max_line_bytes == 444


def test_a_flag_left_unset_falls_through(project: Path) -> None:
    env = {"LOGKIT_REGISTRY": "env-registry"}
    settings = load_settings(cwd=project, env=env, registry=None, max_line_bytes=None)
    assert settings.registry == Path("env-registry")
    assert settings.max_line_bytes == DEFAULT_MAX_LINE_BYTES


def test_an_empty_env_variable_is_ignored(project: Path) -> None:
    write(project / "logkit.yaml", LOGKIT_YAML)
    settings = load_settings(cwd=project, env={"LOGKIT_REGISTRY": ""})
    assert settings.registry == project / "from-yaml"


def test_compat_comes_from_the_file_only(project: Path) -> None:
    write(project / "logkit.yaml", "compat:\n  ignore: [description]\n")
    settings = load_settings(cwd=project, env={"LOGKIT_COMPAT": "whatever"})
    assert settings.compat == {"ignore": ["description"]}


def test_absolute_paths_stay_absolute(project: Path, tmp_path: Path) -> None:
    write(project / "logkit.yaml", f"registry: {tmp_path / 'elsewhere'}\n")
    assert load_settings(cwd=project, env={}).registry == tmp_path / "elsewhere"


@pytest.mark.parametrize(
    ("file", "text"),
    [
        ("logkit.yaml", "registy: x\nmax_line_byte: 5\n"),
        ("pyproject.toml", '[tool.logkit]\nregisty = "x"\nmax_line_byte = 5\n'),
    ],
)
def test_unknown_keys_are_warned_about_with_a_hint(project: Path, file: str, text: str) -> None:
    path = write(project / file, text)
    settings = load_settings(cwd=project, env={})
    assert settings.warnings == [
        f"{path}: unknown setting 'registy' (did you mean 'registry'?)",
        f"{path}: unknown setting 'max_line_byte' (did you mean 'max_line_bytes'?)",
    ]
    assert settings.registry == Path("registry")


def test_an_unknown_key_with_nothing_close_has_no_hint(project: Path) -> None:
    path = write(project / "logkit.yaml", "colour_scheme: dark\n")
    assert load_settings(cwd=project, env={}).warnings == [
        f"{path}: unknown setting 'colour_scheme'"
    ]


def test_an_empty_logkit_yaml_is_defaults(project: Path) -> None:
    write(project / "logkit.yaml", "# nothing yet\n")
    settings = load_settings(cwd=project, env={})
    assert settings.registry == Path("registry")
    assert settings.origin == str(project / "logkit.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("max_line_bytes: lots\n", "max_line_bytes must be a whole number, found 'lots'"),
        ("max_line_bytes: 0\n", "max_line_bytes must be at least 1, found 0"),
        ("max_depth: -3\n", "max_depth must be at least 1, found -3"),
        ("max_line_bytes: true\n", "max_line_bytes must be a whole number, found True"),
        ("max_depth: 2.5\n", "max_depth must be a whole number, found 2.5"),
        ("max_depth: [1]\n", "max_depth must be a whole number, found [1]"),
        ("registry: [a, b]\n", "registry must be a path"),
        ("registry: ''\n", "registry must be a path"),
        ("store: 5\n", "store must be a path"),
        ("compat: strict\n", "compat must be a mapping"),
        ("- registry\n", "settings must be a mapping"),
        ("registry: [unclosed\n", "cannot read settings"),
        ("registry: a\nregistry: b\n", "duplicate key 'registry'"),
    ],
)
def test_bad_values_in_logkit_yaml(project: Path, text: str, message: str) -> None:
    path = write(project / "logkit.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_settings(cwd=project, env={})
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_bad_values_in_env_and_flags_name_their_origin(project: Path) -> None:
    with pytest.raises(ConfigError, match=r"^LOGKIT_MAX_DEPTH: max_depth must be a whole"):
        load_settings(cwd=project, env={"LOGKIT_MAX_DEPTH": "deep"})
    with pytest.raises(ConfigError, match=r"^--max-line-bytes: max_line_bytes must be at least 1"):
        load_settings(cwd=project, env={}, max_line_bytes=0)


def test_a_broken_pyproject_is_an_error(project: Path) -> None:
    write(project / "pyproject.toml", "[tool.logkit\n")
    with pytest.raises(ConfigError, match=r"pyproject\.toml: cannot read"):
        load_settings(cwd=project, env={})


# -- through the CLI ---------------------------------------------------------------------------


@pytest.mark.usefixtures("clean_env")
def test_the_cli_reads_settings_and_prints_warnings(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write(project / "contracts" / "demo" / "1.yaml", "type: object\nrequired: [a]\n")
    write(project / "logkit.yaml", "registry: contracts\nmax_line_bytes: 20\nregistyr: x\n")
    write(project / "events.jsonl", '{"a": 1}\n{"a": "' + "x" * 30 + '"}\n{"b": 1}\n')
    monkeypatch.chdir(project)

    code = main(["validate", "--contract", "demo", "--no-color", "events.jsonl"])

    out, err = capsys.readouterr()
    assert code == 1
    assert out == (
        "events.jsonl:2: demo@1 (root) [too_large] event is 39 bytes, over the limit of 20 "
        "(raise it with --max-line-bytes)\n"
        "events.jsonl:3: demo@1 (root) [required] missing required property 'a'\n"
    )
    assert err.splitlines()[0] == (
        f"logkit: warning: {project / 'logkit.yaml'}: unknown setting 'registyr' "
        "(did you mean 'registry'?)"
    )

    # The environment beats the file, and the flag beats the environment.
    monkeypatch.setenv("LOGKIT_MAX_LINE_BYTES", "100")
    assert main(["validate", "--contract", "demo", "--no-color", "events.jsonl"]) == 1
    assert "too_large" not in capsys.readouterr().out
    code = main(
        ["validate", "--contract", "demo", "--no-color", "--max-line-bytes", "30", "events.jsonl"]
    )
    assert code == 1
    assert "over the limit of 30" in capsys.readouterr().out


def test_a_pyproject_whose_tool_is_not_a_table_is_not_ours(project: Path) -> None:
    write(project / "pyproject.toml", "tool = 1\n")
    assert load_settings(cwd=project, env={}) == Settings()


def test_a_tool_logkit_that_is_not_a_table_is_an_error(project: Path) -> None:
    write(project / "pyproject.toml", '[tool]\nlogkit = "registry"\n')
    with pytest.raises(ConfigError, match=r"\[tool\.logkit\] must be a table"):
        load_settings(cwd=project, env={})
