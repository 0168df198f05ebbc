"""Contracts on disk -> versioned Contract objects, cached validators, offline $refs only."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from logkit.errors import RegistryError, UnknownContractError, UsageError
from logkit.registry import ContractRef, Registry, did_you_mean

HEAD = """\
$schema: https://json-schema.org/draft/2020-12/schema
title: Demo
x-logkit:
  owner: qa@example.com
"""


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def contract(body: str = "type: object\n") -> str:
    return HEAD + textwrap.dedent(body)


@pytest.fixture
def registry_dir(tmp_path: Path) -> Path:
    return write(
        tmp_path / "registry",
        {
            "search/1.yaml": contract("type: object\nrequired: [q]\n"),
            "search/2.yaml": contract("type: object\nrequired: [q, page]\n"),
            "search/10.json": json.dumps({"type": "object", "required": ["q", "ten"]}),
            "checkout.payment_completed/1.yaml": contract(),
            "_shared/common.yaml": "$defs:\n  id: {type: string, minLength: 1}\n",
        },
    )


# -- names and versions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("search", ContractRef("search")),
        ("search@2", ContractRef("search", 2)),
        ("search@10", ContractRef("search", 10)),
        (" search@3 ", ContractRef("search", 3)),
        ("checkout.payment_completed", ContractRef("checkout.payment_completed")),
        ("a1_b.c2@7", ContractRef("a1_b.c2", 7)),
    ],
)
def test_contract_ref_parse(text: str, expected: ContractRef) -> None:
    assert ContractRef.parse(text) == expected
    assert str(expected) == text.strip()


@pytest.mark.parametrize(
    "text",
    [
        "Search",
        "1search",
        "_search",
        "search-v2",
        "search.",
        ".search",
        "a..b",
        "a.1b",
        "",
        "search@0",
        "search@01",
        "search@-1",
        "search@two",
        "search@",
        "search@1.5",
        "search@2@3",
    ],
)
def test_contract_ref_parse_refuses(text: str) -> None:
    with pytest.raises(UsageError):
        ContractRef.parse(text)


def test_did_you_mean() -> None:
    assert did_you_mean("serch", ["search", "click"]) == " (did you mean 'search'?)"
    assert did_you_mean("zzzz", ["search", "click"]) == ""
    assert did_you_mean("x", []) == ""


def test_load_and_look_up(registry_dir: Path) -> None:
    registry = Registry.load(registry_dir)
    assert registry.names() == ["checkout.payment_completed", "search"]
    assert registry.versions("search") == [1, 2, 10]  # numeric order, not text order
    assert registry.get("search").version == 10  # a bare name is the latest
    assert registry.get("search@2").version == 2
    assert registry.get(ContractRef("search", 1)).label == "search@1"
    assert [c.label for c in registry] == [
        "checkout.payment_completed@1",
        "search@1",
        "search@2",
        "search@10",
    ]
    assert registry.shared_files == [(registry_dir / "_shared" / "common.yaml")]
    assert registry.problems == []


def test_contract_metadata_and_defaults(tmp_path: Path) -> None:
    root = write(
        tmp_path / "r",
        {
            "full/1.yaml": """\
                title: Full
                description: Everything set.
                x-logkit: {owner: a@example.com, compatibility: FULL, status: deprecated}
                """,
            "bare/1.yaml": "type: object\n",
        },
    )
    registry = Registry.load(root)
    full, bare = registry.get("full"), registry.get("bare")
    assert (full.owner, full.compatibility, full.status) == ("a@example.com", "FULL", "deprecated")
    assert (full.title, full.description) == ("Full", "Everything set.")
    assert (bare.owner, bare.compatibility, bare.status, bare.title) == (
        None,
        "BACKWARD",
        "active",
        "",
    )


def test_unknown_contract_suggests_the_closest_name(registry_dir: Path) -> None:
    registry = Registry.load(registry_dir)
    with pytest.raises(
        UnknownContractError, match=r"^unknown contract 'serch' \(did you mean 'search'\?\)$"
    ):
        registry.get("serch")
    with pytest.raises(UnknownContractError, match=r"^unknown contract 'zzz'$"):
        registry.get("zzz")
    with pytest.raises(UnknownContractError, match=r"has no version 3 \(versions: 1, 2, 10\)"):
        registry.get("search@3")


def test_unknown_contract_in_an_empty_registry_says_it_is_empty(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(UnknownContractError, match="is empty"):
        Registry.load(tmp_path / "empty").get("search")


def test_a_missing_registry_folder(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match=r"not found.*LOGKIT_REGISTRY"):
        Registry.load(tmp_path / "nope")
    (tmp_path / "file").write_text("")
    with pytest.raises(RegistryError, match="not found"):
        Registry.load(tmp_path / "file")


# -- bad files are problems ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "rule", "where"),
    [
        ({"stray.yaml": "type: object\n"}, "layout", "stray.yaml"),
        ({"Bad-Name/1.yaml": "type: object\n"}, "contract-name", "Bad-Name"),
        ({"demo/01.yaml": "type: object\n"}, "version-name", "demo/01.yaml"),
        ({"demo/0.yaml": "type: object\n"}, "version-name", "demo/0.yaml"),
        ({"demo/v1.yaml": "type: object\n"}, "version-name", "demo/v1.yaml"),
        ({"demo/1.yaml": "type: object\n", "demo/1.json": "{}"}, "duplicate-version", "1.yaml"),
        ({"demo/1.yaml": "a: 1\na: 2\n"}, "parse", "demo/1.yaml"),
        ({"demo/1.yaml": "a: [1\n"}, "parse", "demo/1.yaml"),
        ({"demo/1.json": '{"a": 1, "a": 2}'}, "parse", "demo/1.json"),
        ({"demo/1.json": '{"maximum": NaN}'}, "parse", "demo/1.json"),
        ({"demo/1.yaml": "- a list\n"}, "not-a-schema", "demo/1.yaml"),
        ({"demo/1.yaml": "just text\n"}, "not-a-schema", "demo/1.yaml"),
        ({"demo/notes.txt": "hello\n"}, "empty-contract", "demo"),
    ],
)
def test_bad_files_are_problems(
    tmp_path: Path, files: dict[str, str], rule: str, where: str
) -> None:
    root = write(tmp_path / "r", {"good/1.yaml": "type: object\n", **files})
    registry = Registry.load(root, strict=False)
    # A folder left with no usable version is also reported as empty: that is the second.
    assert [p.rule for p in registry.problems][:1] == [rule]
    assert {p.rule for p in registry.problems[1:]} <= {"empty-contract"}
    assert str(registry.problems[0].path).endswith(where)
    assert "good" in registry.names()
    with pytest.raises(RegistryError) as info:
        Registry.load(root)
    assert registry.problems[0].message in str(info.value)


def test_strict_load_counts_the_other_problems(tmp_path: Path) -> None:
    root = write(
        tmp_path / "r",
        {
            "a/1.yaml": "{}",
            "a/01.yaml": "{}",
            "b/1.yaml": "{}",
            "b/x.yaml": "{}",
            "c/1.yaml": "[1]",
            "c/2.yaml": "{}",
            "stray.json": "{}",
        },
    )
    with pytest.raises(RegistryError, match=r"\(and 3 more problems; run `logkit lint`\)$"):
        Registry.load(root)


def test_a_yaml_problem_names_its_line(tmp_path: Path) -> None:
    root = write(tmp_path / "r", {"demo/1.yaml": "type: object\nrequired: [a]\nrequired: [b]\n"})
    with pytest.raises(RegistryError) as info:
        Registry.load(root)
    assert "duplicate key 'required'" in str(info.value)
    assert "1.yaml:3" in str(info.value)
    problem = Registry.load(root, strict=False).problems[0]
    assert problem.line == 3


def test_hidden_files_and_folders_are_ignored(tmp_path: Path) -> None:
    root = write(
        tmp_path / "r",
        {
            "demo/1.yaml": "type: object\n",
            "demo/.1.yaml.swp": "garbage",
            ".git/config.yaml": "x: [",
            ".hidden.yaml": "x: [",
            "demo/README.md": "not a version",
        },
    )
    registry = Registry.load(root)
    assert registry.names() == ["demo"]
    assert registry.problems == []


def test_a_contract_that_is_not_a_json_schema(tmp_path: Path) -> None:
    root = write(tmp_path / "r", {"demo/1.yaml": "type: 5\n"})
    registry = Registry.load(root)  # loading reads files; compiling checks them
    with pytest.raises(RegistryError, match=r"demo@1 is not a valid JSON Schema.*logkit lint"):
        registry.validator("demo")


# -- validators -------------------------------------------------------------------------------


def test_the_validator_is_built_once_and_cached(registry_dir: Path) -> None:
    registry = Registry.load(registry_dir)
    first = registry.validator("search@2")
    assert registry.validator("search@2") is first
    assert registry.validator(ContractRef("search", 2)) is first
    assert registry.validator(registry.get("search@2")) is first
    assert registry.validator("search@1") is not first
    assert registry.validator("search") is registry.validator("search@10")


def test_validate_returns_issues(registry_dir: Path) -> None:
    registry = Registry.load(registry_dir)
    assert registry.validate("search@2", {"q": "x", "page": 1}) == []
    [issue] = registry.validate("search@2", {"q": "x"})
    assert (issue.path, issue.rule) == ("", "required")


def test_shared_refs_resolve_inside_the_registry(tmp_path: Path) -> None:
    root = write(
        tmp_path / "r",
        {
            "_shared/common.yaml": """\
                $defs:
                  id: {$ref: "ids.yaml#/$defs/id"}
                """,
            "_shared/ids.yaml": "$defs:\n  id: {type: string, format: uuid}\n",
            "demo/1.yaml": contract("""\
                type: object
                properties:
                  id: {$ref: "../_shared/common.yaml#/$defs/id"}
                """),
        },
    )
    registry = Registry.load(root)
    assert registry.validate("demo", {"id": "2b5f7958-25c1-4851-9bb3-26cb66e24225"}) == []
    [issue] = registry.validate("demo", {"id": "nope"})
    assert (issue.path, issue.rule) == ("/id", "format")


def test_a_missing_ref_target_is_named(tmp_path: Path) -> None:
    root = write(
        tmp_path / "r",
        {"demo/1.yaml": contract("properties:\n  a: {$ref: '../_shared/nope.yaml'}\n")},
    )
    with pytest.raises(RegistryError, match=r"\$ref target '.*/_shared/nope.yaml' does not exist"):
        Registry.load(root).validator("demo")


def test_a_ref_outside_the_registry_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secrets.yaml").write_text("$defs:\n  x: {type: string}\n")
    root = write(
        tmp_path / "r",
        {"demo/1.yaml": contract("properties:\n  a: {$ref: '../../secrets.yaml#/$defs/x'}\n")},
    )
    with pytest.raises(RegistryError, match="points outside the registry") as info:
        Registry.load(root).validator("demo")
    assert "secrets.yaml" in str(info.value)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every attempt to open a connection from Python is recorded and refused."""
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise OSError("network access in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


REMOTE = "https://schemas.example.com/user.json"


@pytest.mark.parametrize(
    "files",
    [
        {"demo/1.yaml": contract(f"properties:\n  user: {{$ref: '{REMOTE}'}}\n")},
        {"demo/1.yaml": contract(f"properties:\n  user: {{$ref: '{REMOTE}#/$defs/u'}}\n")},
        {  # reached through a shared file
            "_shared/common.yaml": f"$defs:\n  user: {{$ref: '{REMOTE}'}}\n",
            "demo/1.yaml": contract(
                "properties:\n  u: {$ref: '../_shared/common.yaml#/$defs/user'}\n"
            ),
        },
    ],
)
def test_a_remote_ref_is_refused_without_touching_the_network(
    tmp_path: Path, files: dict[str, str], no_network: list[Any]
) -> None:
    registry = Registry.load(write(tmp_path / "r", files))
    with pytest.raises(RegistryError) as info:
        registry.validator("demo")
    message = str(info.value)
    assert f"$ref '{REMOTE}" in message
    assert "remote reference" in message
    assert "\n" not in message
    assert no_network == []


# jsonschema-rs fetches in Rust, below Python's socket module; a local proxy that no request
# should ever reach catches those.
_TRAP_SCRIPT = """
import sys
from logkit import Registry
try:
    Registry.load(sys.argv[1]).validator("demo")
except Exception as exc:
    print(type(exc).__name__, exc)
"""


def _requests_seen_by_a_trap_proxy(root: Path) -> tuple[list[bytes], str]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    proxy = f"http://127.0.0.1:{server.getsockname()[1]}"
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(HTTP_PROXY=proxy, HTTPS_PROXY=proxy, ALL_PROXY=proxy,
               http_proxy=proxy, https_proxy=proxy, all_proxy=proxy)  # fmt: skip
    child = subprocess.Popen(
        [sys.executable, "-c", _TRAP_SCRIPT, str(root)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    seen: list[bytes] = []
    try:
        while child.poll() is None:
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(1)
                seen.append(conn.recv(200))
    finally:
        out = child.communicate(timeout=60)[0]
        server.close()
    return seen, out


def test_compiling_a_remote_ref_sends_no_request(tmp_path: Path) -> None:
    root = write(
        tmp_path / "r", {"demo/1.yaml": contract(f"properties:\n  u: {{$ref: '{REMOTE}'}}\n")}
    )
    seen, out = _requests_seen_by_a_trap_proxy(root)
    assert seen == []
    assert out.startswith("RegistryError ")
    assert REMOTE in out


def test_a_remote_meta_schema_is_refused_without_a_request(tmp_path: Path) -> None:
    root = write(
        tmp_path / "r",
        {"demo/1.yaml": "$schema: https://schemas.example.com/meta\ntype: object\n"},
    )
    seen, out = _requests_seen_by_a_trap_proxy(root)
    assert seen == []
    assert out.startswith("RegistryError ")
    assert "https://schemas.example.com/meta" in out


# -- line maps for reports -----------------------------------------------------------------------


@pytest.mark.parametrize("cache", [False, True])
def test_line_maps_come_from_the_parse_that_loaded_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache: bool
) -> None:
    from logkit import yamlsafe

    root = write(tmp_path / "r", {"demo/1.yaml": contract("properties:\n  a: {type: string}\n")})
    path = (root / "demo" / "1.yaml").resolve()
    expected = yamlsafe.pointer_lines(path.read_bytes())
    registry = Registry.load(root, lines=True, cache=tmp_path / "cache" if cache else None)

    def second_parse(data: bytes) -> dict[str, int]:
        raise AssertionError("the file was parsed a second time for its lines")

    monkeypatch.setattr(yamlsafe, "pointer_lines", second_parse)
    assert registry.pointer_lines(path) == expected
    assert expected["/properties/a"] == 6


def test_a_file_changed_since_loading_is_mapped_as_it_is_now(tmp_path: Path) -> None:
    root = write(tmp_path / "r", {"demo/1.yaml": contract("properties:\n  a: {type: string}\n")})
    registry = Registry.load(root, lines=True)
    path = (root / "demo" / "1.yaml").resolve()
    path.write_text(contract("\nproperties:\n\n  a: {type: string}\n"))
    assert registry.pointer_lines(path)["/properties/a"] == 8


# -- the cache of parsed files -------------------------------------------------------------------


def test_the_cache_gives_back_exactly_what_was_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from logkit.registry import DocumentCache

    monkeypatch.setattr(DocumentCache, "SETTLE_NS", -1)  # the files count as settled at once
    exact = "examples: [0.1, -0.0, 1.0e+16, 1.5e-07, 18446744073709551615, -9223372036854775808]\n"
    root = write(
        tmp_path / "r",
        {
            "demo/1.yaml": contract(exact + "description: ünïcödé ✓\n"),
            "demo/2.yaml": contract("examples: [18446744073709551616, 1180591620717411303424]\n"),
        },
    )
    folder = tmp_path / "cache"
    first = Registry.load(root, cache=folder)
    first.save_cache()
    (cache_file,) = folder.glob("registry-*-documents.json")
    stored = json.loads(cache_file.read_bytes())["documents"]
    # orjson would read integers beyond 64 bits back as floats: that file is not stored
    assert [Path(p).name for p in stored] == ["1.yaml"]
    second = Registry.load(root, cache=folder)
    for version in (1, 2):
        got, want = second.get(f"demo@{version}").schema, first.get(f"demo@{version}").schema
        assert json.dumps(got) == json.dumps(want)  # same values, same types, same key order
    assert second.get("demo@2").schema["examples"] == [2**64, 2**70]


# -- parsing ahead, in two processes --------------------------------------------------------------


def _loaded(registry: Registry) -> tuple[Any, ...]:
    documents = {c.label: json.dumps(c.schema) for c in registry}
    lines = {c.label: registry.pointer_lines(c.path) for c in registry}
    problems = [(p.path.name, p.rule, p.message, p.line) for p in registry.problems]
    return documents, lines, problems


@pytest.mark.parametrize("cache", [False, True])
def test_parsing_ahead_in_two_processes_loads_what_one_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache: bool
) -> None:
    import logkit.registry as registry_module

    files = {
        f"c{i}/{v}.yaml": contract(f"properties:\n  f{v}: {{type: integer, maximum: {i}}}\n")
        for i in range(8)
        for v in (1, 2, 3)
    }
    files["c3/4.yaml"] = "type: object\nrequired: [a]\nrequired: [b]\n"  # a duplicate key
    files["c5/4.yaml"] = contract("$defs:\n  a: &a {type: string}\nproperties:\n  x: *a\n")
    files["c6/04.yaml"] = contract()  # not a version name
    root = write(tmp_path / "r", files)
    (root / "c7" / "4.yaml").symlink_to(root / "c7" / "3.yaml")
    folder = tmp_path / "cache" if cache else None

    def load() -> Registry:
        return Registry.load(root, strict=False, lines=True, cache=folder, parallel=True)

    monkeypatch.setattr(registry_module, "PARALLEL_FILES", 10**9)
    one = _loaded(load())
    monkeypatch.setattr(registry_module, "PARALLEL_FILES", 0)
    registry = load()
    assert registry._prefetched == {}  # every result was taken, or the file parsed again
    assert _loaded(registry) == one
    assert [p[1] for p in one[2]] == ["parse", "version-name"]


def test_a_file_changed_after_parsing_ahead_is_parsed_again(tmp_path: Path) -> None:
    root = write(tmp_path / "r", {"demo/1.yaml": contract()})
    registry = Registry(root.resolve())
    path = (root / "demo" / "1.yaml").resolve()
    registry._prefetched[path] = (b"type: string\n", {"type": "string"}, None)
    assert registry.document(path)["type"] == "object"
