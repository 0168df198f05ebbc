"""The typer app: options in, one call out. Imports stay lazy so ``logkit --help`` is instant."""

from __future__ import annotations

import gc
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    name="logkit",
    help="Contracts for the events your services log: validate, lint, check compatibility.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

RegistryOpt = Annotated[
    Path | None,
    typer.Option(
        "--registry",
        help="Registry folder [default: registry; env LOGKIT_REGISTRY].",
        show_default=False,
    ),
]
SinkOpt = Annotated[
    str | None,
    typer.Option(
        "--sink",
        help="Write to this sink instead of the store, e.g. "
        "postgresql://USER@HOST:PORT/DB?table=T (spooled to the store while it is down).",
        show_default=False,
    ),
]
SinkRetryOpt = Annotated[
    float,
    typer.Option(
        "--sink-retry-seconds",
        help="Retry a sink that fails for about this long (backoff) before spooling.",
    ),
]
MaxLineBytesOpt = Annotated[
    int | None,
    typer.Option(
        "--max-line-bytes", help="Largest event accepted [default: 1 MiB].", show_default=False
    ),
]
MetricsFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--metrics-file",
        help="Write Prometheus metrics here every few seconds.",
        show_default=False,
    ),
]
FormatOpt = Annotated[
    str, typer.Option("--format", "-f", help="Output format: text, json, github or junit.")
]
ColorOpt = Annotated[
    bool | None,
    typer.Option(
        "--color/--no-color",
        help="Force colour on or off [default: on for a terminal].",
        show_default=False,
    ),
]


def _settings(**flags: Any) -> Any:
    from logkit.settings import load_settings

    settings = load_settings(**flags)
    for warning in settings.warnings:
        print(f"logkit: warning: {warning}", file=sys.stderr)
    return settings


def _check_format(fmt: str, allowed: tuple[str, ...] = ("text", "json", "github", "junit")) -> str:
    if fmt not in allowed:
        from logkit.errors import UsageError
        from logkit.registry import did_you_mean

        raise UsageError(
            f"unknown --format {fmt!r}{did_you_mean(fmt, allowed)}; "
            f"choose one of: {', '.join(allowed)}"
        )
    return fmt


@app.command()
def validate(
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            help="Event files or folders (searched recursively); '-' or a pipe reads stdin.",
            show_default=False,
        ),
    ] = None,
    contract: Annotated[
        str | None,
        typer.Option(
            "--contract",
            "-c",
            help="Check bare events against NAME or NAME@VERSION.",
            show_default=False,
        ),
    ] = None,
    max_errors: Annotated[
        int | None,
        typer.Option("--max-errors", help="Stop after N invalid events.", show_default=False),
    ] = None,
    fmt: FormatOpt = "text",
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            help="Processes to validate with [default: all cores for large inputs].",
            show_default=False,
        ),
    ] = None,
    max_line_bytes: MaxLineBytesOpt = None,
    registry: RegistryOpt = None,
    color: ColorOpt = None,
) -> None:
    """Check events against their contracts; exit 1 if any event is invalid."""
    from logkit.commands.validate import ValidateOptions
    from logkit.commands.validate import validate as run

    options = ValidateOptions(
        paths=paths or [],
        settings=_settings(registry=registry, max_line_bytes=max_line_bytes),
        contract=contract,
        max_errors=max_errors,
        fmt=_check_format(fmt),
        workers=workers,
        color=color,
    )
    raise typer.Exit(run(options))


@app.command()
def lint(
    fmt: FormatOpt = "text",
    registry: RegistryOpt = None,
    strict: Annotated[bool, typer.Option("--strict", help="Fail on warnings too.")] = False,
    color: ColorOpt = None,
) -> None:
    """Check the registry's health: layout, schemas, metadata, examples, closed objects."""
    from logkit.commands.lint import lint as run

    raise typer.Exit(
        run(_settings(registry=registry), fmt=_check_format(fmt), strict=strict, color=color)
    )


@app.command()
def contracts(
    fmt: Annotated[str, typer.Option("--format", "-f", help="text or json.")] = "text",
    registry: RegistryOpt = None,
) -> None:
    """List every contract: latest version, versions, owner, compatibility, status."""
    from logkit.commands.contracts import contracts as run

    raise typer.Exit(run(_settings(registry=registry), fmt=_check_format(fmt, ("text", "json"))))


