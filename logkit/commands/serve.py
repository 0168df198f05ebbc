"""``logkit serve``: the registry's contracts as an HTTP service (FastAPI on uvicorn).

The command checks what it can before starting (the registry compiles, the store folder can be
made, the port is free), then hands over to uvicorn: one server process, or with ``--workers N``
a supervisor and N worker processes that share the listening socket, each with its own store
writer. With ``--sink URL`` the sink is checked here first (a setup error is exit 2); each
worker then writes the sink's spool and sends it on (``logkit.service.deliverer``). SIGTERM
(or SIGINT) stops accepting connections, lets requests in flight finish, seals every worker's
segments (with a sink: sends what it can within --graceful-timeout) and exits 143 (130).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sys
import tempfile
from dataclasses import dataclass, field
from types import FrameType
from typing import IO, Any

from logkit.errors import StoreError, UsageError
from logkit.registry import Registry
from logkit.settings import Settings
from logkit.store.writer import FSYNC_POLICIES

APP = "logkit.service.app:create_app_from_env"
PROTOCOL = "logkit.service.protocol:GuardedHttpToolsProtocol"
STARTUP_FAILED = 3


@dataclass
class ServeOptions:
    settings: Settings
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    fsync: str = "batch"
    gzip: bool = False
    segment_bytes: int | None = None
    segment_seconds: float | None = None
    max_body_bytes: int | None = None
    client_timeout: float = 30.0
    keep_alive: float = 5.0
    graceful_timeout: float = 30.0
    limit_concurrency: int | None = None
    access_log: bool = False
    log_level: str = "info"
    sink: str | None = None
    sink_retry_seconds: float = 3.0
    err: IO[str] = field(default_factory=lambda: sys.stderr)


class _Signals:
    """Remembers the last SIGINT/SIGTERM, which uvicorn hands back once it has shut down."""

    def __init__(self) -> None:
        self.signum = 0

    def __call__(self, signum: int, _frame: FrameType | None) -> None:
        self.signum = signum


def check(options: ServeOptions) -> None:
    """Refuse what cannot work before starting any process."""
    if options.workers < 1:
        raise UsageError("--workers must be 1 or more")
    if not 0 <= options.port <= 65535:
        raise UsageError(f"--port {options.port}: choose a port from 1 to 65535")
    if options.fsync not in FSYNC_POLICIES:
        raise UsageError(f"unknown --fsync {options.fsync!r}; choose always, batch or never")
    for name in ("client_timeout", "keep_alive", "graceful_timeout"):
        if getattr(options, name) <= 0:
            raise UsageError(f"--{name.replace('_', '-')} must be more than 0 seconds")
    if options.max_body_bytes is not None and options.max_body_bytes < 1:
        raise UsageError("--max-body-mb must be more than 0")
    if options.limit_concurrency is not None and options.limit_concurrency < 1:
        raise UsageError("--limit-concurrency must be 1 or more")
    if options.sink_retry_seconds < 0:
        raise UsageError("--sink-retry-seconds must be 0 or more")


def check_sink(options: ServeOptions) -> None:
    """Connect to ``--sink`` once before serving: a setup error (wrong address, unknown topic
    or table, bad credentials) raises here (exit 2, one line); a sink that is only down is
    said, and the workers spool until it is back. The connection is closed again: each
    worker opens its own."""
    from logkit.sinks import open_sink
    from logkit.sinks.delivery import Delivery, RetryPolicy, spool_root
    from logkit.sinks.spool import record_sink

    assert options.sink is not None
    delivery = Delivery(
        open_sink(options.sink), RetryPolicy(retry_seconds=options.sink_retry_seconds)
    )
    try:
        started = delivery.start()
    finally:
        delivery.sink.close()
    if started.notice:
        options.err.write(f"logkit: {started.notice}\n")
        options.err.flush()
    root = spool_root(options.settings.store, options.sink)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"{root}: cannot create the spool: {exc.strerror or exc}") from exc
    record_sink(root, delivery.sink.label)


def _port_is_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise UsageError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}"
                + (" (choose another --port)" if exc.errno == 98 else "")
            ) from exc


def _require_extra() -> None:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise UsageError(
            f"logkit serve needs {exc.name}: install the serve extra, pip install 'logkit[serve]'"
        ) from exc


def serve(options: ServeOptions) -> int:
    check(options)
    _require_extra()
    settings = options.settings
    registry = Registry.load(settings.registry)
    for contract in registry:
        registry.validator(contract)
    try:
        settings.store.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"{settings.store}: cannot create the store: {exc.strerror or exc}"
        ) from exc
    _port_is_free(options.host, options.port)
    if options.sink:
        check_sink(options)

    from logkit.service.config import DEFAULT_MAX_BODY_BYTES, ENV_VAR, ServiceConfig
    from logkit.service.metrics import MULTIPROC_ENV
    from logkit.service.protocol import CLIENT_TIMEOUT_ENV

    config = ServiceConfig(
        registry=registry.root,
        store=settings.store.resolve(),
        max_line_bytes=settings.max_line_bytes,
        max_depth=settings.max_depth,
        max_body_bytes=options.max_body_bytes or DEFAULT_MAX_BODY_BYTES,
        fsync=options.fsync,
        segment_bytes=options.segment_bytes,
        segment_seconds=options.segment_seconds,
        gzip=options.gzip,
        sink=options.sink,
        sink_retry_seconds=options.sink_retry_seconds,
        graceful_timeout=options.graceful_timeout,
    )
    saved = {k: os.environ.get(k) for k in (ENV_VAR, MULTIPROC_ENV, CLIENT_TIMEOUT_ENV)}
    os.environ[ENV_VAR] = config.to_env()
    os.environ[CLIENT_TIMEOUT_ENV] = str(options.client_timeout)
    # Several workers share their metrics through files in a fresh folder (prometheus_client's
    # multiprocess mode); one worker keeps them in memory, which is cheaper per request.
    metrics_dir = None
    if options.workers > 1:
        metrics_dir = tempfile.mkdtemp(prefix="logkit-serve-metrics-")
        os.environ[MULTIPROC_ENV] = metrics_dir
    else:
        os.environ.pop(MULTIPROC_ENV, None)
    try:
        return _run(options)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _uvicorn_config(options: ServeOptions) -> Any:
    import uvicorn

    try:
        import httptools  # noqa: F401
    except ImportError:  # pragma: no cover - a serve extra without httptools
        http = "auto"
    else:
        http = PROTOCOL
    return uvicorn.Config(
        APP,
        factory=True,
        host=options.host,
        port=options.port,
        workers=options.workers,
        http=http,
        lifespan="on",
        access_log=options.access_log,
        log_level=options.log_level,
        timeout_keep_alive=int(options.keep_alive) or 1,
        timeout_graceful_shutdown=int(options.graceful_timeout) or 1,
        limit_concurrency=options.limit_concurrency,
        server_header=False,
    )


def _run(options: ServeOptions) -> int:
    config = _uvicorn_config(options)
    signals = _Signals()
    previous = {sig: signal.signal(sig, signals) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if options.workers == 1:
            import uvicorn

            server = uvicorn.Server(config)
            # uvicorn installs its own handlers while it runs, restores ours after a graceful
            # shutdown and raises the signal again, which lands in ``signals``.
            server.run()
            if signals.signum:
                return 128 + signals.signum
            return 0 if server.started else STARTUP_FAILED
        import inspect

        import uvicorn
        from uvicorn.supervisors import Multiprocess

        sock = config.bind_socket()
        if "target" in inspect.signature(Multiprocess).parameters:  # uvicorn before 0.50
            supervisor = Multiprocess(
                config,
                target=uvicorn.Server(config).run,  # type: ignore[call-arg]
                sockets=[sock],
            )
        else:
            supervisor = Multiprocess(config, sockets=[sock])
        for sig in (signal.SIGINT, signal.SIGTERM):
            _also_record(sig, signals)
        try:
            supervisor.run()
        finally:
            sock.close()
        # The supervisor only stops by itself when a worker could not start.
        return 128 + signals.signum if signals.signum else STARTUP_FAILED
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _also_record(sig: int, signals: _Signals) -> None:
    handler = signal.getsignal(sig)

    def both(signum: int, frame: FrameType | None) -> None:
        signals(signum, frame)
        if callable(handler):
            handler(signum, frame)

    signal.signal(sig, both)
