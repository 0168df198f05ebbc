"""The FastAPI app: routes that read requests, call ``Intake`` and the writer, render answers.

``create_app(config)`` builds one app (one per worker process); ``create_app_from_env`` is the
factory uvicorn imports in each worker. Handlers return bytes encoded with msgspec, which keeps
integers of any size exact, and never let a request's content raise past them: whatever a
client sends is answered with a status and a JSON problem, never a crashed worker.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from logkit.errors import LogkitError, StoreError, UnknownContractError, UsageError
from logkit.ingest import IngestBlock
from logkit.parse import Limits
from logkit.registry import ContractRef, Registry
from logkit.results import plural
from logkit.service import openapi
from logkit.service.config import ServiceConfig
from logkit.service.deliverer import Deliverer
from logkit.service.intake import STORED, Answer, BatchError, Intake
from logkit.service.metrics import RequestMetrics, ServiceMetrics
from logkit.service.writer import ServiceWriter
from logkit.sinks import redact

log = logging.getLogger("uvicorn.error")
JSON = "application/json"
JSON_LINES = frozenset(
    {"application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines"}
)
MAX_EVENTS_LIMIT = 1000
_encode = msgspec.json.encode
_OK = b'{"ok":true}'


class Problem(Exception):
    """A request answered with an error status and a JSON problem body."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        *,
        close: bool = False,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.close = close
        self.extra = dict(extra or {})

    def response(self) -> Response:
        body = {
            "ok": False,
            "status": self.status,
            "reason": self.reason,
            **self.extra,
            "errors": [{"path": "", "rule": self.reason, "message": self.message}],
        }
        headers = {"connection": "close"} if self.close else None
        return Response(_encode(body), self.status, headers=headers, media_type=JSON)


def _json(data: Any, status: int = 200) -> Response:
    return Response(_encode(data), status, media_type=JSON)


def create_app_from_env() -> FastAPI:
    """The app of one uvicorn worker, configured by ``logkit serve`` through the environment."""
    return create_app(ServiceConfig.from_env())


