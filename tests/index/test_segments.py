"""The index of a large knowledge base: an HNSW base, edits searchable as a delta, tombstones, rebuilds.

Thresholds are lowered so that a few hundred hand-made vectors take the paths a million chunks take.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from ragtune.index import segments
from ragtune.index.local_store import LocalStore
from ragtune.index.store import Access
from tests.index.test_stores import _unit, _update

DIM = 8


def _store(path: Path, **options: int) -> LocalStore:
    return LocalStore(path, dim=DIM, model="test-model", rebuild_below=0, **options)


def _saved_bases(path: Path) -> list[str]:
    return sorted(p.name for p in (path / "snapshots").iterdir() if not p.name.startswith("."))


def _sources(store: LocalStore, hits: list[tuple[str, float]]) -> list[str]:
    return [c.source for c in store.chunks([i for i, _ in hits])]


def _forty_documents(store: LocalStore, rng: np.random.Generator) -> None:
    store.write(
        [
            _update(f"d{i}.md", [f"policy {i} leave days", f"policy {i} pay band"], _unit(rng, 2))
            for i in range(40)
        ]
    )
    store.refresh()


def test_an_edit_is_searchable_without_rebuilding_the_base(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    store = _store(tmp_path / "index")
    _forty_documents(store, rng)
    assert _saved_bases(tmp_path / "index") == ["1"]

    edited = _unit(rng, 1)
    store.write([_update("d3.md", ["quarantine allowance rules"], edited)], delete_sources=[("o", "d5.md")])
    store.write([_update("secret.md", ["quarantine bonus for executives"], _unit(rng, 1), groups=["board"])])
    store.refresh()

    assert _saved_bases(tmp_path / "index") == ["1"], "three changed chunks in eighty: no new base"
    assert _sources(store, store.search_bm25("quarantine", 5, Access())) == ["d3.md"]
    assert set(_sources(store, store.search_bm25("quarantine", 5, Access.of(["board"])))) == {
        "d3.md",
        "secret.md",
    }
    assert "d3.md" not in _sources(store, store.search_bm25("policy 3", 80, Access())), "the old text is gone"
    assert "d5.md" not in _sources(store, store.search_bm25("policy 5 leave", 80, Access()))
    top = store.search_dense(edited[0], 1, Access())
    assert _sources(store, top) == ["d3.md"] and top[0][1] == pytest.approx(1.0, abs=1e-5)

    reopened = _store(tmp_path / "index")
    for query in ("quarantine", "policy 7 pay", "leave"):
        assert reopened.search_bm25(query, 10, Access()) == store.search_bm25(query, 10, Access())
    assert reopened.search_dense(edited[0], 10, Access()) == store.search_dense(edited[0], 10, Access())


def test_a_delta_row_scores_as_it_will_after_the_rebuild(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    store = _store(tmp_path / "index")
    _forty_documents(store, rng)
    vector = _unit(rng, 1)
    store.write([_update("new.md", ["unusual sabbatical policy clause"], vector)])
    store.refresh()  # new.md is searched in the delta
    rebuilt = LocalStore(tmp_path / "rebuilt", dim=DIM, model="test-model")
    _forty_documents(rebuilt, np.random.default_rng(1))
    rebuilt.write([_update("new.md", ["unusual sabbatical policy clause"], vector)])

    for query in ("sabbatical clause", "sabbatical policy", "policy"):
        delta = dict(zip(_sources(store, h := store.search_bm25(query, 81, Access())), h, strict=True))
        whole = dict(zip(_sources(rebuilt, h := rebuilt.search_bm25(query, 81, Access())), h, strict=True))
        assert delta["new.md"][1] == pytest.approx(whole["new.md"][1], rel=0.01), query


def test_a_grown_delta_gets_a_new_base_in_the_background(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    store = _store(tmp_path / "index")
    _forty_documents(store, rng)
    store.write([_update(f"new{i}.md", [f"new handbook part {i}"], _unit(rng, 1)) for i in range(12)])
    store.refresh()  # 12 new chunks on a base of 80: over a tenth, so a new base is built on a thread
    assert len(store.search_bm25("handbook", 20, Access())) == 12, "searchable before the new base exists"
    deadline = time.monotonic() + 60
    while _saved_bases(tmp_path / "index") != ["2"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _saved_bases(tmp_path / "index") == ["2"]
    assert len(store.search_bm25("handbook", 20, Access())) == 12


def test_a_reader_on_an_old_base_reloads_once_its_tombstones_are_gone(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    reader = _store(tmp_path / "index")
    _forty_documents(reader, rng)
    writer = _store(tmp_path / "index")
    writer.write([], delete_sources=[("o", "d1.md")])
    writer.write([_update(f"n{i}.md", [f"bulk {i}"], _unit(rng, 1)) for i in range(100)])
    writer.refresh()  # more new rows than the base holds: a new base now, in this thread
    writer.write([], delete_sources=[("o", "d2.md")])  # prunes the tombstones the new base reflects
    assert writer.stats()["generation"] == 4 and _saved_bases(tmp_path / "index") == ["3"]

    found = set(_sources(reader, reader.search_bm25("policy leave days", 80, Access())))
    assert "d1.md" not in found and "d2.md" not in found and len(found) == 38


def test_hnsw_search_reads_only_readable_chunks_and_finds_the_exact_top_k(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(segments, "EXACT_BELOW", 0)
    rng = np.random.default_rng(5)
    dim = 16
    store = LocalStore(tmp_path / "index", dim=dim, model="test-model", ann_min_chunks=1000)
    vectors = rng.standard_normal((3000, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    groups = [["hr"] if i % 2 else [] for i in range(300)]
    store.write(
        [
            _update(f"d{i}.md", [f"t{i}-{j}" for j in range(10)], vectors[i * 10 : i * 10 + 10], groups[i])
            for i in range(300)
        ]
    )
    store.refresh()
    assert (tmp_path / "index" / "snapshots" / "1" / "ann.faiss").exists()
    public = np.array([not groups[i // 10] for i in range(3000)])
    recalls = []
    for query in rng.standard_normal((20, dim)).astype(np.float32):
        chunks = store.chunks([i for i, _ in store.search_dense(query, 10, Access())])
        assert len(chunks) == 10 and all(not c.groups for c in chunks), "an hr chunk reached a public caller"
        scores = vectors @ query
        scores[~public] = -np.inf
        found = {int(c.text[1:].split("-")[0]) * 10 + int(c.text.split("-")[1]) for c in chunks}
        recalls.append(len(found & set(np.argsort(-scores)[:10].tolist())) / 10)
    assert np.mean(recalls) >= 0.9


def test_a_reader_takes_the_base_another_process_saved_instead_of_building_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(6)
    reader = _store(tmp_path / "index")
    _forty_documents(reader, rng)
    writer = _store(tmp_path / "index")
    writer.write([_update(f"n{i}.md", [f"bulk upload {i}"], _unit(rng, 1)) for i in range(100)])
    writer.refresh()  # an ingest's own refresh: more new rows than the base holds, so a new base

    def no_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("the reader built a base of its own")

    monkeypatch.setattr("ragtune.index.local_store.build_base", no_build)
    assert len(reader.search_bm25("bulk upload", 200, Access())) == 100
