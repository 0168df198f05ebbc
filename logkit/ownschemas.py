"""logkit's own formats (contract metadata, envelope, dead letter, settings) as JSON Schemas.

They live in ``schemas/`` at the repository root and are packed into the wheel as
``logkit/schemas``; both places are looked up so a source checkout works too.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
_PLACES = (_HERE / "schemas", _HERE.parent / "schemas")


@cache
def load(name: str) -> dict[str, Any]:
    """``load("contract")`` -> the parsed ``schemas/contract.schema.json``."""
    for folder in _PLACES:
        path = folder / f"{name}.schema.json"
        if path.is_file():
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            return data
    raise FileNotFoundError(f"logkit's own schema {name!r} is missing from the installation")
