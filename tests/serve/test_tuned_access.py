"""Tuned models over HTTP: a caller lacking a group a model learnt from gets a 403 naming it, and the
model is not listed for them. In-process (TestClient); the refusal comes before any model loads, so
the adapter and embedder are folders holding only the manifest the real manifest code writes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ragtune.access import Access
from ragtune.manifest import READERS, Manifest
from ragtune.serve.app import create_app
from ragtune.workspace import Workspace
from tests.conftest import HR_DOCS

Client = tuple[TestClient, dict[str, dict[str, str]], Workspace]


@pytest.fixture
def client(make_workspace: Callable[..., Workspace]) -> Iterator[Client]:
    ws = make_workspace()
    ws.ingest([HR_DOCS / "policies"], show_progress=False)  # salary-bands.md is in group hr
    keys = {"dana": ws.users.add("dana", ["hr"]), "sam": ws.users.add("sam", [])}
    with TestClient(create_app(ws)) as test_client:
        yield test_client, {name: {"authorization": f"Bearer {key}"} for name, key in keys.items()}, ws
    ws.close()


def chat(model: str, stream: bool = False) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": "What is the L3 midpoint?"}],
        "stream": stream,
    }


def listed(http: TestClient, headers: dict[str, str]) -> list[str]:
    return [m["id"] for m in http.get("/v1/models", headers=headers).json()["data"]]


def test_a_tuned_model_is_refused_with_403_naming_the_missing_groups(client: Client) -> None:
    http, keys, ws = client
    Manifest(ws.layout.adapter("tone"), {"name": "tone", "base_model": "none", READERS: ["hr"]}).write()
    for model in ("ragtune-finetuned", "ragtune-hybrid"):
        for stream in (False, True):
            refused = http.post("/v1/chat/completions", json=chat(model, stream), headers=keys["sam"])
            assert refused.status_code == 403, refused.text
            message = refused.json()["error"]["message"]
            assert "learnt from text of groups hr" in message and "the caller lacks hr" in message
    assert listed(http, keys["sam"]) == ["ragtune-base", "ragtune-rag"], "listed only for who may use it"
    assert ws.strategies(Access.of(["hr"])) == ["base", "rag", "finetuned", "hybrid"]
    assert listed(http, keys["dana"]) == ["ragtune-base", "ragtune-rag", "ragtune-finetuned", "ragtune-hybrid"]


def test_an_adapter_without_readers_is_refused_until_retrained(client: Client) -> None:
    http, keys, ws = client
    Manifest(ws.layout.adapter("old"), {"name": "old", "base_model": "none"}).write()
    refused = http.post("/v1/chat/completions", json=chat("ragtune-finetuned"), headers=keys["sam"])
    assert refused.status_code == 403 and "Retrain it" in refused.json()["error"]["message"]


def test_a_tuned_embedders_index_is_refused_to_a_caller_without_its_groups(client: Client) -> None:
    http, keys, ws = client
    embedder = ws.layout.embedder("mini")
    Manifest(embedder, {"name": "mini", "kind": "retriever", READERS: ["hr"]}).write()
    ws.layout.write_active(embedder, "index")
    sam = keys["sam"]
    for path, body in (
        ("/v1/search", {"query": "annual leave days", "k": 3}),
        ("/v1/embeddings", {"input": "annual leave days"}),
        ("/v1/chat/completions", chat("ragtune-rag")),
    ):
        refused = http.post(path, json=body, headers=sam)
        assert refused.status_code == 403, path
        assert "the caller lacks hr" in refused.json()["error"]["message"]
    assert listed(http, sam) == ["ragtune-base"]
