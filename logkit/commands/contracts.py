"""``logkit contracts``: every contract with its latest version, owner and status."""

from __future__ import annotations

import json
import sys
from typing import IO, Any

from logkit.registry import Registry
from logkit.settings import Settings


def contract_rows(registry: Registry) -> list[dict[str, Any]]:
    rows = []
    for name in registry.names():
        versions = registry.versions(name)
        latest = registry.get(f"{name}@{versions[-1]}")
        rows.append(
            {
                "name": name,
                "latest": latest.version,
                "versions": versions,
                "owner": latest.owner,
                "compatibility": latest.compatibility,
                "status": latest.status,
                "title": latest.title,
            }
        )
    return rows


def contracts(settings: Settings, *, fmt: str = "text", out: IO[str] | None = None) -> int:
    out = out or sys.stdout
    registry = Registry.load(settings.registry)
    rows = contract_rows(registry)
    if fmt == "json":
        out.write(json.dumps(rows, indent=2) + "\n")
        return 0
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("contract", "latest", "versions", "owner", "compatibility", "status", "title"):
        table.add_column(column, no_wrap=column != "title")
    for row in rows:
        status = escape(row["status"])
        if row["status"] != "active":
            status = f"[yellow]{status}[/]"
        table.add_row(
            row["name"],
            str(row["latest"]),
            ", ".join(map(str, row["versions"])),
            escape(row["owner"] or "-"),
            escape(row["compatibility"]),
            status,
            escape(row["title"]),
        )
    console = Console(file=out, width=None if out.isatty() else 1000)
    console.print(table)
    return 0