@app.command()
def show(
    contract: Annotated[str, typer.Argument(help="NAME or NAME@VERSION (default: latest).")],
    fmt: Annotated[
        str,
        typer.Option(
            "--format", "-f", help="table (the fields), json or yaml (the schema itself)."
        ),
    ] = "table",
    registry: RegistryOpt = None,
) -> None:
    """Show a contract's fields: path, type, required, constraints, description."""
    from logkit.commands.show import show as run

    raise typer.Exit(
        run(
            _settings(registry=registry),
            contract,
            fmt=_check_format(fmt, ("table", "json", "yaml")),
        )
    )


StoreOpt = Annotated[
    Path | None,
    typer.Option(
        "--store",
        help="Store folder [default: .logkit/store; env LOGKIT_STORE].",
        show_default=False,
    ),
]


@app.command()
def ingest(
    paths: Annotated[
        list[str] | None,
        typer.Argument(help="JSONL files; '-' or a pipe reads stdin.", show_default=False),
    ] = None,
    contract: Annotated[
        str | None,
        typer.Option(
            "--contract",
            "-c",
            help="Events are bare payloads of NAME[@VERSION].",
            show_default=False,
        ),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 1 if any line was dead-lettered.")
    ] = False,
    fsync: Annotated[
        str,
        typer.Option(
            "--fsync", help="always, batch (at most --fsync-seconds lost on power loss) or never."
        ),
    ] = "batch",
    fsync_seconds: Annotated[
        float | None,
        typer.Option(
            "--fsync-seconds",
            help="With --fsync batch: the longest time between fsyncs [default: 1].",
            show_default=False,
        ),
    ] = None,
    gzip_segments: Annotated[
        bool, typer.Option("--gzip", help="Gzip segments as they are sealed.")
    ] = False,
    segment_mb: Annotated[
        float | None,
        typer.Option(
            "--segment-mb", help="Seal a segment at this size [default: 128].", show_default=False
        ),
    ] = None,
    segment_seconds: Annotated[
        float | None,
        typer.Option(
            "--segment-seconds",
            help="Seal a segment at this age [default: 300].",
            show_default=False,
        ),
    ] = None,
    summary_json: Annotated[
        Path | None,
        typer.Option(
            "--summary-json", help="Also write the summary as JSON here.", show_default=False
        ),
    ] = None,
    metrics_file: MetricsFileOpt = None,
    progress: Annotated[
        bool | None,
        typer.Option(
            "--progress/--no-progress",
            help="Progress line [default: on a terminal].",
            show_default=False,
        ),
    ] = None,
    from_start: Annotated[
        bool, typer.Option("--from-start", help="Ignore checkpoints: ingest files from the start.")
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            help="Processes that validate and build envelopes [default: 1].",
            show_default=False,
        ),
    ] = None,
    max_line_bytes: MaxLineBytesOpt = None,
    sink: SinkOpt = None,
    sink_retry_seconds: SinkRetryOpt = 3.0,
    registry: RegistryOpt = None,
    store: StoreOpt = None,
) -> None:
    """Validate JSONL events and append them to the store; invalid ones become dead letters."""
    from logkit.commands.ingest import IngestOptions
    from logkit.commands.ingest import ingest as run

    if fsync not in ("always", "batch", "never"):
        from logkit.errors import UsageError

        raise UsageError(f"unknown --fsync {fsync!r}; choose always, batch or never")
    if fsync_seconds is not None and not fsync_seconds > 0:
        from logkit.errors import UsageError

        raise UsageError(f"--fsync-seconds must be more than 0, not {fsync_seconds:g}")
    options = IngestOptions(
        paths=paths or [],
        settings=_settings(registry=registry, store=store, max_line_bytes=max_line_bytes),
        contract=contract,
        strict=strict,
        fsync=fsync,
        gzip=gzip_segments,
        segment_bytes=int(segment_mb * 1024 * 1024) if segment_mb else None,
        segment_seconds=segment_seconds,
        fsync_seconds=fsync_seconds,
        summary_json=summary_json,
        metrics_file=metrics_file,
        progress=progress,
        from_start=from_start,
        workers=workers,
        sink=sink,
        sink_retry_seconds=sink_retry_seconds,
    )
    _steady_gc()
    raise typer.Exit(run(options))


