"""Contracts on disk -> validated, versioned Contract objects and cached validators.

Layout (PRODUCT.md): ``<root>/<name>/<version>.yaml|.yml|.json``; shared definitions under
``<root>/_shared/``. ``$ref``s resolve only to files inside the registry; a remote reference is
an error that names it, and nothing is ever fetched.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import orjson

from logkit import yamlsafe
from logkit.errors import RegistryError, UnknownContractError, UsageError
from logkit.forking import split_work

if TYPE_CHECKING:
    import jsonschema_rs

    from logkit.results import Issue

NAME_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
VERSION_RE = re.compile(r"^[1-9][0-9]*$")
SCHEMA_SUFFIXES = (".yaml", ".yml", ".json")
SHARED_DIR = "_shared"
COMPAT_MODES = (
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
    "NONE",
)
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
#: YAML files to parse from which half of them are parsed by a second process (forking it and
#: sending the documents back costs ~40 ms; parsing a file ~0.35 ms).
PARALLEL_FILES = 200

#: A file's bytes, its document and (when asked for) its line map, parsed ahead of the scan.
_Parsed = tuple[bytes, Any, dict[str, int] | None]


def did_you_mean(word: str, candidates: Iterator[str] | list[str] | tuple[str, ...]) -> str:
    """A ` (did you mean 'x'?)` suffix for the closest candidate, or an empty string."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclass(frozen=True, slots=True)
class ContractRef:
    """``name`` or ``name@version`` as a user writes it."""

    name: str
    version: int | None = None

    @classmethod
    def parse(cls, text: str) -> ContractRef:
        name, sep, version = text.strip().partition("@")
        if not NAME_RE.match(name):
            raise UsageError(
                f"{text!r} is not a contract name: use lowercase letters, digits and '_', "
                "with dots for namespaces, e.g. 'search' or 'search@2'"
            )
        if not sep:
            return cls(name)
        if not VERSION_RE.match(version):
            raise UsageError(f"{text!r}: the version after '@' must be a positive integer")
        return cls(name, int(version))

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}@{self.version}"


