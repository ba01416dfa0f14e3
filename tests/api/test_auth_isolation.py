"""Keys and tenants on the HTTP API: every /v1 route wants a valid key; a key sees only its
tenant's files, batches, outputs and answers, and another tenant's ids answer exactly as
ids that never existed; each key has its own rate."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from db.api_keys import create_key, revoke_key
from tests.api.conftest import Api, running_api

pytestmark = pytest.mark.services

CHAT = "/v1/chat/completions"
LINE = json.dumps(
    {
        "custom_id": "q1",
        "method": "POST",
        "url": CHAT,
        "body": {"model": "messplus", "messages": [{"role": "user", "content": "hi"}]},
    }
)
ROUTES = [
    ("GET", "/v1/models"),
    ("GET", "/v1/models/messplus"),
    ("POST", "/v1/files"),
    ("GET", "/v1/files"),
    ("GET", "/v1/files/file-x"),
    ("GET", "/v1/files/file-x/content"),
    ("DELETE", "/v1/files/file-x"),
    ("POST", "/v1/batches"),
    ("GET", "/v1/batches"),
    ("GET", "/v1/batches/batch_x"),
    ("POST", "/v1/batches/batch_x/cancel"),
    ("POST", CHAT),
    ("GET", f"{CHAT}/chatcmpl-x"),
    ("POST", "/v1/completions"),
    ("GET", "/v1/completions/cmpl-x"),
    ("POST", "/v1/feedback"),
]
BAD_HEADERS = {
    "missing": {},
    "malformed": {"Authorization": "Token abc"},
    "empty bearer": {"Authorization": "Bearer "},
    "wrong": {"Authorization": "Bearer msp-" + "x" * 43},
}


def _upload(api: Api, tenant: str) -> str:
    response = api.client.post(
        "/v1/files",
        headers=api.headers(tenant),
        files={"file": ("in.jsonl", LINE.encode())},
        data={"purpose": "batch"},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def _batch(api: Api, tenant: str, file_id: str) -> str:
    spec = {"input_file_id": file_id, "endpoint": CHAT, "completion_window": "24h"}
    response = api.client.post("/v1/batches", headers=api.headers(tenant), json=spec)
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize("kind", sorted(BAD_HEADERS))
def test_every_route_wants_a_valid_key(api: Api, method: str, path: str, kind: str) -> None:
    response = api.client.request(method, path, headers=BAD_HEADERS[kind])
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"]["code"] in {
        "missing_api_key",
        "invalid_authorization_header",
        "invalid_api_key",
    }


def test_a_revoked_key_is_refused_on_its_next_request(api: Api) -> None:
    with api.sessions.begin() as session:
        from db.tenants import get_tenant_by_name

        tenant_id = get_tenant_by_name(session, "acme").id
        key, secret = create_key(session, tenant_id)
    headers = {"Authorization": f"Bearer {secret}"}
    assert api.client.get("/v1/models", headers=headers).status_code == 200
    with api.sessions.begin() as session:
        revoke_key(session, tenant_id, key.id)
    refused = api.client.get("/v1/models", headers=headers)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"


def _same_404(api: Api, path: str, never_existed: str, tenant: str = "acme") -> None:
    """The other tenant's id and an id that never existed get the same answer."""
    theirs = api.client.get(path, headers=api.headers(tenant))
    nobody = api.client.get(never_existed, headers=api.headers(tenant))
    assert theirs.status_code == nobody.status_code == 404, theirs.text
    hex_ids = re.compile(r"[0-9a-f]{32}")
    assert hex_ids.sub("ID", theirs.text) == hex_ids.sub("ID", nobody.text)


