"""The embedded index: SQLite as the source of truth, search structures derived from it.

Why this shape (figures in docs/decisions.md §1 and §14): every write is one SQLite transaction, so
a killed ingest leaves the previous index intact. Searches read a snapshot (segments.py): a base
built from one committed generation and saved (numpy vectors, bm25s, and an HNSW graph above
`ann_min_chunks`), plus the rows written and deleted since, read back from SQLite by row id. A
boolean ACL mask filters every search before top-k: numpy's and bm25s' masks, faiss' id bitmap.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragtune.errors import StoreError
from ragtune.index.embedder import EmbeddingCache, SentenceTransformerEmbedder, embed_with_cache
from ragtune.index.segments import (
    Base,
    Rows,
    Snapshot,
    build_base,
    load_base,
    merged,
    query_tokens,
    save_base,
    stemmer,
)
from ragtune.index.store import Access, DocumentUpdate, StoredDocument, check_embedder, check_vectors
from ragtune.sqlite import ThreadConnections
from ragtune.types import Chunk, Document, document_id, index_text

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY, origin TEXT, source TEXT, title TEXT, content_hash TEXT,
    groups TEXT, meta TEXT, text TEXT, chunks INTEGER, indexed_at REAL
);
CREATE INDEX IF NOT EXISTS documents_origin ON documents (origin, source);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT, chunk_id TEXT UNIQUE, doc_id TEXT, source TEXT, title TEXT,
    text TEXT, start INTEGER, end INTEGER, heading TEXT, page INTEGER, row INTEGER,
    groups TEXT, meta TEXT, vector BLOB
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks (doc_id);
CREATE TABLE IF NOT EXISTS removed (id INTEGER PRIMARY KEY, generation INTEGER);
"""