@app.command()
def replay(
    sink: Annotated[
        str | None,
        typer.Option(
            "--sink",
            help="Replay only this sink's spool [default: every spool, each to its sink].",
            show_default=False,
        ),
    ] = None,
    spool: Annotated[
        Path | None,
        typer.Option(
            "--spool",
            help="Replay this spool folder (to --sink if given, else to the sink it records).",
            show_default=False,
        ),
    ] = None,
    sink_retry_seconds: Annotated[
        float,
        typer.Option(
            "--sink-retry-seconds",
            help="Retry a sink that fails for about this long (backoff) before giving up.",
        ),
    ] = 3.0,
    store: StoreOpt = None,
) -> None:
    """Send what `ingest --sink` spooled while its sink was down; remove what it confirmed."""
    from logkit.commands.replay import ReplayOptions
    from logkit.commands.replay import replay as run

    options = ReplayOptions(
        settings=_settings(store=store),
        sink=sink,
        spool=spool,
        retry_seconds=sink_retry_seconds,
    )
    raise typer.Exit(run(options))


@app.command()
def tail(
    contract: Annotated[
        str | None,
        typer.Argument(help="Only this contract (NAME or NAME@VERSION).", show_default=False),
    ] = None,
    count: Annotated[
        int, typer.Option("-n", "--lines", help="How many of the newest events.")
    ] = 10,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new events.")
    ] = False,
    since: Annotated[
        str | None,
        typer.Option(
            "--since", help="Only events newer than 10m, 2h, 3d or a time.", show_default=False
        ),
    ] = None,
    dead_letter: Annotated[
        bool, typer.Option("--dead-letter", help="Show dead letters instead.")
    ] = False,
    where: Annotated[
        list[str] | None,
        typer.Option(
            "--where",
            help="POINTER=VALUE filter on the payload, e.g. /user_id=u1 (repeatable).",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="pretty or json (envelopes as JSONL).")
    ] = "pretty",
    store: StoreOpt = None,
) -> None:
    """Show the newest events of the store, across partitions, in received_at order."""
    from logkit.commands.tail import TailOptions
    from logkit.commands.tail import tail as run

    settings = _settings(store=store)
    options = TailOptions(
        store=settings.store,
        contract=contract,
        count=count,
        follow=follow,
        since=since,
        dead_letter=dead_letter,
        where=where or [],
        fmt=_check_format(fmt, ("pretty", "json")),
    )
    raise typer.Exit(run(options))


@app.command("check-compat")
def check_compat(
    files: Annotated[
        list[str] | None,
        typer.Argument(
            help="Registry files (as pre-commit passes them): check the contracts they belong "
            "to [default: every contract].",
            show_default=False,
        ),
    ] = None,
    mode: Annotated[
        str | None,
        typer.Option(
            "--mode",
            help="BACKWARD, FORWARD, FULL, their _TRANSITIVE forms, or NONE "
            "[default: each contract's x-logkit.compatibility].",
            show_default=False,
        ),
    ] = None,
    policy: Annotated[
        str | None,
        typer.Option(
            "--policy",
            help="strict (exact set relations) or lenient (producers never send undeclared "
            "properties) [default: strict].",
            show_default=False,
        ),
    ] = None,
    against: Annotated[
        str | None,
        typer.Option(
            "--against",
            help="Also compare with the registry at this git ref (CI: the merge-base with "
            "main): published versions must still accept exactly the same events.",
            show_default=False,
        ),
    ] = None,
    fmt: FormatOpt = "text",
    registry: RegistryOpt = None,
    color: ColorOpt = None,
) -> None:
    """Check that each contract version is compatible with the ones before it; exit 1 if not."""
    from logkit.commands.compat import CompatOptions
    from logkit.commands.compat import check_compat as run

    options = CompatOptions(
        settings=_settings(registry=registry),
        files=files or [],
        mode=mode,
        policy=policy,
        fmt=_check_format(fmt),
        color=color,
        against=against,
    )
    raise typer.Exit(run(options))


@app.command("diff")
def diff(
    args: Annotated[
        list[str],
        typer.Argument(help="NAME A B, NAME@A NAME@B, or FILE_A FILE_B.", show_default=False),
    ],
    fmt: Annotated[str, typer.Option("--format", "-f", help="text or json.")] = "text",
    mode: Annotated[
        str | None,
        typer.Option("--mode", help="Grade changes under this mode.", show_default=False),
    ] = None,
    registry: RegistryOpt = None,
) -> None:
    """Show what changed between two versions of a contract, each change classified."""
    from logkit.commands.diff import DiffOptions
    from logkit.commands.diff import diff as run

    options = DiffOptions(
        settings=_settings(registry=registry),
        args=args,
        mode=mode,
        fmt=_check_format(fmt, ("text", "json")),
    )
    raise typer.Exit(run(options))


