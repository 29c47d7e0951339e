"""The routes in-process (FastAPI's TestClient): keys, access before top-k, documents, upload checks.

No model generates here, so these run in the fast loop; tests/serve/test_api.py proves the same API
through a real `ragtune serve` with a real model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from ragtune.serve.app import create_app
from ragtune.workspace import Workspace
from tests.conftest import HR_DOCS


@pytest.fixture
def client(make_workspace: Callable[..., Workspace]) -> Iterator[tuple[TestClient, dict[str, str]]]:
    ws = make_workspace()
    ws.ingest([HR_DOCS], show_progress=False)
    keys = {
        "dana": ws.users.add("dana", ["hr"]),
        "sam": ws.users.add("sam", []),
        "ada": ws.users.add("ada", [], admin=True),
    }
    with TestClient(create_app(ws)) as test_client:
        yield test_client, {name: f"Bearer {key}" for name, key in keys.items()}
    ws.close()


def test_every_route_but_health_and_the_page_needs_a_key(client: tuple[TestClient, dict[str, str]]) -> None:
    http, keys = client
    assert http.get("/healthz").json() == {"status": "ok"}
    assert http.get("/").status_code == 200
    for path in ("/v1/me", "/v1/models", "/v1/documents", "/openapi.json", "/metrics"):
        refused = http.get(path)
        assert refused.status_code == 401 and refused.json()["error"]["message"].startswith("missing API key")
        assert http.get(path, headers={"authorization": "Bearer rt-nope"}).status_code == 401
    assert http.get("/v1/me", headers={"authorization": keys["dana"]}).json()["groups"] == ["hr"]
    models = http.get("/v1/models", headers={"authorization": keys["sam"]}).json()["data"]
    assert [m["id"] for m in models] == ["ragtune-base", "ragtune-rag"], "tuned strategies need an adapter"


def test_search_and_documents_apply_the_callers_groups(client: tuple[TestClient, dict[str, str]]) -> None:
    http, keys = client
    query = {"query": "salary band midpoint senior engineer", "k": 20}
    outsider = http.post("/v1/search", json=query, headers={"authorization": keys["sam"]}).json()["hits"]
    insider = http.post("/v1/search", json=query, headers={"authorization": keys["dana"]}).json()["hits"]
    assert outsider and all(h["source"] != "policies/salary-bands.md" for h in outsider)
    assert insider[0]["source"] == "policies/salary-bands.md"
    listed = http.get("/v1/documents", headers={"authorization": keys["sam"]}).json()["documents"]
    assert listed and "policies/salary-bands.md" not in [d["source"] for d in listed]
    restricted = next(
        d["doc_id"]
        for d in http.get("/v1/documents", headers={"authorization": keys["dana"]}).json()["documents"]
        if d["source"] == "policies/salary-bands.md"
    )
    assert http.get(f"/v1/documents/{restricted}", headers={"authorization": keys["sam"]}).status_code == 404
    document = http.get(f"/v1/documents/{restricted}", headers={"authorization": keys["dana"]}).json()
    assert document["groups"] == ["hr"] and "Senior Engineer" in document["text"]


def test_uploads_are_checked_indexed_and_deleted_by_admins(client: tuple[TestClient, dict[str, str]]) -> None:
    http, keys = client
    admin = {"authorization": keys["ada"]}
    note = ("canteen.md", b"# Canteen\n\nThe canteen serves lunch from 11:45 to 14:00 on weekdays.\n")
    assert (
        http.post("/v1/documents", files={"file": note}, headers={"authorization": keys["dana"]}).status_code
        == 403
    )
    unsupported = http.post("/v1/documents", files={"file": ("x.exe", b"MZ")}, headers=admin)
    assert (
        unsupported.status_code == 415
        and "unsupported file type '.exe'" in unsupported.json()["error"]["message"]
    )
    broken = http.post("/v1/documents", files={"file": ("broken.pdf", b"%PDF-1.7 not really")}, headers=admin)
    assert broken.status_code == 422 and "broken.pdf was not indexed" in broken.json()["error"]["message"]
    created = http.post("/v1/documents", files={"file": note}, headers=admin)
    assert created.status_code == 201 and created.json()["document"]["source"] == "canteen.md"
    doc_id = created.json()["document"]["doc_id"]
    listed = http.get("/v1/documents", headers=admin).json()["documents"]
    assert [d["uploaded"] for d in listed if d["doc_id"] == doc_id] == [True]
    assert http.delete(f"/v1/documents/{doc_id}", headers=admin).json() == {
        "deleted": doc_id,
        "source": "canteen.md",
    }
    assert http.delete(f"/v1/documents/{doc_id}", headers=admin).status_code == 404
    hits = http.post("/v1/search", json={"query": "canteen lunch hours"}, headers=admin).json()["hits"]
    assert all(h["source"] != "canteen.md" for h in hits), "deleted documents leave search at once"


def test_an_upload_named_like_an_ingested_file_names_and_deletes_only_itself(
    client: tuple[TestClient, dict[str, str]],
) -> None:
    http, keys = client
    admin = {"authorization": keys["ada"]}
    listed = http.get("/v1/documents", headers=admin).json()["documents"]
    ingested = next(d["doc_id"] for d in listed if d["source"] == "policies/annual-leave.md")
    files = {"file": ("annual-leave.md", b"# Leave (draft)\n\nA draft says 30 days.\n", "text/markdown")}
    uploaded = http.post("/v1/documents", files=files, headers=admin).json()["document"]["doc_id"]
    assert uploaded != ingested
    refused = http.delete(f"/v1/documents/{ingested}", headers=admin)
    assert refused.status_code == 409 and "remove it there" in refused.json()["error"]["message"]
    assert http.delete(f"/v1/documents/{uploaded}", headers=admin).status_code == 200
    remaining = {d["doc_id"] for d in http.get("/v1/documents", headers=admin).json()["documents"]}
    assert ingested in remaining and uploaded not in remaining


def test_a_reupload_without_groups_keeps_its_restriction_unless_widened(
    client: tuple[TestClient, dict[str, str]],
) -> None:
    http, keys = client
    admin, outsider = {"authorization": keys["ada"]}, {"authorization": keys["sam"]}
    bands = ("bands.md", b"# Bands\n\nzqband L3 midpoint is 69,000.\n", "text/markdown")
    http.post("/v1/documents", files={"file": bands}, data={"groups": "hr"}, headers=admin)
    again = http.post(
        "/v1/documents", files={"file": ("bands.md", bands[1] + b"\nEdited.\n", "text/markdown")}, headers=admin
    )
    assert again.status_code == 201 and again.json()["document"]["groups"] == ["hr"]
    assert again.json()["report"]["held"] == [{"path": "bands.md", "from": ["hr"], "to": []}]
    search = {"query": "zqband midpoint", "k": 5, "mode": "bm25"}
    assert http.post("/v1/search", json=search, headers=outsider).json()["hits"] == []
    widened = http.post(
        "/v1/documents", files={"file": bands}, data={"groups": "", "widen": "true"}, headers=admin
    )
    assert widened.json()["report"]["widened"] and widened.json()["document"]["groups"] == []
    assert http.post("/v1/search", json=search, headers=outsider).json()["hits"]
