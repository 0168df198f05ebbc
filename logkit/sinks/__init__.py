"""Where envelopes go besides the file store: one module per backend, chosen by URL scheme.

The file store (``logkit.store``) stays the default and the spool. A backend is one module under
``logkit/sinks/`` that defines ``SINK``, a subclass of :class:`Sink`; ``BACKENDS`` maps URL
schemes to those modules, imported only when a URL asks for them (so that confluent-kafka or
psycopg are loaded only by a run that uses them).

The contract of a sink, for anyone adding one:

- ``check()`` connects and verifies the target (address, topic or table, credentials) before
  any event is read. A setup error raises :class:`SinkSetupError` (one line, exit 2); a target
  that is only down raises :class:`SinkUnavailable`.
- ``write(block)`` stores every envelope and dead letter of an ``IngestBlock`` and returns only
  once the backend has confirmed all of them. It raises :class:`SinkUnavailable` for a failure
  that retrying may cure (the caller retries with backoff, then spools), :class:`SinkError`
  for one it will not. A write may be repeated after a failure: backends make repeats harmless
  or detectable through the envelope ``id``.
- ``close()`` flushes and releases; it never loses what ``write`` confirmed.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import SplitResult, urlsplit

from logkit.errors import LogkitError, StoreError

if TYPE_CHECKING:
    from logkit.ingest import IngestBlock

# URL scheme -> module defining SINK.
BACKENDS: dict[str, str] = {
    "kafka": "logkit.sinks.kafka",
    "postgresql": "logkit.sinks.postgres",
    "postgres": "logkit.sinks.postgres",
}


class SinkError(StoreError):
    """A sink write failed in a way retrying will not cure (exit 3)."""


class SinkUnavailable(SinkError):
    """The sink is down or timed out: retry with backoff, then spool."""


class SinkSetupError(LogkitError):
    """A wrong address, unknown topic or table, bad credentials: fail fast (exit 2)."""


class Sink(ABC):
    """One backend; see the module docstring for the contract."""

    schemes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, url: str) -> None:
        self.url = url
        self.parts: SplitResult = urlsplit(url)

    @property
    def label(self) -> str:
        """The URL without its password, for messages and metrics."""
        return redact(self.url)

    @abstractmethod
    def check(self) -> None: ...

    @abstractmethod
    def write(self, block: IngestBlock) -> None: ...

    def close(self) -> None:  # noqa: B027 - a backend with nothing to release keeps this
        """Flush and release."""

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    # The netloc as written after the last "@" (a malformed port must not make this fail).
    host = parts.netloc.rsplit("@", 1)[1]
    netloc = f"{parts.username or ''}:***@{host}"
    return parts._replace(netloc=netloc).geturl()


def open_sink(url: str) -> Sink:
    """The sink a URL names (not yet checked: call ``check()``)."""
    scheme = urlsplit(url).scheme.lower()
    module_name = BACKENDS.get(scheme)
    if module_name is None:
        known = ", ".join(f"{s}://" for s in sorted(BACKENDS))
        raise SinkSetupError(
            f"--sink {redact(url)}: unknown sink {scheme + '://' if scheme else 'URL'}; "
            f"logkit writes to the file store (the default, --store) or to {known}"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SinkSetupError(
            f"--sink {redact(url)}: the {scheme} sink needs {exc.name}, which is not installed "
            f"(pip install 'logkit[{scheme.removesuffix('ql')}]')"
        ) from exc
    sink: Sink = module.SINK(url)
    return sink