@app.command()
def serve(
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (0.0.0.0: every interface).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8080,
    workers: Annotated[
        int, typer.Option("--workers", help="Worker processes, each with its own store writer.")
    ] = 1,
    fsync: Annotated[
        str,
        typer.Option(
            "--fsync",
            help="always (answer after fsync), batch (fsync every second) or never.",
        ),
    ] = "batch",
    gzip_segments: Annotated[
        bool, typer.Option("--gzip", help="Gzip segments as they are sealed.")
    ] = False,
    segment_mb: Annotated[
        float | None,
        typer.Option(
            "--segment-mb", help="Seal a segment at this size [default: 128].", show_default=False
        ),
    ] = None,
    segment_seconds: Annotated[
        float | None,
        typer.Option(
            "--segment-seconds",
            help="Seal a segment at this age [default: 300].",
            show_default=False,
        ),
    ] = None,
    max_line_bytes: MaxLineBytesOpt = None,
    max_body_mb: Annotated[
        float, typer.Option("--max-body-mb", help="Largest batch body of POST /log.")
    ] = 16,
    client_timeout: Annotated[
        float,
        typer.Option(
            "--client-timeout", help="Seconds a client has to send its headers, then its body."
        ),
    ] = 30,
    graceful_timeout: Annotated[
        float,
        typer.Option(
            "--graceful-timeout", help="Seconds to let requests finish on SIGTERM before exiting."
        ),
    ] = 30,
    limit_concurrency: Annotated[
        int | None,
        typer.Option(
            "--limit-concurrency",
            help="Answer 503 past this many connections per worker [default: no limit].",
            show_default=False,
        ),
    ] = None,
    access_log: Annotated[
        bool, typer.Option("--access-log", help="Log every request to stderr.")
    ] = False,
    registry: RegistryOpt = None,
    store: StoreOpt = None,
    sink: SinkOpt = None,
    sink_retry_seconds: SinkRetryOpt = 3.0,
) -> None:
    """Serve the contracts over HTTP: POST events, GET recent ones, try them all from /docs."""
    from logkit.commands.serve import ServeOptions
    from logkit.commands.serve import serve as run

    options = ServeOptions(
        settings=_settings(registry=registry, store=store, max_line_bytes=max_line_bytes),
        host=host,
        port=port,
        workers=workers,
        fsync=fsync,
        gzip=gzip_segments,
        segment_bytes=int(segment_mb * 1024 * 1024) if segment_mb else None,
        segment_seconds=segment_seconds,
        max_body_bytes=int(max_body_mb * 1024 * 1024),
        client_timeout=client_timeout,
        graceful_timeout=graceful_timeout,
        limit_concurrency=limit_concurrency,
        access_log=access_log,
        sink=sink,
        sink_retry_seconds=sink_retry_seconds,
    )
    raise typer.Exit(run(options))


@app.command()
def consume(
    url: Annotated[
        str, typer.Argument(help="kafka://HOST:PORT/TOPIC (librdkafka options as ?name=value).")
    ],
    group: Annotated[
        str, typer.Option("--group", "-g", help="Consumer group: its processes share the topic.")
    ],
    contract: Annotated[
        str | None,
        typer.Option(
            "--contract",
            "-c",
            help="Messages are bare payloads of NAME[@VERSION].",
            show_default=False,
        ),
    ] = None,
    sink: Annotated[
        str | None,
        typer.Option(
            "--sink",
            help="Write to this sink (kafka://..., postgresql://...) instead of the store.",
            show_default=False,
        ),
    ] = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", help="Messages per batch (one write, one commit).")
    ] = 1000,
    max_messages: Annotated[
        int | None,
        typer.Option("--max-messages", help="Stop after N messages.", show_default=False),
    ] = None,
    idle_timeout: Annotated[
        float | None,
        typer.Option(
            "--idle-timeout", help="Stop after S seconds with no message.", show_default=False
        ),
    ] = None,
    offset_reset: Annotated[
        str,
        typer.Option("--offset-reset", help="Where a new group starts: earliest or latest."),
    ] = "earliest",
    retry_seconds: Annotated[
        float,
        typer.Option("--retry-seconds", help="Retry a sink that is down this long, then exit 3."),
    ] = 60,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 1 if any message was dead-lettered.")
    ] = False,
    metrics_file: MetricsFileOpt = None,
    max_line_bytes: MaxLineBytesOpt = None,
    registry: RegistryOpt = None,
    store: StoreOpt = None,
) -> None:
    """Validate raw events from a Kafka topic in a consumer group; commit after they are stored."""
    from logkit.commands.consume import ConsumeOptions
    from logkit.commands.consume import consume as run

    if sink is not None and store is not None:
        from logkit.errors import UsageError

        raise UsageError("give --sink or --store, not both")
    options = ConsumeOptions(
        url=url,
        group=group,
        settings=_settings(registry=registry, store=store, max_line_bytes=max_line_bytes),
        contract=contract,
        sink=sink,
        batch_size=batch_size,
        max_messages=max_messages,
        idle_timeout=idle_timeout,
        offset_reset=offset_reset,
        retry_seconds=retry_seconds,
        strict=strict,
        metrics_file=metrics_file,
    )
    raise typer.Exit(run(options))


