"""The service's OpenAPI 3.1 document, generated from the registry.

Every contract version gets its own ``POST /log/{name}/{version}`` operation (and its latest
version ``POST /log/{name}``) whose request body is the contract's schema itself, with its
``description``s and ``examples``, so ``/docs`` shows each field's documentation and offers the
contract's examples to try. OpenAPI 3.1 schemas are JSON Schema 2020-12, the registry's dialect;
the registry's ``$ref``s (``../_shared/common.yaml#/$defs/user_id``) are inlined so that the
document stands alone. A recursive reference cannot be inlined and becomes an unconstrained
schema with a ``$comment``; the service itself still validates it fully.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from logkit import ownschemas
from logkit.registry import NAME_RE, Contract, Registry
from logkit.schemawalk import LISTS, MAPS, SINGLE, follow_ref

#: Keywords a $ref's siblings may carry and still be merged into the target: annotations only.
ANNOTATIONS = frozenset(
    {"title", "description", "examples", "default", "deprecated", "readOnly", "writeOnly",
     "$comment"}
)  # fmt: skip
#: Dropped from inlined schemas: identifiers and definitions that nothing references any more.
DROPPED = frozenset({"$schema", "$id", "$defs", "definitions", "$anchor", "$dynamicAnchor"})
JSON = "application/json"
NDJSON = "application/x-ndjson"


def inline_refs(registry: Registry, contract: Contract) -> Any:
    """The contract's schema with every ``$ref`` replaced by what it points at."""
    return _inline(registry, contract.path, contract.schema, contract.schema, frozenset())


def _inline(registry: Registry, base: Path, root: Any, node: Any, seen: frozenset[str]) -> Any:
    if not isinstance(node, dict):
        return node  # true, false
    ref = node.get("$ref")
    if not isinstance(ref, str):
        return _keywords(registry, base, root, node, seen)
    siblings = _keywords(registry, base, root, {k: v for k, v in node.items() if k != "$ref"}, seen)
    try:
        path, document, target = follow_ref(registry, base, ref, root)
    except Exception:  # lint reports it; the service validates with the registry itself
        return {**siblings, "$comment": f"unresolved reference {ref}"}
    key = f"{path}#{ref.partition('#')[2]}"
    if key in seen:
        resolved: Any = {"$comment": f"recursive reference {ref}: validated by the service"}
    else:
        resolved = _inline(registry, path, document, target, seen | {key})
    if isinstance(resolved, dict) and set(siblings) <= ANNOTATIONS:
        return {**resolved, **siblings}  # the field's own description wins over the shared one
    return {**siblings, "allOf": [resolved, *siblings.get("allOf", [])]}


