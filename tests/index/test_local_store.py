"""Store logic with hand-made vectors (fast); the real embedder is exercised in tests/ingest."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from ragtune.errors import StoreError
from ragtune.index import segments
from ragtune.index.local_store import LocalStore
from ragtune.index.store import Access, DocumentUpdate
from ragtune.types import Chunk, Document, Section

DIM = 8


def _update(
    source: str, texts: list[str], vectors: np.ndarray, groups: list[str] | None = None
) -> DocumentUpdate:
    body = "\n\n".join(texts)
    document = Document(
        source, "o", source, body, [Section(body, 0)], groups=groups or [], content_hash=source
    )
    chunks = [
        Chunk(f"{document.doc_id}:{i}", document.doc_id, source, source, t, 0, len(t), groups=groups or [])
        for i, t in enumerate(texts)
    ]
    return DocumentUpdate(document, chunks, vectors.astype(np.float32))


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal((n, DIM))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(params=["rebuilt", "incremental"])
def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalStore:
    """Every test runs twice: on an index small enough to rebuild per write (the default below 20k
    chunks), and on one that searches an HNSW base plus the delta written since, as a large one does."""
    if request.param == "rebuilt":
        return LocalStore(tmp_path / "index", dim=DIM, model="test-model")
    monkeypatch.setattr(segments, "EXACT_BELOW", 0)
    return LocalStore(tmp_path / "index", dim=DIM, model="test-model", ann_min_chunks=1, rebuild_below=0)


def test_acl_filter_applies_before_top_k(store: LocalStore) -> None:
    rng = np.random.default_rng(0)
    query = _unit(rng, 1)[0]
    near = np.tile(query, (20, 1)) + 0.01 * rng.standard_normal((20, DIM))
    store.write(
        [
            _update("secret.md", [f"secret pay band {i}" for i in range(20)], near, groups=["hr"]),
            _update("public.md", [f"public leave policy {i}" for i in range(30)], _unit(rng, 30)),
        ]
    )
    store.refresh()
    dense = store.search_dense(query, 10, Access())
    assert len(dense) == 10
    assert all(not chunk.groups for chunk in store.chunks([i for i, _ in dense]))
    bm25 = store.search_bm25("secret pay band public", 10, Access())
    assert len(bm25) == 10 and all(not c.groups for c in store.chunks([i for i, _ in bm25]))
    hr = store.search_dense(query, 10, Access.of(["hr"]))
    assert all(c.groups == ["hr"] for c in store.chunks([i for i, _ in hr])), "the most similar are hr chunks"


def test_dense_search_is_exact(store: LocalStore) -> None:
    rng = np.random.default_rng(1)
    vectors = _unit(rng, 50)
    store.write([_update("a.md", [f"t{i}" for i in range(50)], vectors)])
    query = _unit(rng, 1)[0]
    expected = np.argsort(-(vectors @ query))[:5]
    found = store.search_dense(query, 5, Access())
    assert [int(i.split(":")[1]) for i, _ in found] == expected.tolist()
    assert found[0][1] == pytest.approx(float(vectors[expected[0]] @ query), abs=1e-5)


def test_replacing_a_document_replaces_its_chunks(store: LocalStore) -> None:
    rng = np.random.default_rng(2)
    store.write([_update("a.md", ["old words here", "more old words"], _unit(rng, 2))])
    store.write([_update("a.md", ["fresh text"], _unit(rng, 1))])
    store.refresh()
    assert store.stats()["chunks"] == 1
    assert store.search_bm25("old words", 5, Access()) == []
    assert len(store.search_bm25("fresh", 5, Access())) == 1


def test_deleting_by_source_removes_document_and_chunks(store: LocalStore) -> None:
    rng = np.random.default_rng(3)
    store.write([_update("a.md", ["alpha"], _unit(rng, 1)), _update("b.md", ["beta"], _unit(rng, 1))])
    store.write([], [("o", "a.md")])
    assert store.document_hashes("o") == {"b.md": "b.md"}
    assert store.search_bm25("alpha", 5, Access()) == []


def test_missing_or_stale_snapshot_is_rebuilt_from_sqlite(tmp_path: Path, store: LocalStore) -> None:
    rng = np.random.default_rng(4)
    store.write([_update("a.md", ["alpha beta"], _unit(rng, 1))])
    store.refresh()
    store.close()
    shutil.rmtree(tmp_path / "index" / "snapshots")
    reopened = LocalStore(tmp_path / "index", dim=DIM, model="test-model")
    assert len(reopened.search_bm25("alpha", 5, Access())) == 1
    other = LocalStore(tmp_path / "index", dim=DIM, model="test-model")
    other.write([_update("b.md", ["gamma"], _unit(rng, 1))])
    assert len(reopened.search_bm25("gamma", 5, Access())) == 1, "a reader sees the latest committed write"


def test_metadata_filters(store: LocalStore) -> None:
    rng = np.random.default_rng(5)
    a = _update("a.md", ["leave policy"], _unit(rng, 1))
    a.document.meta = {"team": "people"}
    for chunk in a.chunks:
        chunk.meta = {"team": "people"}
    store.write([a, _update("b.md", ["leave policy"], _unit(rng, 1))])
    hits = store.search_bm25("leave", 5, Access.of(filters={"team": "people"}))
    assert [c.source for c in store.chunks([i for i, _ in hits])] == ["a.md"]
    hits = store.search_bm25("leave", 5, Access.of(filters={"source": "b.*"}))
    assert [c.source for c in store.chunks([i for i, _ in hits])] == ["b.md"]


def test_a_different_embedder_is_refused(tmp_path: Path, store: LocalStore) -> None:
    store.close()
    with pytest.raises(StoreError, match="built with embedder 'test-model'"):
        LocalStore(tmp_path / "index", dim=DIM, model="another-model")


def test_empty_index_returns_nothing(store: LocalStore) -> None:
    assert store.search_dense(np.ones(DIM, np.float32), 5, Access()) == []
    assert store.search_bm25("anything", 5, Access()) == []


def test_copy_is_a_consistent_index_of_its_own(store: LocalStore, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    vectors = _unit(rng, 3)
    store.write(
        [
            _update(
                "leave.md", ["annual leave is 25 days", "carry over 5 days", "ask your manager"], vectors
            ),
            _update("pay.md", ["pay band B3"], _unit(rng, 1), groups=["hr"]),
        ]
    )
    store.copy_to(tmp_path / "copy")
    store.write([], delete_sources=[("o", "leave.md")])  # the original moves on; the copy must not

    copy = LocalStore(tmp_path / "copy", dim=DIM, model="test-model")
    assert (copy.stats()["documents"], copy.stats()["chunks"]) == (2, 4)
    assert store.stats()["documents"] == 1
    top = copy.search_dense(vectors[1], 1, Access())
    assert copy.chunks([top[0][0]])[0].text == "carry over 5 days"
    assert copy.search_bm25("pay band", 5, Access()) == [], "access still applies in the copy"
    assert len(copy.search_bm25("pay band", 5, Access.of(["hr"]))) == 1
