"""``logkit show NAME[@V]``: the contract's fields as a table, or the schema itself."""

from __future__ import annotations

import json
import sys
from typing import IO

from logkit.fields import field_rows
from logkit.registry import Registry
from logkit.settings import Settings


def show(settings: Settings, ref: str, *, fmt: str = "table", out: IO[str] | None = None) -> int:
    out = out or sys.stdout
    registry = Registry.load(settings.registry)
    contract = registry.get(ref)
    if fmt == "json":
        out.write(json.dumps(contract.schema, indent=2, ensure_ascii=False) + "\n")
        return 0
    if fmt == "yaml":
        import yaml

        out.write(yaml.safe_dump(contract.schema, sort_keys=False, allow_unicode=True))
        return 0
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(file=out, width=None if out.isatty() else 1000, highlight=False)
    versions = ", ".join(str(v) for v in registry.versions(contract.name))
    console.print(f"[bold]{contract.label}[/]  {escape(contract.title)}")
    if contract.description:
        console.print(escape(contract.description))
    console.print(
        escape(
            f"owner: {contract.owner or '-'}   compatibility: "
            f"{contract.compatibility}   status: {contract.status}   "
            f"versions: {versions}"
        )
    )
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("field", "type", "required", "constraints", "description"):
        table.add_column(column, no_wrap=column in ("field", "type", "required"), overflow="fold")
    for row in field_rows(registry, contract):
        table.add_row(
            escape(row.path),
            escape(row.type),
            "yes" if row.required else "",
            escape(row.constraints),
            escape(row.description),
        )
    console.print()
    console.print(table)
    return 0
