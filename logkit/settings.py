"""Settings, strongest first: flags, ``LOGKIT_*`` environment variables, ``logkit.yaml`` in the
working folder or the nearest parent, ``[tool.logkit]`` in the nearest ``pyproject.toml``.

Relative paths in a settings file are relative to that file's folder.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from logkit.errors import ConfigError
from logkit.parse import DEFAULT_MAX_DEPTH, DEFAULT_MAX_LINE_BYTES
from logkit.registry import did_you_mean

KNOWN_KEYS = ("registry", "store", "max_line_bytes", "max_depth", "compat")
PATH_KEYS = ("registry", "store")
INT_KEYS = ("max_line_bytes", "max_depth")


@dataclass
class Settings:
    registry: Path = Path("registry")
    store: Path = Path(".logkit/store")
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    max_depth: int = DEFAULT_MAX_DEPTH
    compat: dict[str, Any] = field(default_factory=dict)
    origin: str = "defaults"
    warnings: list[str] = field(default_factory=list)


def find_upwards(start: Path, name: str) -> Path | None:
    for folder in (start, *start.parents):
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None


def _read_file_settings(cwd: Path) -> tuple[dict[str, Any], Path | None]:
    found = find_upwards(cwd, "logkit.yaml")
    if found is not None:
        from logkit import yamlsafe

        try:
            data = yamlsafe.load(found.read_bytes())
        except (OSError, yamlsafe.YamlError) as exc:
            raise ConfigError(f"{found}: cannot read settings: {exc}") from exc
        if data is None:
            return {}, found
        if not isinstance(data, dict):
            raise ConfigError(f"{found}: settings must be a mapping of keys to values")
        return data, found
    pyproject = find_upwards(cwd, "pyproject.toml")
    if pyproject is not None:
        import tomllib

        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{pyproject}: cannot read: {exc}") from exc
        tool = data.get("tool")
        section = tool.get("logkit") if isinstance(tool, dict) else None
        if isinstance(section, dict):
            return section, pyproject
        if section is not None:
            raise ConfigError(f"{pyproject}: [tool.logkit] must be a table of settings")
    return {}, None


def load_settings(
    cwd: Path | None = None, env: Mapping[str, str] | None = None, **flags: Any
) -> Settings:
    """Resolve settings; ``flags`` holds command-line values (None when not given)."""
    cwd = cwd or Path.cwd()
    environ: Mapping[str, str] = os.environ if env is None else env
    settings = Settings()
    data, origin = _read_file_settings(cwd)
    if origin is not None:
        settings.origin = str(origin)
        for key, value in data.items():
            if key not in KNOWN_KEYS:
                settings.warnings.append(
                    f"{origin}: unknown setting {key!r}{did_you_mean(key, KNOWN_KEYS)}"
                )
                continue
            _apply(settings, key, value, str(origin), base=origin.parent)
    for key in KNOWN_KEYS:
        raw = environ.get(f"LOGKIT_{key.upper()}")
        if raw and key != "compat":
            _apply(settings, key, raw, f"LOGKIT_{key.upper()}", base=None)
    for key, value in flags.items():
        if value is not None:
            _apply(settings, key, value, f"--{key.replace('_', '-')}", base=None)
    return settings


def _apply(settings: Settings, key: str, value: Any, origin: str, base: Path | None) -> None:
    if key in PATH_KEYS:
        if not isinstance(value, (str, Path)) or not str(value):
            raise ConfigError(f"{origin}: {key} must be a path")
        path = Path(value)
        setattr(settings, key, path if path.is_absolute() or base is None else base / path)
    elif key in INT_KEYS:
        try:
            # int() would take `true` as 1 and cut 2.5 to 2; a setting says what it means.
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise TypeError(value)
            number = int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{origin}: {key} must be a whole number, found {value!r}") from None
        if number < 1:
            raise ConfigError(f"{origin}: {key} must be at least 1, found {number}")
        setattr(settings, key, number)
    elif key == "compat":
        if not isinstance(value, dict):
            raise ConfigError(f"{origin}: compat must be a mapping")
        settings.compat = value
