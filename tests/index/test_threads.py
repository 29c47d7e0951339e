"""The index and the embedding cache are used from a server's worker threads: each thread sees committed data only."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ragtune.index.embedder import EmbeddingCache
from ragtune.workspace import Workspace


def test_the_embedding_cache_works_from_any_thread(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "cache.sqlite")
    cache.put_many("m", {"a": np.ones(4, dtype=np.float32)})

    def roundtrip(n: int) -> int:
        cache.put_many("m", {f"k{n}": np.full(4, n, dtype=np.float32)})
        return int(cache.get_many("m", [f"k{n}", "a"])[f"k{n}"][0])

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(roundtrip, range(16))) == list(range(16))
    cache.close()


def test_a_search_never_sees_a_write_in_progress(
    make_workspace: Callable[..., Workspace], hr_copy: Path
) -> None:
    ws = make_workspace()
    ws.ingest([hr_copy], show_progress=False)
    store = ws.store
    generation, chunks = store.generation, store.stats()["chunks"]
    writing, release = threading.Event(), threading.Event()
    seen: dict[str, int] = {}

    def writer() -> None:
        with store._write_lock, store.db:  # an open write transaction, as in the middle of an ingest
            store.db.execute("DELETE FROM chunks")
            store.db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
            writing.set()
            release.wait(30)
            store.db.rollback()

    def reader() -> None:
        writing.wait(30)
        seen["generation"] = store.generation
        seen["chunks"] = store.stats()["chunks"]
        seen["hits"] = len(ws.search("annual leave", k=3))
        release.set()

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {"generation": generation, "chunks": chunks, "hits": 3}
    assert store.stats()["chunks"] == chunks, "the rolled-back write left nothing behind"


def test_connections_of_ended_threads_are_closed(tmp_path: Path) -> None:
    """A server starts a thread per generation: their connections must not pile up (a leak the soak found)."""
    from ragtune.sqlite import ThreadConnections

    connections = ThreadConnections(tmp_path / "db.sqlite")
    for _ in range(50):
        thread = threading.Thread(target=lambda: connections.db.execute("SELECT 1").fetchone())
        thread.start()
        thread.join()
    connections.db.execute("SELECT 1")
    assert connections.open_connections() == 1, "only this thread's connection is left open"
    connections.close()
