"""The OpenAPI document generated from the registry, and property-based tests (schemathesis)
of the running service against the document it serves."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from serving import EXAMPLE_REGISTRY, Server

from logkit.registry import Registry
from logkit.schemawalk import subschemas
from logkit.service import openapi

REGISTRY = Registry.load(EXAMPLE_REGISTRY)
DOCUMENT = openapi.build(REGISTRY, version="0", max_line_bytes=1024, max_body_bytes=4096)
OPERATIONS = [
    f"{method.upper()} {path}" for path, item in DOCUMENT["paths"].items() for method in item
]
#: Operations with something to get wrong: a body or parameters.
TAKE_INPUT = [
    f"{method.upper()} {path}"
    for path, item in DOCUMENT["paths"].items()
    for method, operation in item.items()
    if "requestBody" in operation or "parameters" in operation
]
CASES = [(label, "positive") for label in OPERATIONS] + [
    (label, "negative") for label in TAKE_INPUT
]
MAX_EXAMPLES = 12


def request_schema(document: dict[str, Any], path: str) -> dict[str, Any]:
    body = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]
    schema: dict[str, Any] = body["schema"]
    return schema


def test_every_contract_version_is_an_operation() -> None:
    for contract in REGISTRY:
        assert f"POST /log/{contract.name}/{contract.version}" in OPERATIONS
        assert f"POST /log/{contract.name}" in OPERATIONS


def test_request_bodies_are_the_contracts_with_refs_inlined() -> None:
    schema = request_schema(DOCUMENT, "/log/search/2")
    assert not [p for p, node in subschemas(schema) if isinstance(node, dict) and "$ref" in node]
    user_id = schema["properties"]["user_id"]
    # The shared definition's constraints, with the field's own description.
    assert user_id["type"] == "string"
    assert user_id["maxLength"] == 128
    assert user_id["description"] == "The user who ran the search."
    assert schema["properties"]["query_id"]["format"] == "uuid"
    assert schema["additionalProperties"] is False
    assert request_schema(DOCUMENT, "/log/search") == schema  # the latest version


def test_inlined_schemas_accept_and_refuse_what_the_contracts_do() -> None:
    import jsonschema_rs

    for contract in REGISTRY:
        inlined = jsonschema_rs.validator_for(
            request_schema(DOCUMENT, f"/log/{contract.name}/{contract.version}"),
            validate_formats=True,
        )
        for example in contract.schema["examples"]:
            assert inlined.is_valid(example)
            assert not inlined.is_valid({**example, "unexpected": 1})


def test_descriptions_and_examples_are_in_the_docs() -> None:
    operation = DOCUMENT["paths"]["/log/click/1"]["post"]
    click = REGISTRY.get("click@1")
    assert click.description in operation["description"]
    assert "discovery-team@example.com" in operation["description"]
    media = operation["requestBody"]["content"]["application/json"]
    assert [e["value"] for e in media["examples"].values()] == click.schema["examples"]
    position = media["schema"]["properties"]["position"]
    assert position["description"].startswith("Zero-based rank")


def test_the_served_document_is_the_generated_one(client: httpx.Client) -> None:
    served = client.get("/openapi.json").json()
    assert served["paths"].keys() == DOCUMENT["paths"].keys()
    assert request_schema(served, "/log/search/1") == request_schema(DOCUMENT, "/log/search/1")
    assert served["openapi"] == "3.1.0"


def test_recursive_and_nested_refs(tmp_path: Any) -> None:
    (tmp_path / "_shared").mkdir()
    (tmp_path / "_shared" / "defs.json").write_text(
        json.dumps(
            {
                "$defs": {
                    "node": {
                        "type": "object",
                        "properties": {
                            "child": {"$ref": "#/$defs/node"},
                            "id": {"$ref": "#/$defs/id"},
                        },
                    },
                    "id": {"type": "string", "minLength": 1},
                }
            }
        )
    )
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "1.json").write_text(
        json.dumps(
            {
                "x-logkit": {"owner": "me"},
                "type": "object",
                "properties": {
                    "root": {
                        "$ref": "../_shared/defs.json#/$defs/node",
                        "description": "The root.",
                    },
                    "other": {"$ref": "../_shared/defs.json#/$defs/id", "minLength": 3},
                },
            }
        )
    )
    registry = Registry.load(tmp_path)
    schema = openapi.inline_refs(registry, registry.get("tree"))
    root = schema["properties"]["root"]
    assert root["description"] == "The root."
    assert root["properties"]["id"] == {"type": "string", "minLength": 1}
    assert "recursive reference" in root["properties"]["child"]["$comment"]
    # A $ref beside a constraint is kept as an allOf, so both still apply.
    assert schema["properties"]["other"] == {
        "minLength": 3,
        "allOf": [{"type": "string", "minLength": 1}],
    }


@pytest.fixture(scope="module")
def served_schema(server: Server) -> Any:
    return schemathesis.openapi.from_url(server.url + "/openapi.json")


@pytest.mark.parametrize(("label", "mode"), CASES)
def test_the_service_keeps_its_own_openapi_promises(
    served_schema: Any, server: Server, label: str, mode: str
) -> None:
    """schemathesis generates requests from the served document: valid ones must be accepted,
    invalid ones refused with a documented status, and every response must match its schema."""
    operation = served_schema.find_operation_by_label(label)
    assert operation is not None, label
    strategy = operation.as_strategy(generation_mode=schemathesis.GenerationMode(mode))
    excluded = []
    if label == "POST /log":
        # A batch answers every event on its own: an array holding a non-event is a 200 whose
        # results say which events were refused, not a 4xx for the whole request.
        from schemathesis.specs.openapi.checks import negative_data_rejection

        excluded.append(negative_data_rejection)

    @given(case=strategy)
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        case.call_and_validate(base_url=server.url, excluded_checks=excluded)

    check()
