"""Uploads and deletes while clients search and chat, on the real server: no 5xx, nothing lost or doubled."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from ragtune.workspace import Workspace
from tests.serve.conftest import Server

pytestmark = pytest.mark.slow  # real models or a real server: `pytest -m "not slow"` skips these

WORDS = [
    "saffron",
    "quokka",
    "zeppelin",
    "marimba",
    "obsidian",
    "tundra",
    "walrus",
    "juniper",
    "origami",
    "falafel",
    "glacier",
    "harpoon",
]


def note(word: str) -> bytes:
    return f"# The {word} rule\n\nEvery {word} request is answered within 3 working days.\n".encode()


def test_uploads_and_deletes_under_search_and_chat_load(server: Server) -> None:
    statuses: Counter[tuple[str, int]] = Counter()
    lock = threading.Lock()
    stop = threading.Event()

    def record(kind: str, status: int) -> None:
        with lock:
            statuses[(kind, status)] += 1

    def searcher(user: str) -> None:
        with server.client(user) as client:
            while not stop.is_set():
                record(
                    "search",
                    client.post("/v1/search", json={"query": "annual leave days", "k": 5}).status_code,
                )

    def chatter() -> None:
        with server.client("dana") as client:
            while not stop.is_set():
                body = {
                    "model": "ragtune-rag",
                    "max_tokens": 8,
                    "messages": [{"role": "user", "content": "Probation length?"}],
                }
                record("chat", client.post("/v1/chat/completions", json=body).status_code)

    kept: dict[str, str] = {}

    def uploader(words: list[str]) -> None:
        with server.client("admin") as admin:
            for number, word in enumerate(words):
                response = admin.post(
                    "/v1/documents", files={"file": (f"{word}.md", note(word), "text/markdown")}
                )
                record("upload", response.status_code)
                doc_id = response.json()["document"]["doc_id"]
                if number % 2:
                    record("delete", admin.delete(f"/v1/documents/{doc_id}").status_code)
                else:
                    with lock:
                        kept[word] = doc_id

    load = [threading.Thread(target=searcher, args=(u,)) for u in ("dana", "bob", "dana")]
    load.append(threading.Thread(target=chatter))
    writers = [threading.Thread(target=uploader, args=(WORDS[i::2],)) for i in range(2)]
    for thread in load + writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in load:
        thread.join()

    assert not [key for key in statuses if key[1] >= 500], statuses
    assert statuses[("upload", 201)] == len(WORDS) and statuses[("delete", 200)] == len(WORDS) // 2, statuses
    assert set(statuses) <= {("search", 200), ("chat", 200), ("chat", 429), ("upload", 201), ("delete", 200)}
    assert statuses[("search", 200)] > 10

    listing = server.client("admin").get("/v1/documents").json()["documents"]
    sources = Counter(d["source"] for d in listing)
    for word in WORDS:
        expected = 1 if word in kept else 0
        assert sources[f"{word}.md"] == expected, (word, sources)

    ws = Workspace.open(server.workspace)  # the index on disk is consistent: documents, chunks, snapshot
    try:
        everyone = ws.everyone()
        stats = ws.store.stats()
        assert sum(d.chunks for d in ws.store.documents(everyone)) == stats["chunks"]
        assert len(ws.store.all_chunks(None)) == stats["chunks"]
        for word in kept:
            assert ws.search(f"{word} request", k=1)[0].chunk.source == f"{word}.md"
    finally:
        ws.close()
    with server.client("admin") as admin:
        for doc_id in kept.values():
            assert admin.delete(f"/v1/documents/{doc_id}").status_code == 200