def test_another_tenants_ids_are_not_found_and_nothing_leaks_in_lists(api: Api) -> None:
    zeros = "0" * 32
    file_id = _upload(api, "rival")
    batch_id = _batch(api, "rival", file_id)
    job = batch_id.removeprefix("batch_")
    cancelled = api.client.post(f"/v1/batches/{batch_id}/cancel", headers=api.headers("rival"))
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    # The rival's own key sees all of it.
    for path in (
        f"/v1/files/{file_id}",
        f"/v1/files/{file_id}/content",
        f"/v1/batches/{batch_id}",
        f"/v1/files/file-{job}-output/content",
        f"/v1/files/file-{job}-errors",
    ):
        assert api.client.get(path, headers=api.headers("rival")).status_code == 200, path
    timed_out = api.client.post(
        CHAT,
        headers=api.headers("rival"),
        json={"model": "messplus", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert timed_out.status_code == 504
    answer_id = timed_out.json()["error"]["id"]
    assert api.client.get(f"{CHAT}/{answer_id}", headers=api.headers("rival")).status_code == 409

    # acme's key: 404 for every one of them, word for word as for ids that never existed.
    _same_404(api, f"/v1/files/{file_id}", f"/v1/files/file-{zeros}")
    _same_404(api, f"/v1/files/{file_id}/content", f"/v1/files/file-{zeros}/content")
    _same_404(api, f"/v1/batches/{batch_id}", f"/v1/batches/batch_{zeros}")
    _same_404(api, f"/v1/files/file-{job}-output", f"/v1/files/file-{zeros}-output")
    _same_404(api, f"/v1/files/file-{job}-output/content", f"/v1/files/file-{zeros}-output/content")
    _same_404(api, f"/v1/files/file-{job}-errors", f"/v1/files/file-{zeros}-errors")
    _same_404(api, f"{CHAT}/{answer_id}", f"{CHAT}/chatcmpl-{zeros}-0")
    theirs, nobody = (
        api.client.post(
            "/v1/feedback",
            headers=api.headers("acme"),
            json={"response_id": ref, "satisfied": True},
        )
        for ref in (answer_id, f"chatcmpl-{zeros}-0")
    )
    assert theirs.status_code == nobody.status_code == 404
    assert theirs.text.replace(answer_id, "ID") == nobody.text.replace(f"chatcmpl-{zeros}-0", "ID")
    acme = api.headers("acme")
    for method, path in (
        ("POST", f"/v1/batches/{batch_id}/cancel"),
        ("DELETE", f"/v1/files/{file_id}"),
    ):
        assert api.client.request(method, path, headers=acme).status_code == 404
    spec = {"input_file_id": file_id, "endpoint": CHAT, "completion_window": "24h"}
    assert api.client.post("/v1/batches", headers=acme, json=spec).status_code == 404

    # Lists: the rival's objects are not in acme's, and paging past them is not possible.
    own_file = _upload(api, "acme")
    own_batch = _batch(api, "acme", own_file)
    batches = api.client.get("/v1/batches?limit=100", headers=acme).json()["data"]
    files = api.client.get("/v1/files?limit=100", headers=acme).json()["data"]
    assert own_batch in {b["id"] for b in batches} and batch_id not in {b["id"] for b in batches}
    assert own_file in {f["id"] for f in files} and file_id not in {f["id"] for f in files}
    assert api.client.get(f"/v1/batches?after={batch_id}", headers=acme).status_code == 404
    assert api.client.get(f"/v1/files?after={file_id}", headers=acme).status_code == 404


def test_an_uploaded_file_is_deleted_once_and_a_batch_outlives_its_input(api: Api) -> None:
    file_id = _upload(api, "acme")
    batch_id = _batch(api, "acme", file_id)
    job = batch_id.removeprefix("batch_")
    acme = api.headers("acme")
    deleted = api.client.delete(f"/v1/files/{file_id}", headers=acme)
    assert deleted.status_code == 200
    assert deleted.json() == {"id": file_id, "object": "file", "deleted": True}
    assert api.client.get(f"/v1/files/{file_id}", headers=acme).status_code == 404
    assert api.client.delete(f"/v1/files/{file_id}", headers=acme).status_code == 404
    assert api.client.get(f"/v1/batches/{batch_id}", headers=acme).status_code == 200
    # Cancelled with nothing routed: finished, every request failed, both files exist.
    assert api.client.post(f"/v1/batches/{batch_id}/cancel", headers=acme).status_code == 200
    before = api.counts()
    for kind in ("output", "errors"):
        refused = api.client.delete(f"/v1/files/file-{job}-{kind}", headers=acme)
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "output_file"
    assert api.counts() == before


def test_paging_follows_after_newest_first(api: Api) -> None:
    file_id = _upload(api, "acme")
    made = [_batch(api, "acme", file_id) for _ in range(3)]
    first = api.client.get("/v1/batches?limit=2", headers=api.headers()).json()
    assert [b["id"] for b in first["data"]] == made[::-1][:2] and first["has_more"]
    second = api.client.get(
        f"/v1/batches?limit=2&after={first['last_id']}", headers=api.headers()
    ).json()
    assert second["data"][0]["id"] == made[0]


def test_each_key_has_its_own_rate_with_retry_after(tmp_path: Path) -> None:
    # One request per 100 s after a burst of 3: however slow the machine, a 4th is refused.
    with running_api(tmp_path, api_rate_per_s="0.01", api_rate_burst="3") as api:
        statuses = [
            api.client.get("/v1/models", headers=api.headers("acme")).status_code for _ in range(4)
        ]
        assert statuses == [200, 200, 200, 429]
        limited = api.client.get("/v1/models", headers=api.headers("acme"))
        assert limited.status_code == 429
        assert limited.json()["error"]["code"] == "rate_limit_exceeded"
        assert 1 <= int(limited.headers["Retry-After"]) <= 100
        # Another key is not held back by the first one's rate.
        assert api.client.get("/v1/models", headers=api.headers("rival")).status_code == 200


def test_health_and_the_openapi_schema_need_no_key(api: Api) -> None:
    health = api.client.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "database": "ok", "redis": "ok"}
    paths = api.client.get("/openapi.json").json()["paths"]
    ids = {"file-x": "{file_id}", "batch_x": "{batch_id}", "chatcmpl-x": "{completion_id}"}
    ids |= {"cmpl-x": "{completion_id}", "messplus": "{model}"}
    for method, path in ROUTES:
        template = "/".join(ids.get(part, part) for part in path.split("/"))
        assert method.lower() in paths.get(template, {}), (method, template)
    chat = paths["/v1/chat/completions"]["post"]["requestBody"]["content"]["application/json"]
    assert "messages" in chat["schema"]["properties"]