@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong with a registry file, found while loading or linting it."""

    path: Path
    message: str
    rule: str
    pointer: str = ""
    line: int | None = None
    severity: str = "error"


@dataclass(eq=False)
class Contract:
    """One version of one contract, as loaded from its file."""

    name: str
    version: int
    path: Path
    schema: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def meta(self) -> dict[str, Any]:
        meta = self.schema.get("x-logkit")
        return meta if isinstance(meta, dict) else {}

    @property
    def owner(self) -> str | None:
        owner = self.meta.get("owner")
        return owner if isinstance(owner, str) else None

    @property
    def compatibility(self) -> str:
        mode = self.meta.get("compatibility", "BACKWARD")
        return mode if isinstance(mode, str) else "BACKWARD"

    @property
    def status(self) -> str:
        status = self.meta.get("status", "active")
        return status if isinstance(status, str) else "active"

    @property
    def title(self) -> str:
        title = self.schema.get("title")
        return title if isinstance(title, str) else ""

    @property
    def description(self) -> str:
        text = self.schema.get("description")
        return text if isinstance(text, str) else ""


def read_document(path: Path) -> Any:
    """Read one JSON or YAML document from disk; raise RegistryError naming the file."""
    return parse_document(path, _read_bytes(path))


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise RegistryError.at(path, f"cannot read: {exc.strerror or exc}") from exc


def parse_document(path: Path, data: bytes, lines: dict[str, int] | None = None) -> Any:
    """Parse the bytes of a registry file (JSON by its suffix, else YAML).

    ``lines``, when given, is filled from the same parse with a YAML file's
    ``yamlsafe.pointer_lines`` (and left empty for a JSON file).
    """
    try:
        if path.suffix == ".json":
            return json.loads(data, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
        if lines is None:
            return yamlsafe.load(data)
        document, found = yamlsafe.load_with_lines(data)
        lines.update(found)
        return document
    except yamlsafe.YamlError as exc:
        raise RegistryError.at(path, f"invalid YAML: {exc}", exc.line) from exc
    except json.JSONDecodeError as exc:
        raise RegistryError.at(path, f"invalid JSON: {exc.msg}", exc.lineno) from exc
    except (ValueError, RecursionError) as exc:
        raise RegistryError.at(path, f"invalid JSON: {exc}") from exc


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {key!r}")
            seen.add(key)
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _orjson_exact(value: Any) -> bool:
    """Whether orjson writes ``value`` (it refuses what it would not read back exactly)."""
    try:
        orjson.dumps(value)
    except TypeError:
        return False
    return True


class DocumentCache:
    """What parsing a registry's files gave, kept on disk between runs: one JSON file per
    registry and ``kind`` (their documents; their line maps, which only text reports need).

    pre-commit runs check-compat over and over on a registry that barely changes, and parsing
    YAML is most of loading it. An entry is used only while its file has the same size, mtime,
    ctime and inode (ctime changes on every write, even one that restores an old mtime). A file
    changed within the last ``SETTLE_NS`` is not stored, so a write in the same clock tick as
    our read cannot go unnoticed; nor is one with anchors (the cache would lose their sharing).
    The loader yields JSON data only, so a JSON round trip gives back exactly what it parsed;
    the file is written and read with orjson (several times faster than ``json`` on these few
    megabytes), and an entry orjson would not read back exactly (an integer beyond 64 bits,
    which it reads as a float, or a lone surrogate) is left out: that file is parsed each time.
    """

    VERSION = 2  # bump whenever yamlsafe's output or the entry format changes
    SETTLE_NS = 2_000_000_000

    def __init__(self, folder: Path, root: Path, kind: str = "documents") -> None:
        digest = hashlib.sha256(str(root).encode()).hexdigest()[:16]
        self.file = folder / f"registry-{digest}-{kind}.json"
        self.entries: dict[str, list[Any]] = {}
        self.changed = False
        try:
            data = orjson.loads(self.file.read_bytes())
        except (OSError, ValueError):
            return
        if isinstance(data, dict) and data.get("version") == self.VERSION:
            entries = data.get("documents")
            self.entries = entries if isinstance(entries, dict) else {}

    @staticmethod
    def _key(stat: os.stat_result) -> list[int]:
        return [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]

    def fresh(self, path: Path) -> bool:
        """Whether ``read(path)`` would take the document from the cache."""
        entry = self.entries.get(str(path))
        if not (isinstance(entry, list) and len(entry) == 2):
            return False
        try:
            return bool(entry[0] == self._key(path.stat()))
        except OSError:
            return False

    def read(self, path: Path, parse: Callable[[Path, bytes], Any] | None = None) -> Any:
        """``parse(path, bytes)`` (default: the document), from the cache if the file is
        unchanged. The result must be JSON data."""
        parse = parse or parse_document
        try:
            stat = path.stat()
        except OSError:
            return parse(path, _read_bytes(path))
        key = self._key(stat)
        entry = self.entries.get(str(path))
        if isinstance(entry, list) and len(entry) == 2 and entry[0] == key:
            return entry[1]
        data = _read_bytes(path)
        document = parse(path, data)
        settled = time.time_ns() - max(stat.st_mtime_ns, stat.st_ctime_ns) > self.SETTLE_NS
        if settled and b"&" not in data and self._key(path.stat()) == key:
            self.entries[str(path)] = [key, document]
            self.changed = True
        return document

    def save(self) -> None:
        """Write the cache atomically if it changed; entries of deleted files are dropped."""
        if not self.changed:
            return
        documents = {p: e for p, e in self.entries.items() if os.path.exists(p)}
        try:
            text = orjson.dumps({"version": self.VERSION, "documents": documents})
        except TypeError:
            documents = {p: e for p, e in documents.items() if _orjson_exact(e)}
            text = orjson.dumps({"version": self.VERSION, "documents": documents})
        self.changed = False
        try:  # a cache is only an optimisation: a folder we cannot write to only costs speed
            self.file.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=self.file.parent, suffix=".tmp")
        except OSError:
            return
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(text)
            os.replace(temporary, self.file)  # readers see the old file or the new, never half
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(temporary)


class Registry:
    """A folder of versioned contracts. Load with ``Registry.load(path)``."""

    def __init__(self, root: Path, cache: Path | None = None, *, lines: bool = False) -> None:
        self.root = root
        self.contracts: dict[str, dict[int, Contract]] = {}
        self.problems: list[Problem] = []
        self.shared_files: list[Path] = []
        self._validators: dict[tuple[str, int], jsonschema_rs.Validator] = {}
        self._documents: dict[Path, Any] = {}
        self._retrieved: dict[str, Any] = {}
        self._shared_resources: Any = False  # built by the first shared_resources() call
        self._prefetched: dict[Path, _Parsed] = {}
        self._cache_folder = cache
        self._cache = DocumentCache(cache, root) if cache is not None else None
        self._lines: DocumentCache | None = None  # opened by the first pointer_lines call
        # With ``lines``, each YAML file parsed also gives its line map, and its bytes to tell
        # whether the file read again for a report is still the one that was parsed.
        self._parsed_lines: dict[Path, tuple[bytes, dict[str, int]]] | None = {} if lines else None

    # -- loading ---------------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        path: str | Path = "registry",
        *,
        strict: bool = True,
        cache: Path | None = None,
        only: Collection[str] | None = None,
        lines: bool = False,
        parallel: bool = False,
    ) -> Registry:
        """Load every contract file under ``path``.

        With ``strict`` (the default) the first problem raises RegistryError; ``logkit lint``
        loads with ``strict=False`` and reports ``registry.problems`` instead. ``cache`` names a
        folder for a DocumentCache (call ``save_cache()`` once the run has read what it needs).
        ``only`` parses just the contracts it names (the files they reference are read when
        needed); the layout of the whole folder is still checked, but a file of another
        contract that does not parse goes unnoticed. ``lines`` says that reports will ask for
        ``pointer_lines``: YAML files then give them from the parse that reads them.
        ``parallel`` lets a cold load parse half of many files in a forked child (a one-shot
        command's choice: see ``_prefetch``).
        """
        root = Path(path)
        if not root.is_dir():
            hint = "" if root.exists() else " (set --registry or LOGKIT_REGISTRY)"
            raise RegistryError(f"registry folder {str(root)!r} not found{hint}")
        resolved = root.resolve()
        registry = cls(resolved, cache, lines=lines)
        if parallel:
            registry._prefetch(only)
        registry._scan(only)
        if strict and registry.errors:
            first = registry.errors[0]
            more = len(registry.errors) - 1
            where = f"{first.path}:{first.line}" if first.line else str(first.path)
            tail = (
                f" (and {more} more problem{'s' if more > 1 else ''}; run `logkit lint`)"
                if more
                else ""
            )
            raise RegistryError(f"{where}: {first.message}{tail}")
        return registry

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    def _scan(self, only: Collection[str] | None = None) -> None:
        for entry in sorted(self.root.iterdir()):
            if entry.name.startswith("."):
                continue
            if entry.name == SHARED_DIR:
                self.shared_files = sorted(
                    p for p in entry.rglob("*") if p.suffix in SCHEMA_SUFFIXES and p.is_file()
                )
                continue
            if not entry.is_dir():
                if entry.suffix in SCHEMA_SUFFIXES:
                    self._problem(
                        entry,
                        "layout",
                        "a contract file must sit in a folder named after its "
                        "contract: registry/<name>/<version>.yaml",
                    )
                continue
            if not NAME_RE.match(entry.name):
                self._problem(
                    entry,
                    "contract-name",
                    f"{entry.name!r} is not a valid contract name (lowercase letters, "
                    "digits and '_', dots for namespaces)",
                )
                continue
            self._scan_contract(entry, parse=only is None or entry.name in only)

    def _scan_contract(self, folder: Path, *, parse: bool = True) -> None:
        versions: dict[int, Contract] = {}
        real_folder: Path | None = None
        for file in sorted(folder.iterdir()):
            if file.name.startswith(".") or file.suffix not in SCHEMA_SUFFIXES:
                continue
            if not VERSION_RE.match(file.stem):
                self._problem(
                    file,
                    "version-name",
                    f"{file.name!r}: a version file is named by a positive integer "
                    "with no leading zeros, e.g. 1.yaml",
                )
                continue
            version = int(file.stem)
            if version in versions:
                self._problem(
                    file,
                    "duplicate-version",
                    f"version {version} of {folder.name!r} is defined twice "
                    f"({versions[version].path.name} and {file.name})",
                )
                continue
            if not parse:  # only the layout is checked: see ``load``'s ``only``
                versions[version] = Contract(folder.name, version, file, {})
                continue
            try:
                # resolving walks every part of the path; a file that is not a link resolves
                # to its name in its folder, resolved once
                if file.is_symlink():
                    resolved = file.resolve()
                else:
                    real_folder = real_folder or folder.resolve()
                    resolved = real_folder / file.name
                schema = self._document(resolved)
            except RegistryError as exc:
                self._problem(file, "parse", exc.detail, line=exc.line)
                continue
            if not isinstance(schema, (dict, bool)):
                self._problem(file, "not-a-schema", "a contract must be a JSON Schema object")
                continue
            schema_dict = schema if isinstance(schema, dict) else {}
            versions[version] = Contract(folder.name, version, resolved, schema_dict)
        if versions:
            if parse:
                self.contracts[folder.name] = dict(sorted(versions.items()))
        else:
            self._problem(
                folder, "empty-contract", f"contract folder {folder.name!r} holds no version files"
            )

    def _problem(self, path: Path, rule: str, message: str, **extra: Any) -> None:
        self.problems.append(Problem(path, message, rule, **extra))

    def document(self, path: Path) -> Any:
        """A registry file's parsed content, read once."""
        return self._document(path.resolve())

    def _document(self, path: Path) -> Any:
        # ``path`` is resolved (resolving costs several system calls, and a file is met twice)
        if path not in self._documents:
            if path.suffix == ".json":  # JSON parses fast enough to need no cache
                self._documents[path] = parse_document(path, _read_bytes(path))
            elif self._cache is not None:
                self._documents[path] = self._cache.read(path, self._parse_yaml)
            else:
                self._documents[path] = self._parse_yaml(path, _read_bytes(path))
        return self._documents[path]

    def _parse_yaml(self, path: Path, data: bytes) -> Any:
        # what _prefetch parsed, while the file still holds the bytes it was parsed from
        early = self._prefetched.pop(path, None)
        if early is not None and early[0] == data:
            document, lines = early[1], early[2]
        else:
            lines = {} if self._parsed_lines is not None else None
            document = parse_document(path, data, lines)
        if self._parsed_lines is not None and lines is not None:
            self._parsed_lines[path] = (data, lines)
        return document

    def _prefetch(self, only: Collection[str] | None) -> None:
        """Parse the YAML contract files the scan is about to parse (those the cache does not
        hold), half of them in a forked child, when there are at least ``PARALLEL_FILES``.

        Only a speed-up: the scan still reads each file and takes a result only for the same
        bytes; a file that does not parse here, a link, or one missed is parsed there as ever.
        """
        todo: list[Path] = []
        try:
            for folder in sorted(self.root.iterdir()):
                name = folder.name
                if (
                    name.startswith(".")
                    or not NAME_RE.match(name)
                    or (only is not None and name not in only)
                    or not folder.is_dir()
                ):
                    continue
                real = folder.resolve()
                for file in sorted(folder.iterdir()):
                    if file.suffix not in (".yaml", ".yml") or not VERSION_RE.match(file.stem):
                        continue
                    path = real / file.name
                    if not file.is_symlink() and not (self._cache and self._cache.fresh(path)):
                        todo.append(path)
        except OSError:
            return
        if len(todo) < PARALLEL_FILES:
            return
        parsed = split_work(self._parse_files, todo, [1] * len(todo), minimum=PARALLEL_FILES)
        self._prefetched = {path: r for path, r in zip(todo, parsed, strict=True) if r}

    def _parse_files(self, paths: Sequence[Path]) -> list[_Parsed | None]:
        out: list[_Parsed | None] = []
        for path in paths:
            try:
                data = path.read_bytes()
                lines: dict[str, int] | None = {} if self._parsed_lines is not None else None
                out.append((data, parse_document(path, data, lines), lines))
            except Exception:  # parsed again by the scan, which reports the problem
                out.append(None)
        return out

    def pointer_lines(self, path: Path) -> dict[str, int]:
        """Each JSON pointer of a registry file and its line, for reports: parsed once per run
        (by the parse that loaded the file, with ``lines``), and kept in the cache, if there is
        one, with the documents."""
        parsed = self._parsed_lines.get(path) if self._parsed_lines is not None else None

        def parse(path: Path, data: bytes) -> dict[str, int]:
            if parsed is not None and parsed[0] == data:
                return parsed[1]
            return yamlsafe.pointer_lines(data)

        if self._cache_folder is None:
            return parse(path, _read_bytes(path))
        if self._lines is None:
            self._lines = DocumentCache(self._cache_folder, self.root, "lines")
        lines: dict[str, int] = self._lines.read(path, parse)
        return lines

    def save_cache(self) -> None:
        """Store what this run parsed for the next (no-op without a cache)."""
        for cache in (self._cache, self._lines):
            if cache is not None:
                cache.save()

    # -- lookup ----------------------------------------------------------------------------

    def names(self) -> list[str]:
        return sorted(self.contracts)

    def versions(self, name: str) -> list[int]:
        return list(self.contracts.get(name, {}))

    def get(self, ref: str | ContractRef) -> Contract:
        """The contract a ``name[@version]`` names; a bare name means its latest version."""
        if isinstance(ref, str):
            ref = ContractRef.parse(ref)
        versions = self.contracts.get(ref.name)
        if versions is None:
            raise UnknownContractError(
                f"unknown contract {ref.name!r}{did_you_mean(ref.name, self.names())}"
                + ("" if self.contracts else f" (the registry {str(self.root)!r} is empty)")
            )
        if ref.version is None:
            return versions[max(versions)]
        if ref.version not in versions:
            known = ", ".join(str(v) for v in versions)
            raise UnknownContractError(
                f"contract {ref.name!r} has no version {ref.version} (versions: {known})"
            )
        return versions[ref.version]

    def __iter__(self) -> Iterator[Contract]:
        for name in self.names():
            yield from self.contracts[name].values()

    # -- validation ------------------------------------------------------------------------

    def validator(self, contract: Contract | str | ContractRef) -> jsonschema_rs.Validator:
        """The compiled validator of a contract, built once and cached."""
        if not isinstance(contract, Contract):
            contract = self.get(contract)
        key = (contract.name, contract.version)
        compiled = self._validators.get(key)
        if compiled is None:
            compiled = self._compile(contract)
            self._validators[key] = compiled
        return compiled

    def _compile(self, contract: Contract) -> jsonschema_rs.Validator:
        self.check_schema(contract)
        return compile_schema(
            contract.schema,
            base_uri=contract.path.as_uri(),
            retrieve=self._retrieve,
            where=f"{contract.path}",
        )

    def check_schema(self, contract: Contract) -> None:
        """Raise RegistryError unless the contract is a draft 2020-12 schema valid against its
        meta-schema: the checks compiling makes before it resolves references, without the cost
        of compiling (check-compat compiles a validator only when it has a witness to verify)."""
        import jsonschema_rs

        dialect = contract.schema.get("$schema", DRAFT_2020_12)
        if dialect != DRAFT_2020_12:
            # Checked before anything reads it: a custom meta-schema would be fetched.
            raise RegistryError(
                f"{contract.path}: {contract.label} declares $schema {dialect!r}; contracts are "
                f"JSON Schema draft 2020-12 ({DRAFT_2020_12}) and logkit never fetches a "
                "meta-schema"
            )
        if not jsonschema_rs.meta.is_valid(contract.schema):
            from logkit.lint import meta_schema_problems

            first = meta_schema_problems(contract.schema)[0]
            raise RegistryError(
                f"{contract.path}: {contract.label} is not a valid JSON Schema: at "
                f"{first[0] or '/'}: {first[1]} (run `logkit lint`)"
            )

    def shared_resources(self) -> Any:
        """The shared files as one ``jsonschema_rs.Registry``, built once (None when one of
        them cannot go in it). Given one, a schema's references into them resolve without
        ``_retrieve`` and without converting the document again for each schema; any other
        reference still goes through ``_retrieve``."""
        if self._shared_resources is False:
            import jsonschema_rs

            try:
                resources = [(path.as_uri(), self.document(path)) for path in self.shared_files]
                self._shared_resources = jsonschema_rs.Registry(resources, retriever=self._retrieve)
            except Exception:
                self._shared_resources = None
        return self._shared_resources

    def _retrieve(self, uri: str) -> Any:
        # Called for every $ref of every version, by the validators and by check-compat: the
        # path checks resolve symlinks, so each URI is resolved once.
        if uri not in self._retrieved:
            self._retrieved[uri] = self._retrieve_uncached(uri)
        return self._retrieved[uri]

    def _retrieve_uncached(self, uri: str) -> Any:
        parts = urlsplit(uri)
        if parts.scheme != "file":
            raise RemoteRefError(uri)
        path = Path(unquote(parts.path)).resolve()
        if not path.is_relative_to(self.root):
            raise RemoteRefError(uri, outside=True)
        if not path.is_file():
            raise MissingRefError(uri)
        return self._document(path)

    def validate(self, contract: str | ContractRef | Contract, event: Any) -> list[Issue]:
        """Check one event; an empty list means it is valid."""
        from logkit.explain import explain

        validator = self.validator(contract)
        if validator.is_valid(event):
            return []
        return explain(validator, event)


class RemoteRefError(Exception):
    def __init__(self, uri: str, *, outside: bool = False) -> None:
        super().__init__(uri)
        self.uri = uri
        self.outside = outside


class MissingRefError(Exception):
    def __init__(self, uri: str) -> None:
        super().__init__(uri)
        self.uri = uri


@dataclass
class _Retriever:
    retrieve: Any
    failures: list[Exception] = field(default_factory=list)

    def __call__(self, uri: str) -> Any:
        try:
            return self.retrieve(uri)
        except Exception as exc:
            self.failures.append(exc)
            raise


def compile_schema(
    schema: Any, *, base_uri: str, retrieve: Any, where: str, assert_formats: bool = True
) -> jsonschema_rs.Validator:
    """Build a validator that checks formats and never touches the network.

    The dialect is the schema's ``$schema`` (draft 2020-12 when absent; lint requires 2020-12
    of contracts), so a custom meta-schema's ``$vocabulary`` is honoured. ``retrieve(uri)``
    returns the document for a referenced URI or raises; ``where`` names the schema in error
    messages. ``assert_formats=False`` treats ``format`` as an annotation, the spec's default;
    logkit always asserts formats on events.
    """
    import jsonschema_rs

    retriever = _Retriever(retrieve)
    try:
        return jsonschema_rs.validator_for(
            schema, validate_formats=assert_formats, base_uri=base_uri, retriever=retriever
        )
    except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError, ValueError) as exc:
        for failure in retriever.failures:
            if isinstance(failure, RemoteRefError):
                reason = (
                    "points outside the registry" if failure.outside else "is a remote reference"
                )
                raise RegistryError(
                    f"{where}: $ref {failure.uri!r} {reason}; logkit resolves references only "
                    "to files inside the registry and never fetches"
                ) from exc
            if isinstance(failure, MissingRefError):
                raise RegistryError(f"{where}: $ref target {failure.uri!r} does not exist") from exc
            if isinstance(failure, RegistryError):
                raise failure from exc
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RegistryError(f"{where}: cannot compile the schema: {first}") from exc
