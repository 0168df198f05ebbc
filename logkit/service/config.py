"""What every worker needs to know, passed from ``logkit serve`` to its workers as JSON.

uvicorn starts each worker as a fresh process that imports the app by name, so the settings
travel in one environment variable rather than through arguments.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

ENV_VAR = "LOGKIT_SERVE_CONFIG"
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class ServiceConfig:
    registry: Path
    store: Path
    max_line_bytes: int
    max_depth: int
    #: Largest body of ``POST /log`` (a batch); a single event is limited by max_line_bytes.
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    fsync: str = "batch"
    batch_seconds: float = 1.0
    segment_bytes: int | None = None
    segment_seconds: float | None = None
    gzip: bool = False
    #: ``--sink URL``: the store then holds the sink's spool (``<store>/_spool/...``), which a
    #: deliverer thread per worker sends to the sink.
    sink: str | None = None
    sink_retry_seconds: float = 3.0
    #: How long a stopping worker may spend sending what is left in its spool.
    graceful_timeout: float = 30.0

    def to_env(self) -> str:
        data = asdict(self)
        data["registry"] = str(self.registry)
        data["store"] = str(self.store)
        return json.dumps(data)

    @classmethod
    def from_env(cls, environ: Any = None) -> ServiceConfig:
        raw = (environ if environ is not None else os.environ).get(ENV_VAR)
        if not raw:
            raise RuntimeError(
                f"{ENV_VAR} is not set: start the service with `logkit serve`, which sets it"
            )
        data = json.loads(raw)
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        data["registry"] = Path(data["registry"])
        data["store"] = Path(data["store"])
        return cls(**data)