def create_app(config: ServiceConfig) -> FastAPI:
    registry = Registry.load(config.registry)
    for contract in registry:
        registry.validator(contract)  # compile every contract now: a broken one fails at start
    limits = Limits(config.max_line_bytes, config.max_depth)
    intake = Intake(registry, limits)
    # Batches are enveloped in a thread, with their own Intake (and id clock) and one at a time
    # per worker, so that a large batch does not stall the event loop's single events.
    batch_intake = Intake(registry, limits)
    batch_lock = asyncio.Lock()
    metrics = ServiceMetrics(frozenset((c.name, str(c.version)) for c in registry))
    writer: ServiceWriter | None = None
    deliverer: Deliverer | None = None
    # With --sink the worker writes the sink's spool, which its deliverer sends on.
    root = config.store
    if config.sink:
        from logkit.sinks.delivery import spool_root

        root = spool_root(config.store, config.sink)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        nonlocal writer, deliverer
        from logkit.commands.ingest import recover_store

        root.mkdir(parents=True, exist_ok=True)
        recover_store(root)  # segments of a worker that died (a sibling's are locked)
        writer = ServiceWriter(config, root)
        if config.sink:
            deliverer = _start_deliverer(config, root, metrics)
            writer.on_sealed = deliverer.wake
        writer.start()
        log.info(
            "logkit serve: %d contracts from %s; writing to %s as writer %s (fsync %s)%s",
            len(registry.names()),
            registry.root,
            root,
            writer.writer_id,
            config.fsync,
            f", delivered from there to {deliverer.label}" if deliverer else "",
        )
        try:
            yield
        finally:
            await writer.close()
            log.info("logkit serve: writer %s sealed its segments", writer.writer_id)
            writer = None
            if deliverer is not None:
                await _stop_deliverer(deliverer, root, config.graceful_timeout)
                deliverer = None

    from importlib.metadata import PackageNotFoundError, version

    try:
        app_version = version("logkit")
    except PackageNotFoundError:  # pragma: no cover - a source checkout
        app_version = "0"
    app = FastAPI(
        title="logkit",
        version=app_version,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    document = openapi.build(
        registry,
        version=app_version,
        max_line_bytes=config.max_line_bytes,
        max_body_bytes=config.max_body_bytes,
    )
    document_bytes = _encode(document)
    app.add_middleware(RequestMetrics, metrics=metrics)
    lean_routes = metrics.templates  # endpoint -> path template, for the request metrics

    def add_route(path: str, endpoint: Any, method: str) -> None:
        app.add_route(path, endpoint, methods=[method])
        lean_routes[endpoint] = path

    async def store(out: IngestBlock) -> None:
        if writer is None:  # pragma: no cover - only between shutdown and exit
            raise Problem(503, "shutting_down", "the service is shutting down; retry")
        try:
            await writer.write(out)
        except StoreError as exc:
            log.error("logkit serve: %s", exc)
            raise Problem(503, "store_unavailable", f"the store cannot take events: {exc}") from exc
        metrics.record(out)
        if deliverer is not None and metrics.sink is not None and not deliverer.up:
            metrics.sink.spool(out)

    @app.exception_handler(Problem)
    async def _problem(_request: Request, exc: Problem) -> Response:
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        reason = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = "no such endpoint; see /docs" if exc.status_code == 404 else str(exc.detail)
        response = Problem(exc.status_code, reason, message).response()
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    # -- service ---------------------------------------------------------------------------

    # The hot routes are plain Starlette routes (no dependency injection to solve per request),
    # the health check among them, so that it stays a fair baseline for the benchmark.
    async def health(_request: Request) -> Response:
        return Response(_OK, media_type=JSON)

    add_route("/", health, "GET")

    # -- events in -------------------------------------------------------------------------

    async def log_event(request: Request) -> Response:
        _require_json(request)
        body = await _read_body(request, config.max_line_bytes)
        params = request.path_params
        source = "POST " + request.scope["path"]
        out, answer = intake.single(params["contract"], params.get("version"), body, source)
        await store(out)
        if answer.stored:
            return _json(
                {
                    "id": answer.id,
                    "received_at": answer.received_at,
                    "contract": answer.contract,
                    "version": answer.version,
                }
            )
        return _refused(answer)

    async def log_latest(request: Request) -> Response:
        return await log_event(request)

    async def log_version(request: Request) -> Response:
        return await log_event(request)

    add_route("/log/{contract}", log_latest, "POST")
    add_route("/log/{contract}/{version}", log_version, "POST")

    async def log_batch(request: Request) -> Response:
        media = _media_type(request)
        if media != JSON and media not in JSON_LINES:
            raise Problem(
                415,
                "unsupported_media_type",
                f"a batch is application/x-ndjson (JSON lines) or application/json (an array "
                f"of routed events), not {media or 'a body with no Content-Type'}",
            )
        body = await _read_body(request, config.max_body_bytes)
        as_json = media == JSON
        source = "POST /log"
        async with batch_lock:
            try:
                if as_json:
                    out, answers, positions = await asyncio.to_thread(
                        batch_intake.json, body, source
                    )
                else:
                    out, answers, positions = await asyncio.to_thread(
                        batch_intake.jsonl, body, source
                    )
            except BatchError as exc:
                problem = exc.problem
                raise Problem(400, problem.reason, problem.message) from exc
        await store(out)
        where = "index" if as_json else "line"
        results = [{where: n, **a.as_dict()} for n, a in zip(positions, answers, strict=True)]
        stored = sum(1 for a in answers if a.reason == STORED)
        return _json(
            {
                "ok": stored == len(answers),
                "stored": stored,
                "dead_lettered": len(answers) - stored,
                "results": results,
            }
        )

    add_route("/log", log_batch, "POST")

    @app.get("/openapi.json")
    async def openapi_json() -> Response:
        return Response(document_bytes, media_type=JSON)

    assets = _swagger_assets()
    if assets is not None:
        from starlette.staticfiles import StaticFiles

        app.mount("/docs/static", StaticFiles(directory=assets), name="docs-static")

    @app.get("/docs")
    async def docs() -> HTMLResponse:
        from fastapi.openapi.docs import get_swagger_ui_html

        title = "logkit: try the contracts"
        if assets is None:
            return get_swagger_ui_html(openapi_url="/openapi.json", title=title)
        # Served by the service itself, so /docs works without reaching a CDN.
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=title,
            swagger_js_url="/docs/static/swagger-ui-bundle.js",
            swagger_css_url="/docs/static/swagger-ui.css",
            swagger_favicon_url="/docs/static/favicon.png",
        )

    @app.get("/metrics")
    async def metrics_text() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    # -- reading ---------------------------------------------------------------------------

    @app.get("/events/{contract}")
    def events(request: Request, contract: str) -> Response:
        if config.sink:
            # The spool holds only what the sink has not taken yet: reading it would show a
            # few undelivered events as if they were the recent ones.
            raise Problem(
                501,
                "events_in_sink",
                f"events go to {redact(config.sink)}; read them there (`logkit tail --store "
                f"{root}` shows the ones still waiting in the local spool)",
            )
        return _events(config, registry, contract, request.query_params)

    @app.get("/contracts")
    async def contracts() -> Response:
        from logkit.commands.contracts import contract_rows

        return _json(contract_rows(registry))

    @app.get("/contracts/{name}")
    async def contract_summary(name: str) -> Response:
        from logkit.commands.contracts import contract_rows

        for row in contract_rows(registry):
            if row["name"] == name:
                return _json(row)
        raise _unknown(registry, name)

    @app.get("/contracts/{name}/{version}")
    async def contract_schema(name: str, version: str) -> Response:
        if not version.isdigit() or version.startswith("0"):
            raise Problem(
                404, "unknown_contract", f"{version!r} is not a version (a positive integer)"
            )
        try:
            found = registry.get(ContractRef(name, int(version)))
        except (UnknownContractError, UsageError) as exc:
            raise Problem(404, "unknown_contract", str(exc)) from exc
        return _json(found.schema)

    return app