def _version_callback(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"logkit {version('logkit')}")
        except PackageNotFoundError:
            print("logkit (not installed)")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the version and exit.",
            callback=_version_callback,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """logkit: contracts for the events your services log."""


class _Terminated(BaseException):
    """SIGTERM, for commands that do not stop on it cleanly themselves (tail --follow)."""


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code; expected failures print one line, no traceback."""
    from logkit.errors import LogkitError

    interrupted = False

    def on_sigint(_signum: int, _frame: object) -> None:
        # Commands that stop cleanly on a signal (ingest) install their own handler instead.
        nonlocal interrupted
        interrupted = True
        raise KeyboardInterrupt

    def on_sigterm(_signum: int, _frame: object) -> None:
        raise _Terminated

    _forked_children_die_on_sigterm()
    previous = signal.signal(signal.SIGINT, on_sigint)
    previous_term = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        result = app(args=argv, prog_name="logkit", standalone_mode=False)
    except LogkitError as exc:
        print(f"logkit: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("logkit: interrupted", file=sys.stderr)
        return 130
    except _Terminated:
        print("logkit: terminated", file=sys.stderr)
        return 143
    except BrokenPipeError:
        # The reader went away (`logkit ... | head`); that is not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:  # click's usage errors and exits arrive here too
        return _click_exit(exc)
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)
    if interrupted:  # typer turns Ctrl-C into a quiet exit code 130
        print("logkit: interrupted", file=sys.stderr)
    return int(result or 0)


_AT_FORK_REGISTERED = False


def _forked_children_die_on_sigterm() -> None:
    """A forked child (a worker process) gets SIGTERM's default action back at once.

    The handler ``main`` installs would be inherited, and Python runs a handler only in the
    main thread: a worker that a pool forks from one of its own threads (to replace one that
    exited) caught ``Pool.terminate()``'s SIGTERM and never acted on it (seen here: a worker
    left waiting, SIGTERM caught and none pending). Workers that must outlive a SIGTERM set
    that up themselves (ingest's and validate's ignore it).
    """
    global _AT_FORK_REGISTERED
    if not _AT_FORK_REGISTERED:
        os.register_at_fork(after_in_child=lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL))
        _AT_FORK_REGISTERED = True


def _click_exit(exc: Exception) -> int:
    exit_code = getattr(exc, "exit_code", None)
    if type(exc).__name__ == "Exit":
        return int(exit_code or 0)
    if type(exc).__name__ == "Abort":
        print("logkit: aborted", file=sys.stderr)
        return 130
    show_error = getattr(exc, "show", None)
    if callable(show_error) and exit_code is not None:
        show_error(file=sys.stderr)
        return int(exit_code)
    # Anything else is a bug in logkit: one line by default, the traceback on request.
    if os.environ.get("LOGKIT_DEBUG"):
        raise exc
    print(
        f"logkit: internal error: {type(exc).__name__}: {exc} (this is a bug in logkit; "
        "run again with LOGKIT_DEBUG=1 for the traceback and report it)",
        file=sys.stderr,
    )
    return 3


def _steady_gc() -> None:
    """Garbage collection for a long run over many events: what start-up made (modules,
    contracts, validators) is frozen out of every collection, and the youngest generation is
    collected every 10,000 allocations instead of 700. Each event's objects die young, so the
    collections found nearly nothing to free; fewer of them cost ingest ~0.7% of its
    instructions (callgrind, the bench's events)."""
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def main_exit() -> None:
    """Console-script entry point."""
    code = main()
    # The process ends here. The interpreter's own collections at exit would walk every object
    # the run left (~0.07 s after check-compat on a large registry); collect the garbage now, so
    # that its finalizers still run, and leave the rest to the operating system.
    gc.collect()
    gc.freeze()
    sys.exit(code)
