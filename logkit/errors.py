"""One small exception family; the CLI boundary maps each to an exit code."""

from __future__ import annotations


class LogkitError(Exception):
    """An expected failure: printed as one line, never as a traceback."""

    exit_code = 2


class UsageError(LogkitError):
    """A bad flag, argument or combination of them."""


class ConfigError(LogkitError):
    """Settings that cannot be read or make no sense."""


class RegistryError(LogkitError):
    """The registry cannot be loaded: a broken file, a bad name, a remote $ref."""

    line: int | None = None
    detail: str = ""

    @classmethod
    def at(cls, path: object, detail: str, line: int | None = None) -> RegistryError:
        """``path:line: detail``, keeping the parts for reporters that place them."""
        error = cls(f"{path}:{line}: {detail}" if line else f"{path}: {detail}")
        error.line, error.detail = line, detail
        return error


class UnknownContractError(LogkitError):
    """A contract or version that the registry does not hold."""


class InputError(LogkitError):
    """An input file or stream that cannot be read at all."""


class StoreError(LogkitError):
    """The store or a sink could not do its job (disk full, write failed)."""

    exit_code = 3
