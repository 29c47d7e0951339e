"""The backend contract: every Store behaves the same, with hand-made vectors (fast).

Each test runs on the embedded index rebuilt per write, on the embedded index searching an HNSW base
plus a delta (as a large one does), and on a real Milvus server started for the session. The real
embedder is exercised in tests/ingest.
"""

from __future__ import annotations

import io
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from ragtune.errors import StoreError
from ragtune.index import segments
from ragtune.index.embedder import EmbeddingCache
from ragtune.index.local_store import LocalStore
from ragtune.index.milvus_store import MilvusStore
from ragtune.index.store import Access, DocumentUpdate, Store
from ragtune.ingest.sources import FileSource
from ragtune.ingest.sync import sync_source
from ragtune.types import Chunk, Document, Section

DIM = 8
OpenStore = Callable[..., Store]  # (folder, model="test-model") -> a store of the backend under test


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


@pytest.fixture(params=["local", "local-incremental", "milvus", "milvus-hnsw"])
def open_store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> OpenStore:
    """How to open a store of each backend: the embedded index small enough to rebuild per write (the
    default below 20k chunks), the embedded index as a large one runs (HNSW base + delta), Milvus
    with exact (FLAT) and HNSW vector indexes."""
    if request.param.startswith("milvus"):
        uri, collection = request.getfixturevalue("milvus_uri"), request.getfixturevalue("milvus_collection")
        vector_index = "HNSW" if request.param == "milvus-hnsw" else "FLAT"

        def milvus(folder: Path, model: str = "test-model") -> Store:
            return MilvusStore(
                folder, dim=DIM, model=model, uri=uri, collection=collection, rebuild_below=0,
                vector_index=vector_index,
            )  # fmt: skip

        return milvus
    if request.param == "local":
        return lambda folder, model="test-model": LocalStore(folder, dim=DIM, model=model)
    monkeypatch.setattr(segments, "EXACT_BELOW", 0)
    return lambda folder, model="test-model": LocalStore(
        folder, dim=DIM, model=model, ann_min_chunks=1, rebuild_below=0
    )


@pytest.fixture
def store(open_store: OpenStore, tmp_path: Path) -> Store:
    return open_store(tmp_path / "index")


def test_acl_filter_applies_before_top_k(store: Store) -> None:
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


def test_dense_search_is_exact(store: Store) -> None:
    rng = np.random.default_rng(1)
    vectors = _unit(rng, 50)
    store.write([_update("a.md", [f"t{i}" for i in range(50)], vectors)])
    query = _unit(rng, 1)[0]
    expected = np.argsort(-(vectors @ query))[:5]
    found = store.search_dense(query, 5, Access())
    assert [int(i.split(":")[1]) for i, _ in found] == expected.tolist()
    assert found[0][1] == pytest.approx(float(vectors[expected[0]] @ query), abs=1e-5)


def test_replacing_a_document_replaces_its_chunks(store: Store) -> None:
    rng = np.random.default_rng(2)
    store.write([_update("a.md", ["old words here", "more old words"], _unit(rng, 2))])
    store.write([_update("a.md", ["fresh text"], _unit(rng, 1))])
    store.refresh()
    assert store.stats()["chunks"] == 1
    assert store.search_bm25("old words", 5, Access()) == []
    assert len(store.search_bm25("fresh", 5, Access())) == 1


def test_deleting_by_source_removes_document_and_chunks(store: Store) -> None:
    rng = np.random.default_rng(3)
    store.write([_update("a.md", ["alpha"], _unit(rng, 1)), _update("b.md", ["beta"], _unit(rng, 1))])
    store.write([], [("o", "a.md")])
    assert store.document_hashes("o") == {"b.md": "b.md"}
    assert store.search_bm25("alpha", 5, Access()) == []