def _start_deliverer(config: ServiceConfig, root: Path, metrics: ServiceMetrics) -> Deliverer:
    """The worker's own sink connection and delivery thread (connected in the thread, after
    the worker process started: never shared with the parent or a sibling)."""
    from logkit.sinks.delivery import RetryPolicy

    assert config.sink is not None
    deliverer = Deliverer(
        config.sink,
        root,
        metrics.enable_sink(redact(config.sink)),
        RetryPolicy(retry_seconds=config.sink_retry_seconds),
    )
    deliverer.start()
    return deliverer


async def _stop_deliverer(deliverer: Deliverer, root: Path, seconds: float) -> None:
    """Give the deliverer ``seconds`` to send what is sealed; say what stays in the spool."""
    from logkit.sinks.spool import sealed_segments

    finished = await asyncio.to_thread(deliverer.close, seconds)
    left = len(sealed_segments(root))
    if left:
        log.warning(
            "logkit serve: %s left in the spool %s%s; sent at the next start or by `logkit replay`",
            plural(left, "segment"),
            root,
            "" if finished else " (the sink was still busy at the deadline)",
        )
    else:
        log.info("logkit serve: everything accepted was delivered to %s", deliverer.label)


def _swagger_assets() -> str | None:
    """The folder of Swagger UI's files from fastapi-offline, if installed (else /docs loads
    them from FastAPI's default CDN)."""
    from importlib.util import find_spec

    spec = find_spec("fastapi_offline")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "static"
    return str(folder) if (folder / "swagger-ui-bundle.js").is_file() else None


def _refused(answer: Answer) -> Response:
    return _json({"ok": False, **answer.as_dict()}, answer.status)


def _unknown(registry: Registry, name: str) -> Problem:
    try:
        registry.get(ContractRef(name))
    except (UnknownContractError, LogkitError) as exc:
        return Problem(404, "unknown_contract", str(exc))
    return Problem(404, "unknown_contract", f"unknown contract {name!r}")  # pragma: no cover


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _require_json(request: Request) -> None:
    media = _media_type(request)
    if media != JSON and not (media.startswith("application/") and media.endswith("+json")):
        raise Problem(
            415,
            "unsupported_media_type",
            f"an event is sent as application/json, not {media or 'a body with no Content-Type'}"
            " (with curl: -H 'Content-Type: application/json')",
        )


async def _read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused (413) as soon as it is known to be over ``limit``.

    The deadline for the body is the protocol's (``logkit.service.protocol``): a client that
    stalls is answered 408 there and its connection closed, which ends this read.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise Problem(
                400, "bad_request", f"Content-Length {declared!r} is not a number", close=True
            )
        if int(declared) > limit:
            raise Problem(
                413,
                "too_large",
                f"the body is {int(declared):,} bytes, over the limit of {limit:,}",
                close=True,
            )
    receive = request.receive
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise Problem(400, "client_disconnected", "the client went away", close=True)
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise Problem(
                    413, "too_large", f"the body is over the limit of {limit:,} bytes", close=True
                )
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _events(
    config: ServiceConfig, registry: Registry, contract: str, query: Mapping[str, str]
) -> Response:
    from logkit.commands.tail import stamp
    from logkit.store import reader

    try:
        ref = ContractRef.parse(contract)
        registry.get(ref)
    except (UnknownContractError, UsageError) as exc:
        raise Problem(404, "unknown_contract", str(exc)) from exc
    raw_limit = query.get("limit", "10")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_EVENTS_LIMIT:
        raise Problem(
            400, "bad_request", f"limit must be a whole number from 1 to {MAX_EVENTS_LIMIT}"
        )
    limit = int(raw_limit)
    since = _since(query["since"]) if query.get("since") else None

    def keep(line: bytes) -> bool:
        return since is None or stamp(line) >= since

    def corrupt(exc: reader.CorruptSegment) -> None:
        log.warning("logkit serve: %s", exc)

    segments = reader.list_segments(
        config.store,
        contract=ref.name,
        version=ref.version,
        since_dt=since[:10] if since else None,
    )
    lines = reader.newest(segments, limit, stamp=stamp, keep=keep, on_corrupt=corrupt)
    lines.reverse()
    head = _encode({"contract": ref.name, "version": ref.version, "count": len(lines)})
    # The stored lines are JSON already: pass them through untouched (exact numbers).
    return Response(head[:-1] + b',"events":[' + b",".join(lines) + b"]}", media_type=JSON)


def _since(text: str) -> str | None:
    """``since`` as ``logkit tail --since`` reads it, also taking the RFC 3339 spellings that
    Python does not (``t``/``z`` in lower case, a leap second); None when it is so far back that
    every event is newer."""
    from logkit.commands.tail import parse_since

    upper = text.upper()
    for candidate in (text, upper, re.sub(r":60(?=[.Z+-]|$)", ":59", upper)):
        try:
            return parse_since(candidate)
        except UsageError:
            continue
        except (OverflowError, ValueError):
            return None  # before the first representable moment: no limit
    raise Problem(
        400,
        "bad_request",
        f"since {text[:60]!r}: give a duration such as 10m, 2h, 3d or a time such as "
        "2026-12-03T17:00:00Z",
    )
