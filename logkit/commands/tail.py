"""``logkit tail``: the newest events (or dead letters) of the store, for debugging."""

from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from logkit.errors import UsageError
from logkit.registry import ContractRef
from logkit.schemawalk import resolve_pointer
from logkit.store import reader

_AGO = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_STAMP = re.compile(rb'"received_at":"([^"]*)"')


@dataclass
class TailOptions:
    store: Path
    contract: str | None = None
    count: int = 10
    follow: bool = False
    since: str | None = None
    dead_letter: bool = False
    where: list[str] = field(default_factory=list)
    fmt: str = "pretty"
    poll_seconds: float = 0.5
    follow_for: float | None = None  # stop following after this long (tests, scripts)
    out: IO[str] = field(default_factory=lambda: sys.stdout)
    err: IO[str] = field(default_factory=lambda: sys.stderr)


def parse_since(text: str, now: datetime | None = None) -> str:
    """``10m``, ``2h``, ``3d`` or an RFC 3339 time -> an RFC 3339 UTC stamp to compare with."""
    now = now or datetime.now(UTC)
    match = _AGO.match(text.strip())
    if match:
        moment = now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    else:
        try:
            moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(
                f"--since {text!r}: give a duration such as 10m, 2h, 3d or a time such as "
                "2026-12-03T17:00:00Z"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_where(items: list[str]) -> list[tuple[str, Any]]:
    """``/user_id=u1`` -> (pointer into the payload, expected JSON value)."""
    conditions = []
    for item in items:
        pointer, sep, raw = item.partition("=")
        if not sep or not pointer.startswith("/"):
            raise UsageError(
                f"--where {item!r}: write POINTER=VALUE with a JSON pointer into the payload, "
                "e.g. /user_id=u1 or /results/0/position=0"
            )
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw  # a bare word is a string
        conditions.append((pointer, value))
    return conditions


def tail(options: TailOptions) -> int:
    if options.count < 0:
        raise UsageError("-n must be zero or more")
    ref = ContractRef.parse(options.contract) if options.contract else None
    if ref and options.dead_letter:
        raise UsageError("--dead-letter shows every dead letter; filter with --where /contract=…")
    since = parse_since(options.since) if options.since else None
    conditions = parse_where(options.where)
    root = options.store
    if not root.is_dir():
        raise UsageError(f"store {str(root)!r} not found (set --store or LOGKIT_STORE)")
    _recover(root)

    def segments() -> list[reader.SegmentFile]:
        return reader.list_segments(
            root,
            dead_letter=options.dead_letter,
            contract=ref.name if ref else None,
            version=ref.version if ref else None,
            since_dt=since[:10] if since else None,
        )

    def keep(line: bytes) -> bool:
        if since is not None and stamp(line) < since:
            return False
        if not conditions:
            return True
        try:
            record = json.loads(line)
        except ValueError:
            return False
        target = record if options.dead_letter else record.get("payload")
        for pointer, value in conditions:
            try:
                if resolve_pointer(target, pointer) != value:
                    return False
            except (KeyError, IndexError, ValueError, TypeError):
                return False
        return True

    def corrupt(exc: reader.CorruptSegment) -> None:
        options.err.write(f"logkit: warning: {exc}\n")

    listed = segments()
    lines = reader.newest(listed, options.count, stamp=stamp, keep=keep, on_corrupt=corrupt)
    render = _json_line if options.fmt == "json" else _pretty(options)
    for line in lines:
        render(line, options.out)
    options.out.flush()
    if not options.follow:
        return 0
    follower = reader.Follower.at_end(listed)
    started = time.monotonic()
    while options.follow_for is None or time.monotonic() - started < options.follow_for:
        time.sleep(options.poll_seconds)
        new = [line for line in follower.new_lines(segments()) if keep(line)]
        for line in sorted(new, key=stamp):
            render(line, options.out)
        options.out.flush()
    return 0


def stamp(line: bytes) -> str:
    match = _STAMP.search(line)
    return match.group(1).decode() if match else ""


def _recover(root: Path) -> None:
    """Finish what dead writers left, as every command that opens the store does."""
    from logkit.commands.ingest import recover_store

    recover_store(root)


def _json_line(line: bytes, out: IO[str]) -> None:
    out.write(line.decode("utf-8", "replace") + "\n")


def _pretty(options: TailOptions) -> Any:
    from rich.console import Console
    from rich.markup import escape

    console = Console(file=options.out, highlight=False, soft_wrap=True)

    def render(line: bytes, out: IO[str]) -> None:
        try:
            record = json.loads(line)
        except ValueError:
            console.print(
                f"[red]unreadable line:[/] {escape(line[:200].decode('utf-8', 'replace'))}"
            )
            return
        when = record.get("received_at", "?")
        label = record.get("contract") or "-"
        if record.get("version") is not None:
            label = f"{label}@{record['version']}"
        if options.dead_letter:
            console.print(
                f"[dim]{escape(when)}[/] [red]{escape(str(record.get('reason')))}[/] "
                f"[cyan]{escape(label)}[/] [dim]{escape(str(record.get('id')))}[/]"
            )
            source = record.get("source") or {}
            if source:
                console.print(f"  from {escape(str(source.get('file')))}:{source.get('line')}")
            for error in record.get("errors", []):
                console.print(
                    f"  [yellow]{escape(error.get('path') or '(root)')}[/] "
                    f"[dim]\\[{escape(str(error.get('rule')))}][/] "
                    f"{escape(str(error.get('message')))}"
                )
            raw = record.get("raw")
            shown = raw if raw is not None else f"(base64) {record.get('raw_base64', '')}"
            console.print(f"  raw: {escape(shown[:300])}")
            return
        payload = json.dumps(record.get("payload"), ensure_ascii=False, separators=(", ", ": "))
        console.print(
            f"[dim]{escape(when)}[/] [cyan]{escape(label)}[/] "
            f"[dim]{escape(str(record.get('id')))}[/]\n  {escape(payload)}"
        )

    return render
