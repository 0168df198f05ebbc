"""Every endpoint and every error status, through a real server and real HTTP requests."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time
from typing import Any

import httpx
import pytest
from serving import CLICK, EXAMPLE_REGISTRY, SEARCH, Server, logkit_command, read_store

UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
JSON = {"content-type": "application/json"}


def post(client: httpx.Client, path: str, body: bytes | str, **headers: str) -> httpx.Response:
    return client.post(path, content=body, headers={**JSON, **headers})


def stored(server: Server, uid: str, part: str = "events") -> dict[str, Any]:
    found = [r for r in read_store(server.store, part) if r["id"] == uid]
    assert len(found) == 1, f"{uid} is in the store {len(found)} times"
    return found[0]


def cli_errors(contract: str, event: bytes) -> list[dict[str, str]]:
    """What `logkit validate --format json` says about the same event."""
    done = subprocess.run(
        [*logkit_command(), "validate", "--format", "json", "--contract", contract, "-",
         "--registry", str(EXAMPLE_REGISTRY)],
        input=event + b"\n", capture_output=True, check=False,
    )  # fmt: skip
    errors: list[dict[str, str]] = json.loads(done.stdout)["results"][0]["errors"]
    return errors


def test_health(client: httpx.Client) -> None:
    answer = client.get("/")
    assert answer.status_code == 200
    assert answer.json() == {"ok": True}
    assert answer.headers["content-type"] == "application/json"


def test_a_valid_event_is_stored_and_answered_with_its_id(
    server: Server, client: httpx.Client
) -> None:
    answer = post(client, "/log/search", json.dumps(SEARCH))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert UUID7.match(body["id"])
    assert STAMP.match(body["received_at"])
    assert (body["contract"], body["version"]) == ("search", 2)
    envelope = stored(server, body["id"])
    assert envelope == {**body, "payload": SEARCH}
    # The store's partition names agree with the envelope.
    day = body["received_at"][:10]
    folder = server.store / "events" / "contract=search" / "version=2" / f"dt={day}"
    assert any(folder.iterdir())


def test_a_version_in_the_path(server: Server, client: httpx.Client) -> None:
    answer = post(client, "/log/search/1", json.dumps(SEARCH))
    assert answer.status_code == 200, answer.text
    assert answer.json()["version"] == 1
    assert stored(server, answer.json()["id"])["version"] == 1


def test_the_payload_is_stored_byte_for_byte(server: Server, client: httpx.Client) -> None:
    raw = (
        b'{"user_id": "u1", "query_id": "9723a714-014d-42d2-9772-db832eb6de0e", '
        b'"raw_query": "caf\\u00e9 \xe2\x98\x95", "results": [{"document_id": "d", '
        b'"position": 0, "score": 1180591620717411303424}]}'
    )
    answer = post(client, "/log/search", raw)
    assert answer.status_code == 200, answer.text
    segment_bytes = b"".join(p.read_bytes() for p in (server.store / "events").rglob("*part-*"))
    assert b'"payload":' + raw + b"}" in segment_bytes


def test_a_pretty_printed_event_is_one_event(server: Server, client: httpx.Client) -> None:
    answer = post(client, "/log/click", json.dumps(CLICK, indent=2) + "\n")
    assert answer.status_code == 200, answer.text
    assert stored(server, answer.json()["id"])["payload"] == CLICK


def test_an_invalid_event_is_422_with_validates_errors_and_a_dead_letter(
    server: Server, client: httpx.Client
) -> None:
    event = {**CLICK, "position": -1, "extra": True}
    raw = json.dumps(event).encode()
    answer = post(client, "/log/click", raw)
    assert answer.status_code == 422
    body = answer.json()
    assert body["reason"] == "invalid"
    assert (body["contract"], body["version"]) == ("click", 1)
    assert body["errors"] == cli_errors("click", raw)
    assert {e["path"] for e in body["errors"]} == {"/position", "/extra"}
    dead = stored(server, body["dead_letter"], "dead_letter")
    assert dead["raw"] == raw.decode()
    assert dead["errors"] == body["errors"]
    assert dead["reason"] == "invalid"


def test_an_invalid_multiline_event_keeps_its_original_bytes(
    server: Server, client: httpx.Client
) -> None:
    raw = json.dumps({**CLICK, "position": "0"}, indent=2) + "\n"
    answer = post(client, "/log/click", raw)
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["path"] == "/position"
    assert stored(server, answer.json()["dead_letter"], "dead_letter")["raw"] == raw


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/log/serch", "unknown contract 'serch' (did you mean 'search'?)"),
        ("/log/search/7", "contract 'search' has no version 7 (versions: 1, 2)"),
        ("/log/Search", "'Search' is not a contract name"),
        ("/log/search/01", "'01' is not a version"),
    ],
)
def test_an_unknown_contract_is_404_with_a_hint(
    server: Server, client: httpx.Client, path: str, message: str
) -> None:
    answer = post(client, path, json.dumps(SEARCH))
    assert answer.status_code == 404
    body = answer.json()
    assert body["reason"] == "unknown_contract"
    assert body["errors"][0]["message"].startswith(message)
    dead = stored(server, body["dead_letter"], "dead_letter")
    assert dead["reason"] == "unknown_contract"
    assert json.loads(dead["raw"]) == SEARCH


@pytest.mark.parametrize(
    ("raw", "reason", "rule"),
    [
        (b'{"user_id": "u1",', "malformed_json", "malformed_json"),
        (b'{"a": NaN}', "malformed_json", "non_finite_number"),
        (b'{"a": 1, "a": 2}', "duplicate_key", "duplicate_key"),
        (b'{"user_id": "\xff"}', "invalid_utf8", "invalid_utf8"),
        (b"[" * 100 + b"]" * 100, "too_deep", "too_deep"),
        (b"[" * 200_000, "too_deep", "too_deep"),
        (b"", "malformed_json", "malformed_json"),
        (b"  \n ", "malformed_json", "malformed_json"),
    ],
)
def test_malformed_json_is_400_and_a_dead_letter(
    server: Server, client: httpx.Client, raw: bytes, reason: str, rule: str
) -> None:
    answer = post(client, "/log/search", raw)
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert (body["reason"], body["errors"][0]["rule"]) == (reason, rule)
    dead = stored(server, body["dead_letter"], "dead_letter")
    if reason == "invalid_utf8":
        assert base64.b64decode(dead["raw_base64"]) == raw
    else:
        assert dead["raw"].encode() == raw


def test_a_body_over_the_limit_is_413(server: Server, client: httpx.Client) -> None:
    big = b'{"user_id": "' + b"x" * (1024 * 1024) + b'"}'
    answer = post(client, "/log/search", big)
    assert answer.status_code == 413
    assert answer.json()["reason"] == "too_large"
    # The same body without a Content-Length (chunked) is cut off while it is read.

    def chunks() -> Any:
        for start in range(0, len(big), 64 * 1024):
            yield big[start : start + 64 * 1024]

    with httpx.Client(base_url=server.url, timeout=10) as fresh:
        answer = fresh.post("/log/search", content=chunks(), headers=JSON)
    assert answer.status_code == 413
    assert "limit" in answer.json()["errors"][0]["message"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_another_content_type_is_415(client: httpx.Client, content_type: str) -> None:
    headers = {"content-type": content_type} if content_type else {}
    answer = client.post("/log/search", content=json.dumps(SEARCH), headers=headers)
    assert answer.status_code == 415
    assert answer.json()["reason"] == "unsupported_media_type"


def test_json_with_a_charset_is_json(client: httpx.Client) -> None:
    answer = post(
        client,
        "/log/search",
        json.dumps(SEARCH),
        **{"content-type": "application/json; charset=utf-8"},
    )
    assert answer.status_code == 200


def test_a_jsonl_batch_is_answered_per_event(server: Server, client: httpx.Client) -> None:
    lines = [
        json.dumps({"contract": "search", "payload": SEARCH}),
        json.dumps({"contract": "click", "version": 1, "payload": {**CLICK, "position": -1}}),
        "",
        '{"contract": "click", "payload": ',
        json.dumps({"contract": "serch", "payload": SEARCH}),
        json.dumps({"contract": "click", "payload": CLICK}),
        json.dumps([1, 2]),
    ]
    answer = client.post(
        "/log", content="\n".join(lines) + "\n", headers={"content-type": "application/x-ndjson"}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["ok"], body["stored"], body["dead_lettered"]) == (False, 2, 4)
    results = body["results"]
    assert [(r["line"], r["status"]) for r in results] == [
        (1, 200), (2, 422), (4, 400), (5, 404), (6, 200), (7, 422),
    ]  # fmt: skip
    assert results[1]["errors"][0]["path"] == "/position"
    assert "did you mean 'search'" in results[3]["errors"][0]["message"]
    assert stored(server, results[0]["id"])["payload"] == SEARCH
    assert stored(server, results[4]["id"])["contract"] == "click"
    assert stored(server, results[2]["dead_letter"], "dead_letter")["raw"] == lines[3]


def test_a_json_array_batch_is_answered_per_event(server: Server, client: httpx.Client) -> None:
    batch = [
        {"contract": "click", "payload": CLICK},
        {"contract": "search", "version": 1, "payload": {**SEARCH, "page": 2}},
        {"contract": "search", "version": 2, "payload": {**SEARCH, "page": 2}},
    ]
    raw = json.dumps(batch, indent=2)
    answer = post(client, "/log", raw)
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [(r["index"], r["status"]) for r in results] == [(0, 200), (1, 422), (2, 200)]
    assert results[1]["errors"][0]["path"] == "/page"
    dead = stored(server, results[1]["dead_letter"], "dead_letter")
    assert json.loads(dead["raw"]) == batch[1]
    assert dead["raw"] in raw  # the element exactly as it was sent, newlines and all
    assert stored(server, results[2]["id"])["payload"] == {**SEARCH, "page": 2}


def test_a_single_routed_event_posted_as_json_is_a_batch_of_one(client: httpx.Client) -> None:
    answer = post(client, "/log", json.dumps({"contract": "click", "payload": CLICK}))
    assert answer.status_code == 200
    assert answer.json()["stored"] == 1


@pytest.mark.parametrize(
    ("raw", "reason"),
    [(b'[{"contract": "click"', "malformed_json"), (b"[" * 100 + b"]" * 100, "too_deep")],
)
def test_a_broken_json_array_is_400_whole(client: httpx.Client, raw: bytes, reason: str) -> None:
    answer = post(client, "/log", raw)
    assert answer.status_code == 400
    assert answer.json()["reason"] == reason


def test_a_batch_of_another_type_is_415(client: httpx.Client) -> None:
    answer = client.post("/log", content=b"{}", headers={"content-type": "text/csv"})
    assert answer.status_code == 415


def test_events_newest_first_with_limit_and_since(client: httpx.Client) -> None:
    ids = []
    for position in range(5):
        answer = post(client, "/log/click", json.dumps({**CLICK, "position": position}))
        ids.append(answer.json()["id"])
        time.sleep(0.002)
    cut = post(client, "/log/click", json.dumps({**CLICK, "position": 5})).json()
    body = client.get("/events/click", params={"limit": 3}).json()
    assert body["count"] == 3
    assert [e["id"] for e in body["events"]] == [cut["id"], ids[4], ids[3]]
    # Every envelope carries its own receipt time (the seed stamped the service's start time).
    stamps = [e["received_at"] for e in body["events"]]
    assert stamps == sorted(stamps, reverse=True)
    assert len(set(stamps)) == 3
    since = client.get("/events/click", params={"since": cut["received_at"], "limit": 100}).json()
    assert [e["id"] for e in since["events"]][-1] == cut["id"]
    assert all(e["received_at"] >= cut["received_at"] for e in since["events"])
    assert client.get("/events/click@1", params={"limit": 1}).json()["events"][0]["version"] == 1


def test_events_of_one_version(client: httpx.Client) -> None:
    post(client, "/log/search/1", json.dumps(SEARCH))
    body = client.get("/events/search@1", params={"limit": 50}).json()
    assert body["version"] == 1
    assert body["events"]
    assert {e["version"] for e in body["events"]} == {1}


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/events/serch", {}, 404),
        ("/events/search@9", {}, 404),
        ("/events/search", {"limit": "0"}, 400),
        ("/events/search", {"limit": "1001"}, 400),
        ("/events/search", {"limit": "ten"}, 400),
        ("/events/search", {"since": "yesterday"}, 400),
    ],
)
def test_events_errors(
    client: httpx.Client, path: str, params: dict[str, str], status: int
) -> None:
    answer = client.get(path, params=params)
    assert answer.status_code == status
    assert answer.json()["ok"] is False


def test_contracts_are_the_registry(client: httpx.Client) -> None:
    listed = subprocess.run(
        [*logkit_command(), "contracts", "--format", "json", "--registry", str(EXAMPLE_REGISTRY)],
        capture_output=True, check=True,
    )  # fmt: skip
    assert client.get("/contracts").json() == json.loads(listed.stdout)
    assert client.get("/contracts/search").json()["versions"] == [1, 2]
    shown = subprocess.run(
        [*logkit_command(), "show", "search@1", "--format", "json", "--registry",
         str(EXAMPLE_REGISTRY)],
        capture_output=True, check=True,
    )  # fmt: skip
    assert client.get("/contracts/search/1").json() == json.loads(shown.stdout)


@pytest.mark.parametrize("path", ["/contracts/serch", "/contracts/search/3", "/contracts/search/x"])
def test_unknown_contracts_are_404(client: httpx.Client, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 404
    assert answer.json()["reason"] == "unknown_contract"


def test_unknown_paths_and_methods_answer_json(client: httpx.Client) -> None:
    missing = client.get("/nowhere")
    assert missing.status_code == 404
    assert missing.json()["reason"] == "not_found"
    wrong = client.get("/log/search")
    assert wrong.status_code == 405
    assert wrong.json()["reason"] == "method_not_allowed"


def test_metrics(client: httpx.Client) -> None:
    post(client, "/log/click", json.dumps(CLICK))
    post(client, "/log/click", json.dumps({**CLICK, "position": -1}))
    text = client.get("/metrics").text
    values = dict(
        line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#")
    )
    assert float(values['logkit_events_total{contract="click",outcome="stored",version="1"}']) >= 1
    assert float(values['logkit_events_total{contract="click",outcome="invalid",version="1"}']) >= 1
    key = 'logkit_validation_errors_total{contract="click",rule="minimum",version="1"}'
    assert float(values[key]) >= 1
    assert float(values["logkit_bytes_read_total"]) > 0
    assert float(values["logkit_last_success_timestamp_seconds"]) > time.time() - 600
    requests = 'logkit_http_requests_total{method="POST",route="/log/{contract}",status="200"}'
    assert float(values[requests]) >= 1
    bucket = (
        'logkit_http_request_duration_seconds_bucket{le="+Inf",method="POST",'
        'route="/log/{contract}"}'
    )
    assert float(values[bucket]) >= 2


def test_docs_and_openapi(client: httpx.Client) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
    assert "/openapi.json" in docs.text
    # Swagger UI comes from the service itself (fastapi-offline's copy), not from a CDN.
    assert "cdn." not in docs.text
    script = client.get("/docs/static/swagger-ui-bundle.js")
    assert script.status_code == 200
    assert len(script.content) > 100_000
    document = client.get("/openapi.json").json()
    body = document["paths"]["/log/search/2"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["properties"]["user_id"]["type"] == "string"
    assert set(document["paths"]) >= {
        "/", "/log", "/log/search", "/log/search/1", "/log/click/1", "/events/{contract}",
        "/contracts", "/contracts/{name}/{version}", "/metrics",
    }  # fmt: skip


def test_unknown_names_do_not_grow_the_metrics(client: httpx.Client) -> None:
    for n in range(20):
        post(client, f"/log/nope{n}", json.dumps(SEARCH))
        post(client, f"/log/search/{100 + n}", json.dumps(SEARCH))
    text = client.get("/metrics").text
    assert "nope" not in text
    assert 'version="101"' not in text
    assert (
        'logkit_events_total{contract="(unknown)",outcome="unknown_contract",version="-"}' in text
    )
    assert 'logkit_events_total{contract="search",outcome="unknown_contract",version="-"}' in text