class LocalStore:
    """An on-disk index in one folder: `index.sqlite` plus `snapshots/<generation>/`."""

    def __init__(
        self,
        directory: Path,
        *,
        dim: int,
        model: str,
        ann_min_chunks: int = 200_000,
        ef_search: int = 128,
        rebuild_below: int = 20_000,
    ) -> None:
        """`ann_min_chunks`: from this many chunks a base gets an HNSW graph (exact search below it).
        `rebuild_below`: an index this small rebuilds its base on every change (under a second), so
        its BM25 statistics are always exact; larger ones search a delta and rebuild in the background.
        """
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.dim = dim
        self.model = model
        self.ann_min_chunks = ann_min_chunks
        self.ef_search = ef_search
        self.rebuild_below = rebuild_below
        # One connection per thread: a search in one server thread never reads another's open write.
        self._connections = ThreadConnections(directory / "index.sqlite", pragmas=("synchronous=NORMAL",))
        self._write_lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        try:
            self.db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{directory / 'index.sqlite'}: not a usable index ({exc}); "
                "delete the folder and ingest again"
            ) from exc
        self._check_model()
        _single_threaded_blas()
        self._snapshot: Snapshot | None = None
        self._stemmer = stemmer()
        self._rebuilding: threading.Thread | None = None

    @property
    def db(self) -> sqlite3.Connection:
        return self._connections.db

    def _check_model(self) -> None:
        stored = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
        if "model" not in stored:
            with self.db:
                self.db.executemany(
                    "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                    [("model", self.model), ("dim", str(self.dim)), ("generation", "0")],
                )
        else:
            check_embedder(stored, self.model, self.dim)

    @property
    def generation(self) -> int:
        return self._meta_int("generation")

    def document_hashes(self, origin: str) -> dict[str, str]:
        rows = self.db.execute("SELECT source, content_hash FROM documents WHERE origin = ?", (origin,))
        return dict(rows.fetchall())

    def refusal(self, document: Document, chunks: Sequence[Chunk]) -> str | None:
        return None  # SQLite holds any length and any number of groups

    def write(
        self, updates: Sequence[DocumentUpdate], delete_sources: Sequence[tuple[str, str]] = ()
    ) -> None:
        if not updates and not delete_sources:
            return
        now = time.time()
        with self._write_lock, self.db:
            for update in updates:
                doc = update.document
                check_vectors(update, self.dim)
                self._remove_chunks(doc.doc_id)
                self.db.execute(
                    "INSERT OR REPLACE INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        doc.doc_id,
                        doc.origin,
                        doc.source,
                        doc.title,
                        doc.content_hash,
                        json.dumps(doc.groups),
                        json.dumps(doc.meta),
                        doc.text,
                        len(update.chunks),
                        now,
                    ),
                )
                self.db.executemany(
                    "INSERT INTO chunks (chunk_id, doc_id, source, title, text, start, end, heading, page, row,"
                    " groups, meta, vector) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            c.chunk_id,
                            c.doc_id,
                            c.source,
                            c.title,
                            c.text,
                            c.start,
                            c.end,
                            json.dumps(c.heading),
                            c.page,
                            c.row,
                            json.dumps(c.groups),
                            json.dumps(c.meta),
                            np.asarray(v, dtype=np.float32).tobytes(),
                        )
                        for c, v in zip(update.chunks, update.vectors, strict=True)
                    ],
                )
            for origin, source in delete_sources:
                doc_id = document_id(origin, source)
                self._remove_chunks(doc_id)
                self.db.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,))
            self.db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
            self._forget_removed_before(self._newest_saved_base())

    def _remove_chunks(self, doc_id: str) -> None:
        """Delete a document's chunks, noting their row ids for snapshots built before this write."""
        self.db.execute(
            "INSERT OR REPLACE INTO removed SELECT id, (SELECT CAST(value AS INTEGER) + 1 FROM meta"
            " WHERE key = 'generation') FROM chunks WHERE doc_id = ?",
            (doc_id,),
        )
        self.db.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))

    def _forget_removed_before(self, generation: int) -> None:
        """Drop tombstones that the newest saved base already reflects; older snapshots reload it."""
        if generation > self._meta_int("removed_through"):
            self.db.execute("DELETE FROM removed WHERE generation <= ?", (generation,))
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('removed_through', ?)", (str(generation),))

    def _meta_int(self, key: str) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def _newest_saved_base(self) -> int:
        folder = self.directory / "snapshots"
        names = [p.name for p in folder.iterdir()] if folder.is_dir() else []
        return max((int(n) for n in names if n.isdigit() and (folder / n / "complete").exists()), default=0)

    def refresh(self) -> None:
        """Make every committed write searchable: catch the snapshot up, or build a new base."""
        if self._snapshot is not None and self._snapshot.generation >= self.generation:
            return
        with self._refresh_lock:  # concurrent searches after a write catch up once
            if self._snapshot is None or self._snapshot.generation < self.generation:
                self._snapshot = self._updated(self._snapshot)
            if self._snapshot.wants_new_base() and self._rebuilding is None:
                self._rebuilding = threading.Thread(target=self._rebuild_in_background, daemon=True)
                self._rebuilding.start()

    def _updated(self, snapshot: Snapshot | None) -> Snapshot:
        """The snapshot caught up to the latest generation: new rows appended, deleted ones masked.

        When this one cannot be caught up (too many new rows, or its tombstones are gone), the newest
        saved base is tried (a CLI ingest beside a server saves one); failing both, a new base.
        """
        self.db.execute("BEGIN")  # one read transaction: the generation and the rows it stamps agree
        try:
            generation = self.generation
            if snapshot is not None and snapshot.base.generation < self._meta_int("removed_through"):
                snapshot = None
            found = self._cheaply_caught_up(snapshot, generation) or self._cheaply_caught_up(
                self._saved(generation, not_before=snapshot), generation
            )
            if found is not None:
                return found
            rows = self._rows(0)
        finally:
            self.db.execute("COMMIT")
        return Snapshot.of(self._new_base(rows, generation))

    def _cheaply_caught_up(self, snapshot: Snapshot | None, generation: int) -> Snapshot | None:
        """`snapshot` caught up, unless the index is small enough to rebuild or the delta would
        outgrow the base (then a rebuild is cheaper than searching the delta)."""
        if snapshot is None or snapshot.generation == generation:
            return snapshot
        query = "SELECT COUNT(*) FROM chunks WHERE id > ?"
        (new,) = self.db.execute(query, (snapshot.last_rowid,)).fetchone()
        small = snapshot.rows + new <= self.rebuild_below
        if small or len(snapshot.delta) + new > len(snapshot.base):
            return None
        return self._caught_up(snapshot, generation)

    def _saved(self, generation: int, not_before: Snapshot | None) -> Snapshot | None:
        """The newest saved base, if it is newer than `not_before`'s and not past `generation`."""
        newest = self._newest_saved_base()
        if not_before is not None and newest <= not_before.base.generation:
            return None
        base = load_base(self.directory / "snapshots" / str(newest))
        return Snapshot.of(base) if base is not None and base.generation <= generation else None

    def _caught_up(self, snapshot: Snapshot, generation: int) -> Snapshot:
        """Inside a read transaction: `snapshot` with the rows written and deleted after it."""
        removed = self.db.execute("SELECT id FROM removed WHERE generation > ?", (snapshot.generation,))
        return snapshot.advanced(
            self._rows(snapshot.last_rowid),
            np.array([r[0] for r in removed], dtype=np.int64),
            generation,
            self._stemmer,
        )

    def _rows(self, after: int) -> Rows:
        rows = self.db.execute(
            "SELECT id, chunk_id, vector, groups, title, heading, text FROM chunks WHERE id > ? ORDER BY id",
            (after,),
        ).fetchall()
        vectors = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32).reshape(len(rows), self.dim)
        return Rows(
            np.array([r[0] for r in rows], dtype=np.int64),
            [r[1] for r in rows],
            vectors.copy(),
            [json.loads(r[3]) for r in rows],
            [index_text(r[4], json.loads(r[5]), r[6]) for r in rows],
        )

    def _new_base(self, rows: Rows, generation: int) -> Base:
        """Build, save and reopen a base (reopened, its vectors are memory-mapped, not held twice)."""
        # The newest row id *read*: rows written since have larger ids and reach the next delta. (The
        # id sequence, read after the read transaction, could already count rows this base lacks.)
        last_rowid = int(rows.rowids[-1]) if len(rows) else 0
        base = build_base(rows, generation, last_rowid, self._stemmer, self.ann_min_chunks)
        folder = self.directory / "snapshots" / str(generation)
        save_base(base, folder)
        for old in folder.parent.iterdir():
            if old.name != folder.name and (not old.name.startswith(".tmp-") or _stale(old)):
                shutil.rmtree(old, ignore_errors=True)
        return load_base(folder) or base

    def _rebuild_in_background(self) -> None:
        """A new base from every row, built on a thread while searches go on reading the delta."""
        try:
            self.db.execute("BEGIN")
            try:
                generation, rows = self.generation, self._rows(0)
            finally:
                self.db.execute("COMMIT")
            base = self._new_base(rows, generation)
            with self._refresh_lock:
                self.db.execute("BEGIN")
                try:
                    if base.generation >= self._meta_int("removed_through"):  # else: its tombstones are gone
                        self._snapshot = self._caught_up(Snapshot.of(base), self.generation)
                finally:
                    self.db.execute("COMMIT")
        except (sqlite3.Error, OSError, StoreError):
            pass  # the store closed, or the disk failed: searches keep the delta; the next refresh retries
        finally:
            self._rebuilding = None

    def _current(self) -> Snapshot:
        self.refresh()
        assert self._snapshot is not None
        return self._snapshot

    def _allowed(self, snapshot: Snapshot, access: Access) -> tuple[np.ndarray, np.ndarray]:
        """Readable live rows of the base and the delta, narrowed by the caller's metadata filters."""
        base, delta = snapshot.allowed(access)
        if access.filters and (base.any() or delta.any()):
            clauses, params = [], []
            for key, value in access.filters:
                if key == "source":
                    clauses.append("source GLOB ?")
                elif key == "doc_id":
                    clauses.append("doc_id = ?")
                else:
                    clauses.append("CAST(json_extract(meta, ?) AS TEXT) = ?")
                    params.append(f'$."{key}"')
                params.append(value)
            rows = self.db.execute(f"SELECT id FROM chunks WHERE {' AND '.join(clauses)}", params)
            ids = np.asarray([r[0] for r in rows], dtype=np.int64)
            base &= np.isin(snapshot.base.rowids, ids)
            delta &= np.isin(snapshot.delta.rowids, ids)
        return base, delta

    def search_dense(self, vector: np.ndarray, k: int, access: Access) -> list[tuple[str, float]]:
        snapshot = self._current()
        base, delta = self._allowed(snapshot, access)
        vector = np.asarray(vector, dtype=np.float32)
        return merged(
            snapshot.base.dense(vector, k, base, self.ef_search), snapshot.delta.dense(vector, k, delta), k=k
        )

    def search_bm25(self, query: str, k: int, access: Access) -> list[tuple[str, float]]:
        snapshot = self._current()
        tokens = query_tokens(query, self._stemmer)
        if not tokens or k <= 0:
            return []
        base, delta = self._allowed(snapshot, access)
        return merged(
            snapshot.base.bm25_hits(tokens, k, base),
            snapshot.delta.bm25_hits(tokens, k, delta, ~snapshot.delta_dead, snapshot.base),
            k=k,
        )

    def chunks(self, chunk_ids: Sequence[str]) -> list[Chunk]:
        if not chunk_ids:
            return []
        marks = ",".join("?" * len(chunk_ids))
        rows = self.db.execute(
            f"SELECT {_CHUNK_COLUMNS} FROM chunks WHERE chunk_id IN ({marks})", list(chunk_ids)
        )
        by_id = {chunk.chunk_id: chunk for chunk in map(_chunk_from_row, rows)}
        return [by_id[c] for c in chunk_ids if c in by_id]

    def all_chunks(self, access: Access | None) -> list[Chunk]:
        """Every chunk the caller may read (None: every chunk, for internal jobs), in index order."""
        rows = self.db.execute(f"SELECT {_CHUNK_COLUMNS} FROM chunks ORDER BY id")
        chunks = map(_chunk_from_row, rows)
        return [c for c in chunks if access.may_read(c.groups)] if access is not None else list(chunks)

    def documents(self, access: Access) -> list[StoredDocument]:
        rows = self.db.execute(f"SELECT {_DOCUMENT_COLUMNS} FROM documents ORDER BY source").fetchall()
        return [d for d in map(_document_from_row, rows) if access.may_read(d.groups)]

    def document(self, doc_id: str, access: Access) -> StoredDocument | None:
        """One document by id, or None when it does not exist or the caller may not read it."""
        row = self.db.execute(
            f"SELECT {_DOCUMENT_COLUMNS} FROM documents WHERE doc_id = ?", (doc_id,)
        ).fetchone()
        document = _document_from_row(row) if row else None
        return document if document is not None and access.may_read(document.groups) else None

    def document_text(self, doc_id: str) -> str | None:
        row = self.db.execute("SELECT text FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        return str(row[0]) if row else None

    def groups(self) -> set[str]:
        """Every access group any document carries."""
        rows = self.db.execute("SELECT DISTINCT groups FROM documents").fetchall()
        return {group for (encoded,) in rows for group in json.loads(encoded)}

    def group_counts(self) -> dict[str, int]:
        """Documents per access group; "" counts the public ones (no groups)."""
        counts: dict[str, int] = {}
        for encoded, n in self.db.execute("SELECT groups, COUNT(*) FROM documents GROUP BY groups"):
            for group in json.loads(encoded) or [""]:
                counts[group] = counts.get(group, 0) + n
        return counts

    def stats(self) -> dict[str, Any]:
        (documents,) = self.db.execute("SELECT COUNT(*) FROM documents").fetchone()
        (chunks,) = self.db.execute("SELECT COUNT(*) FROM chunks").fetchone()
        size = sum(f.stat().st_size for f in self.directory.rglob("*") if f.is_file())
        return {
            "documents": documents,
            "chunks": chunks,
            "generation": self.generation,
            "model": self.model,
            "dim": self.dim,
            "disk_bytes": size,
        }

    def copy_to(self, target: Path) -> None:
        """SQLite's online backup into `target` (consistent under concurrent writes); snapshots rebuild there."""
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        copy = sqlite3.connect(target / "index.sqlite")
        try:
            self.db.backup(copy)
        finally:
            copy.close()

    def reembed_copy(self, target: Path, embedder: SentenceTransformerEmbedder, cache: EmbeddingCache) -> int:
        """Copy the index to `target` with every chunk vector from `embedder`; returns the chunk count.

        Chunks, documents and their hashes are copied as they are (chunking does not depend on the
        embedder's weights), so later syncs stay incremental. This index is not changed; the copy's
        search snapshot is built before returning, so switching to it costs the first search nothing.
        """
        self.copy_to(target)
        rows = self._reembed(target / "index.sqlite", embedder, cache)
        copy = LocalStore(target, dim=embedder.dim, model=embedder.name, ann_min_chunks=self.ann_min_chunks)
        try:
            copy.refresh()
        finally:
            copy.close()
        return rows

    def _reembed(self, path: Path, embedder: SentenceTransformerEmbedder, cache: EmbeddingCache) -> int:
        target = sqlite3.connect(path)
        try:
            rows = target.execute("SELECT id, title, heading, text FROM chunks ORDER BY id").fetchall()
            texts = [index_text(r[1], json.loads(r[2]), r[3]) for r in rows]
            vectors, _ = embed_with_cache(embedder, cache, texts)
            with target:
                target.executemany(
                    "UPDATE chunks SET vector = ? WHERE id = ?",
                    [(v.astype(np.float32).tobytes(), r[0]) for r, v in zip(rows, vectors, strict=True)],
                )
                target.executemany(
                    "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                    [("model", embedder.name), ("dim", str(embedder.dim))],
                )
                target.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
        finally:
            target.close()
        return len(rows)

    def drop(self) -> None:
        self.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def close(self) -> None:
        self._connections.close()


_DOCUMENT_COLUMNS = "doc_id, source, origin, title, content_hash, groups, chunks, meta"


def _document_from_row(r: Sequence[Any]) -> StoredDocument:
    return StoredDocument(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], json.loads(r[7]))


_CHUNK_COLUMNS = "chunk_id, doc_id, source, title, text, start, end, heading, page, row, groups, meta"


def _chunk_from_row(r: Sequence[Any]) -> Chunk:
    return Chunk(
        r[0],
        r[1],
        r[2],
        r[3],
        r[4],
        r[5],
        r[6],
        tuple(json.loads(r[7])),
        r[8],
        r[9],
        json.loads(r[10]),
        json.loads(r[11]),
    )


def _single_threaded_blas() -> None:
    """Run numpy's BLAS on one thread in this process.

    A dense search is one memory-bound matrix-vector product; with a multi-threaded OpenBLAS its
    spinning threads fight torch's threads that embed the query, which measured 24 ms hybrid p50 at
    100k chunks instead of 15 ms (bench/search.py) with no gain on the product itself.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


def _stale(path: Path, seconds: float = 3600) -> bool:
    try:
        return time.time() - path.stat().st_mtime > seconds
    except OSError:
        return False