def test_missing_or_stale_snapshot_is_rebuilt_from_sqlite(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    store = LocalStore(tmp_path / "index", dim=DIM, model="test-model")
    store.write([_update("a.md", ["alpha beta"], _unit(rng, 1))])
    store.refresh()
    store.close()
    shutil.rmtree(tmp_path / "index" / "snapshots")
    reopened = LocalStore(tmp_path / "index", dim=DIM, model="test-model")
    assert len(reopened.search_bm25("alpha", 5, Access())) == 1
    other = LocalStore(tmp_path / "index", dim=DIM, model="test-model")
    other.write([_update("b.md", ["gamma"], _unit(rng, 1))])
    assert len(reopened.search_bm25("gamma", 5, Access())) == 1, "a reader sees the latest committed write"


def test_metadata_filters(store: Store) -> None:
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
    vector = _unit(rng, 1)
    store.write([_update('fête "🎉" \\ notes.md', ["party rules"], vector)])  # quotes, a backslash, an emoji
    assert 'fête "🎉" \\ notes.md' in store.document_hashes("o")
    for search in (lambda a: store.search_bm25("party", 5, a), lambda a: store.search_dense(vector[0], 1, a)):
        hits = search(Access.of(filters={"source": "fête*"}))
        assert [c.source for c in store.chunks([i for i, _ in hits])] == ['fête "🎉" \\ notes.md']


def test_a_different_embedder_is_refused(tmp_path: Path, store: Store, open_store: OpenStore) -> None:
    store.close()
    with pytest.raises(StoreError, match="built with embedder 'test-model'"):
        open_store(tmp_path / "index", model="another-model")


def test_empty_index_returns_nothing(store: Store) -> None:
    assert store.search_dense(np.ones(DIM, np.float32), 5, Access()) == []
    assert store.search_bm25("anything", 5, Access()) == []


def test_copy_is_a_consistent_index_of_its_own(store: Store, tmp_path: Path, open_store: OpenStore) -> None:
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

    copy = open_store(tmp_path / "copy")
    assert (copy.stats()["documents"], copy.stats()["chunks"]) == (2, 4)
    assert store.stats()["documents"] == 1
    top = copy.search_dense(vectors[1], 1, Access())
    assert copy.chunks([top[0][0]])[0].text == "carry over 5 days"
    assert copy.search_bm25("pay band", 5, Access()) == [], "access still applies in the copy"
    assert len(copy.search_bm25("pay band", 5, Access.of(["hr"]))) == 1


def test_a_second_store_on_the_index_sees_another_ones_writes(
    store: Store, open_store: OpenStore, tmp_path: Path
) -> None:
    """Ingest in one process and serve in another: the reader catches up without reopening."""
    rng = np.random.default_rng(6)
    store.write([_update("a.md", ["alpha"], _unit(rng, 1))])
    reader = open_store(tmp_path / "index")
    assert [c.source for c in reader.chunks([i for i, _ in reader.search_bm25("alpha", 5, Access())])] == [
        "a.md"
    ]
    vector = _unit(rng, 1)
    store.write([_update("b.md", ["gamma delta"], vector)], delete_sources=[("o", "a.md")])
    deadline = time.monotonic() + 10  # Milvus: the reader polls for new generations every second
    while reader.search_bm25("alpha", 5, Access()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert reader.search_bm25("alpha", 5, Access()) == []
    assert [c.source for c in reader.chunks([i for i, _ in reader.search_bm25("gamma", 5, Access())])] == [
        "b.md"
    ]
    assert [c.source for c in reader.chunks([reader.search_dense(vector[0], 1, Access())[0][0]])] == ["b.md"]
    assert reader.document_hashes("o") == {"b.md": "b.md"}


def test_a_milvus_store_opens_the_saved_bm25_base_and_reads_only_what_changed(
    tmp_path: Path, milvus_uri: str, milvus_collection: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading every chunk text back from the server takes 20 s at 100k chunks: a process reopening
    the index loads the BM25 base the last one saved and catches up from row ids and tombstones."""
    rng = np.random.default_rng(7)

    def open_milvus() -> MilvusStore:
        return MilvusStore(
            tmp_path / "index", dim=DIM, model="test-model", uri=milvus_uri, collection=milvus_collection
        )

    first = open_milvus()
    first.write([_update("a.md", ["alpha"], _unit(rng, 1)), _update("b.md", ["beta"], _unit(rng, 1))])
    assert len(first.search_bm25("alpha", 5, Access())) == 1  # builds and saves the base
    first.write([_update("c.md", ["gamma"], _unit(rng, 1))], delete_sources=[("o", "a.md")])
    first.close()

    rebuild = MilvusStore._new_base

    def no_rebuild(self: MilvusStore, generation: int) -> segments.Base:
        """Opening must catch the saved base up; the background rebuild it then starts may build."""
        assert threading.current_thread() is not threading.main_thread(), "rebuilt instead of caught up"
        return rebuild(self, generation)

    monkeypatch.setattr(MilvusStore, "_new_base", no_rebuild)
    second = MilvusStore(
        tmp_path / "index",
        dim=DIM,
        model="test-model",
        uri=milvus_uri,
        collection=milvus_collection,
        rebuild_below=0,
    )
    assert second.search_bm25("alpha", 5, Access()) == [], "a tombstone written after the base masks it"
    hits = second.search_bm25("gamma beta", 5, Access())
    assert sorted(c.source for c in second.chunks([i for i, _ in hits])) == ["b.md", "c.md"]


def test_an_unreachable_milvus_is_a_clear_error(tmp_path: Path) -> None:
    from ragtune.index.milvus_server import free_port

    with pytest.raises(StoreError, match=r"Milvus at http://127\.0\.0\.1"):
        MilvusStore(tmp_path / "index", dim=DIM, model="m", uri=f"http://127.0.0.1:{free_port()}", timeout=2)


def test_dropping_a_milvus_index_folder_drops_its_collections(
    tmp_path: Path, milvus_uri: str, milvus_collection: str
) -> None:
    """A retriever switch replacing an index folder must not leave that index's collections behind."""
    from pymilvus import MilvusClient

    from ragtune.index.milvus_store import drop_index_folder

    store = MilvusStore(
        tmp_path / "index", dim=DIM, model="test-model", uri=milvus_uri, collection=milvus_collection
    )
    store.write([_update("a.md", ["alpha"], _unit(np.random.default_rng(8), 1))])
    store.close()
    client = MilvusClient(uri=milvus_uri)
    assert len([c for c in client.list_collections() if c.startswith(milvus_collection)]) == 4
    drop_index_folder(tmp_path / "index", milvus_uri)
    assert not [c for c in client.list_collections() if c.startswith(milvus_collection)]
    assert not (tmp_path / "index").exists()
    client.close()


def test_a_milvus_index_opened_with_another_vector_index_is_reindexed_and_keeps_its_chunks(
    tmp_path: Path, milvus_uri: str, milvus_collection: str
) -> None:
    """A team that outgrows FLAT sets `[index] milvus_index = "HNSW"`: the next open re-indexes."""
    from pymilvus import MilvusClient

    rng = np.random.default_rng(11)
    vectors = _unit(rng, 40)
    store = MilvusStore(tmp_path / "index", dim=DIM, model="m", uri=milvus_uri, collection=milvus_collection)
    store.write([_update(f"d{i}.md", [f"text {i}"], vectors[i : i + 1]) for i in range(40)])
    store.close()
    hnsw = MilvusStore(
        tmp_path / "index", dim=DIM, model="m", uri=milvus_uri, collection=milvus_collection,
        vector_index="HNSW", ef_search=64,
    )  # fmt: skip
    client = MilvusClient(uri=milvus_uri)
    chunks = f"{hnsw.name}_chunks"
    indexes = [client.describe_index(chunks, n)["index_type"] for n in client.list_indexes(chunks)]
    client.close()
    assert indexes == ["HNSW"]
    hits = hnsw.search_dense(vectors[7], 3, Access())
    assert [c.source for c in hnsw.chunks([hits[0][0]])] == ["d7.md"], "its own vector is the nearest"
    assert len(hnsw.search_dense(vectors[0], 100, Access())) == 40, "k above ef still returns every chunk"
    hnsw.write([_update(f"e{i}.md", [f"more {i}"], vectors[i : i + 1]) for i in range(10)])
    assert hnsw.seal() == 50, "every row sealed into segments the server has built its graph on"
    hits = hnsw.search_dense(vectors[3], 2, Access())
    assert sorted(c.source for c in hnsw.chunks([h for h, _ in hits])) == ["d3.md", "e3.md"]
    hnsw.close()


class _HashEmbedder:
    """Text -> a fixed pseudo-random unit vector; the real embedder is exercised in tests/ingest."""

    name, dim = "test-model", DIM

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        return np.vstack([_unit(np.random.default_rng(sum(t.encode())), 1) for t in texts]).astype(np.float32)


def test_a_file_milvus_cannot_hold_is_skipped_by_name_and_the_rest_written(
    tmp_path: Path, milvus_uri: str, milvus_collection: str
) -> None:
    """A title over the VARCHAR limit must cost that one file, not the batch it was embedded with."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a-good.md").write_text("# Leave\n\nAnnual leave is 25 days.\n")
    (docs / "b-long-title.md").write_text("# " + "very long title " * 100 + "\n\nSome text.\n")
    (docs / "c-many-groups.md").write_text(
        "---\ngroups: [" + ", ".join(f"g{i}" for i in range(70)) + "]\n---\nRestricted text.\n"
    )
    (docs / "d-good.md").write_text("# Pay\n\nPay day is the 25th.\n")
    store = MilvusStore(
        tmp_path / "index", dim=DIM, model="test-model", uri=milvus_uri, collection=milvus_collection
    )

    def one_chunk(document: Document) -> list[Chunk]:
        text = document.text
        return [
            Chunk(
                f"{document.doc_id}:0",
                document.doc_id,
                document.source,
                document.title,
                text,
                0,
                len(text),
                groups=document.groups,
            )
        ]

    console = Console(file=io.StringIO(), width=200)
    report = sync_source(
        FileSource(docs, origin="o"), store, _HashEmbedder(), EmbeddingCache(tmp_path / "cache.sqlite"),
        one_chunk, console=console, show_progress=False,
    )  # fmt: skip
    reasons = {f["path"]: f["error"] for f in report.failed}
    assert reasons.keys() == {"b-long-title.md", "c-many-groups.md"}
    assert "title is over 1024 bytes" in reasons["b-long-title.md"]
    assert "70 access groups" in reasons["c-many-groups.md"]
    assert report.added == 2
    assert sorted(store.document_hashes("o")) == ["a-good.md", "d-good.md"]
    assert "skipped b-long-title.md: its title is over 1024 bytes" in console.file.getvalue()