def _keywords(
    registry: Registry, base: Path, root: Any, node: dict[str, Any], seen: frozenset[str]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in DROPPED:
            continue
        if key in SINGLE:
            out[key] = _inline(registry, base, root, value, seen)
        elif key in LISTS and isinstance(value, list):
            out[key] = [_inline(registry, base, root, item, seen) for item in value]
        elif key in MAPS and isinstance(value, dict):
            out[key] = {k: _inline(registry, base, root, v, seen) for k, v in value.items()}
        else:
            out[key] = copy.deepcopy(value)  # data (enum, const, examples) or an annotation
    return out


# -- the document -------------------------------------------------------------------------


def build(
    registry: Registry, *, version: str, max_line_bytes: int, max_body_bytes: int
) -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/": {
            "get": {
                "operationId": "health",
                "tags": ["service"],
                "summary": "Health check",
                "description": 'Answers `{"ok": true}` while the service runs.',
                "responses": {"200": _json_response("The service is up.", "Health")},
            }
        },
        "/log": {"post": _batch_operation(registry, max_body_bytes)},
    }
    for name in registry.names():
        versions = registry.versions(name)
        for number in [None, *versions]:
            contract = registry.get(f"{name}@{number or versions[-1]}")
            path = f"/log/{name}" if number is None else f"/log/{name}/{number}"
            paths[path] = {"post": _log_operation(registry, contract, number, max_line_bytes)}
    paths.update(_read_paths(registry))
    paths["/metrics"] = {
        "get": {
            "operationId": "metrics",
            "tags": ["service"],
            "summary": "Prometheus metrics",
            "description": (
                "The Prometheus text format: `logkit_events_total{contract,version,outcome}`, "
                "`logkit_validation_errors_total{contract,version,rule}`, "
                "`logkit_bytes_read_total` and `logkit_last_success_timestamp_seconds` (the "
                "names `ingest --metrics-file` writes), plus `logkit_http_requests_total"
                "{method,route,status}` and `logkit_http_request_duration_seconds{method,route}`"
                ". Summed over every worker."
            ),
            "responses": {
                "200": {
                    "description": "Metrics in the Prometheus text format.",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "logkit",
            "version": version,
            "description": _DESCRIPTION,
        },
        "tags": [{"name": "service"}, *({"name": n} for n in registry.names())],
        "paths": paths,
        "components": {"schemas": _components()},
    }


_DESCRIPTION = """\
Events in, validated against the registry's contracts, stored as envelopes in the same store
`logkit ingest` writes and `logkit tail` reads.

* `POST /log/{contract}` (latest version) or `POST /log/{contract}/{version}`: one event, the
  payload itself, as `application/json`. **200** with the envelope's `id` once it is written;
  **422** with every error (`path`, `rule`, `message`, as `logkit validate --format json`) when
  it breaks its contract, **400** when it is not JSON, **404** for an unknown contract (with a
  hint), **413** over the size limit, **415** for another content type. Every event that is not
  stored is kept as a dead letter; its id is in the answer.
* `POST /log`: many routed events (`{"contract": ..., "version": ..., "payload": ...}`), as JSON
  lines (`application/x-ndjson`) or a JSON array; one answer per event.
* `GET /events/{contract}`: the newest envelopes, newest first.
"""


def _log_operation(
    registry: Registry, contract: Contract, number: int | None, max_line_bytes: int
) -> dict[str, Any]:
    schema = inline_refs(registry, contract)
    label = contract.label if number is not None else f"{contract.name} (latest: {contract.label})"
    lines = [contract.description or contract.title]
    meta = [f"owner: {contract.owner or '-'}", f"compatibility: {contract.compatibility}"]
    if contract.status != "active":
        meta.append(f"status: {contract.status}")
    lines.append(" · ".join(meta))
    lines.append(
        f"The body is one `{contract.label}` event (at most {max_line_bytes:,} bytes); route "
        "events of several contracts through `POST /log`."
    )
    media: dict[str, Any] = {"schema": schema}
    examples = contract.schema.get("examples")
    if isinstance(examples, list) and examples:
        media["examples"] = {
            f"example {i}": {"summary": f"Example {i} of {contract.label}", "value": value}
            for i, value in enumerate(examples, 1)
        }
    operation: dict[str, Any] = {
        "operationId": f"log_{contract.name.replace('.', '_')}"
        + (f"_v{number}" if number is not None else ""),
        "tags": [contract.name],
        "summary": f"Log {contract.title or contract.name} ({label})",
        "description": "\n\n".join(lines),
        "requestBody": {"required": True, "content": {JSON: media}},
        "responses": {
            "200": _json_response("Stored: the envelope's id.", "Accepted"),
            "400": _problem("Not JSON: malformed, not UTF-8, too deep or a duplicate key."),
            "404": _problem("No such contract or version."),
            "408": _problem("The body did not arrive in time."),
            "413": _problem("The event is over the size limit."),
            "415": _problem("The body is not application/json."),
            "422": _problem("The event breaks its contract; every error is listed."),
            "503": _problem("The store cannot take the event now (e.g. the disk is full)."),
        },
    }
    if contract.status == "deprecated":
        operation["deprecated"] = True
    return operation


def _batch_operation(registry: Registry, max_body_bytes: int) -> dict[str, Any]:
    names = registry.names()
    routed = {
        "type": "object",
        "description": "A routed event: the contract it follows and the event itself.",
        "required": ["contract", "payload"],
        "properties": {
            "contract": {
                "type": "string",
                "description": "The contract's name.",
                "examples": names[:3],
            },
            "version": {
                "type": "integer",
                "minimum": 1,
                "description": "The contract's version; the latest when absent.",
            },
            "payload": {"type": "object", "description": "The event itself."},
        },
    }
    examples: list[dict[str, Any]] = []
    for contract in registry:
        sample = contract.schema.get("examples")
        if isinstance(sample, list) and sample:
            examples.append(
                {"contract": contract.name, "version": contract.version, "payload": sample[0]}
            )
    return {
        "operationId": "log_batch",
        "tags": ["service"],
        "summary": "Log many routed events",
        "description": (
            "Routed events of any contracts, as JSON lines (`application/x-ndjson`, one event "
            "per line, blank lines skipped) or as a JSON array (`application/json`; a single "
            f"routed object is a batch of one), at most {max_body_bytes:,} bytes in all. The "
            "answer is 200 with each event's outcome in `results`, in order: stored with its "
            "`id`, or dead-lettered with its `errors` (an event that breaks its contract or "
            "names an unknown one does not fail the others). The batch as a whole is refused "
            "(400) only when a JSON body is not valid JSON or not an array or object."
        ),
        "requestBody": {
            "required": True,
            "content": {
                NDJSON: {
                    "schema": {"type": "string"},
                    "example": "".join(json.dumps(e) + "\n" for e in examples),
                },
                JSON: {
                    "schema": {"anyOf": [{"type": "array", "items": routed}, routed]},
                    "example": examples,
                },
            },
        },
        "responses": {
            "200": _json_response("Every event's outcome, in order.", "BatchResult"),
            "400": _problem("A JSON body that is not valid JSON, or not an array or object."),
            "408": _problem("The body did not arrive in time."),
            "413": _problem("The body is over the size limit."),
            "415": _problem("Neither JSON lines nor JSON."),
            "503": _problem("The store cannot take the events now."),
        },
    }


def _read_paths(registry: Registry) -> dict[str, Any]:
    names = registry.names()
    name_param = {
        "name": "name",
        "in": "path",
        "required": True,
        "description": "A contract's name.",
        "schema": {"type": "string", "pattern": NAME_RE.pattern, "examples": names[:3]},
    }
    return {
        "/events/{contract}": {
            "get": {
                "operationId": "events",
                "tags": ["service"],
                "summary": "Newest stored events of a contract",
                "description": (
                    "The newest envelopes of the contract (of all its versions, or of one with "
                    "`name@version`), newest first, from every writer of the store."
                ),
                "parameters": [
                    {
                        "name": "contract",
                        "in": "path",
                        "required": True,
                        "description": "`name` or `name@version`.",
                        "schema": {
                            "type": "string",
                            "pattern": NAME_RE.pattern[:-1] + "(@[1-9][0-9]*)?$",
                            "examples": names[:3],
                        },
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "description": "How many envelopes, at most (1 to 1000).",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 10},
                    },
                    {
                        "name": "since",
                        "in": "query",
                        "description": "Only envelopes received after this: `10m`, `2h`, `3d` "
                        "or an RFC 3339 time.",
                        "schema": {
                            "anyOf": [
                                {"type": "string", "pattern": "^[0-9]{1,9} ?[smhdw]$"},
                                {"type": "string", "format": "date-time"},
                            ],
                            "examples": ["10m", "2026-12-03T17:00:00Z"],
                        },
                    },
                ],
                "responses": {
                    "200": _json_response("The envelopes, newest first.", "EventList"),
                    "400": _problem("A bad `limit` or `since`."),
                    "404": _problem("No such contract."),
                    "501": _problem(
                        "The service sends events to a sink (`--sink`): read them there."
                    ),
                },
            }
        },
        "/contracts": {
            "get": {
                "operationId": "contracts",
                "tags": ["service"],
                "summary": "Every contract",
                "description": "As `logkit contracts --format json`.",
                "responses": {"200": _json_response("The contracts.", "ContractList")},
            }
        },
        "/contracts/{name}": {
            "get": {
                "operationId": "contract",
                "tags": ["service"],
                "summary": "One contract: its versions, owner and status",
                "parameters": [name_param],
                "responses": {
                    "200": _json_response("The contract.", "ContractSummary"),
                    "404": _problem("No such contract."),
                },
            }
        },
        "/contracts/{name}/{version}": {
            "get": {
                "operationId": "contract_version",
                "tags": ["service"],
                "summary": "One contract version's schema, as in the registry",
                "parameters": [
                    name_param,
                    {
                        "name": "version",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer", "minimum": 1},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "The JSON Schema document of the contract version.",
                        "content": {JSON: {"schema": {"type": "object"}}},
                    },
                    "404": _problem("No such contract or version."),
                },
            }
        },
    }


def _json_response(description: str, component: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {JSON: {"schema": {"$ref": f"#/components/schemas/{component}"}}},
    }


def _problem(description: str) -> dict[str, Any]:
    return _json_response(description, "Problem")


def _components() -> dict[str, Any]:
    envelope = {k: v for k, v in ownschemas.load("envelope").items() if k not in DROPPED}
    issue = {
        "type": "object",
        "description": "One problem: where (JSON pointer), which rule, and what was found.",
        "required": ["path", "rule", "message"],
        "properties": {
            "path": {"type": "string", "examples": ["/results/0/position", ""]},
            "rule": {"type": "string", "examples": ["minimum", "malformed_json"]},
            "message": {"type": "string"},
        },
    }
    version = {"type": ["integer", "null"], "minimum": 1}
    accepted = {
        "type": "object",
        "description": "The stored event's envelope, without its payload.",
        "required": ["id", "received_at", "contract", "version"],
        "properties": {
            "id": {"type": "string", "format": "uuid", "description": "The envelope's UUIDv7."},
            "received_at": {"type": "string", "format": "date-time"},
            "contract": {"type": "string"},
            "version": {"type": "integer", "minimum": 1},
        },
    }
    problem = {
        "type": "object",
        "description": (
            "Why a request or an event was refused. `reason` is the dead-letter reason for an "
            "event (`invalid`, `malformed_json`, `unknown_contract`, ...); `dead_letter` is the "
            "id of the dead letter that keeps it."
        ),
        "required": ["ok", "status", "reason", "errors"],
        "properties": {
            "ok": {"const": False},
            "status": {"type": "integer"},
            "reason": {"type": "string"},
            "contract": {"type": ["string", "null"]},
            "version": version,
            "errors": {"type": "array", "items": {"$ref": "#/components/schemas/Issue"}},
            "dead_letter": {"type": "string", "format": "uuid"},
        },
    }
    outcome = {
        "type": "object",
        "description": "One event's outcome: stored (with `id`) or dead-lettered.",
        "required": ["status"],
        "properties": {
            "status": {"type": "integer", "description": "200 stored; else as for one event."},
            "line": {"type": "integer", "description": "1-based line (JSON lines)."},
            "index": {"type": "integer", "description": "0-based index (JSON array)."},
            "id": {"type": "string", "format": "uuid"},
            "received_at": {"type": "string", "format": "date-time"},
            "reason": {"type": "string"},
            "contract": {"type": ["string", "null"]},
            "version": version,
            "errors": {"type": "array", "items": {"$ref": "#/components/schemas/Issue"}},
            "dead_letter": {"type": "string", "format": "uuid"},
        },
    }
    return {
        "Health": {
            "type": "object",
            "required": ["ok"],
            "properties": {"ok": {"const": True}},
        },
        "Issue": issue,
        "Accepted": accepted,
        "Problem": problem,
        "BatchResult": {
            "type": "object",
            "required": ["ok", "stored", "dead_lettered", "results"],
            "properties": {
                "ok": {"type": "boolean", "description": "true when every event was stored."},
                "stored": {"type": "integer"},
                "dead_lettered": {"type": "integer"},
                "results": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/Outcome"},
                },
            },
        },
        "Outcome": outcome,
        "Envelope": envelope,
        "EventList": {
            "type": "object",
            "required": ["contract", "count", "events"],
            "properties": {
                "contract": {"type": "string"},
                "version": version,
                "count": {"type": "integer"},
                "events": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/Envelope"},
                },
            },
        },
        "ContractSummary": {
            "type": "object",
            "required": ["name", "latest", "versions"],
            "properties": {
                "name": {"type": "string"},
                "latest": {"type": "integer"},
                "versions": {"type": "array", "items": {"type": "integer"}},
                "owner": {"type": ["string", "null"]},
                "compatibility": {"type": "string"},
                "status": {"type": "string"},
                "title": {"type": "string"},
            },
        },
        "ContractList": {
            "type": "array",
            "items": {"$ref": "#/components/schemas/ContractSummary"},
        },
    }
