"""The embedded index: SQLite as the source of truth, numpy (dense) and bm25s (BM25) as snapshots.

Why this shape (figures in docs/decisions.md): every write is one SQLite transaction, so a killed
ingest leaves the previous index intact; the search structures are derived from a committed
generation and rebuilt from SQLite if they are missing or stale. A flat numpy matrix with a
boolean ACL mask gives exact, pre-filtered dense search; bm25s' weight mask does the same for BM25.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ragtune.errors import StoreError
from ragtune.index.embedder import EmbeddingCache, SentenceTransformerEmbedder, embed_with_cache
from ragtune.index.store import Access, DocumentUpdate, StoredDocument
from ragtune.sqlite import ThreadConnections
from ragtune.types import Chunk, document_id, index_text

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
"""

TOKEN_PATTERN = r"(?u)\b\w+\b"


def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


def bm25_tokens(texts: Sequence[str], stemmer: Any) -> Any:
    import bm25s

    return bm25s.tokenize(
        list(texts), stopwords="en", stemmer=stemmer, token_pattern=TOKEN_PATTERN, show_progress=False
    )


@dataclass
class Snapshot:
    """Search structures for one committed generation of the index."""

    generation: int
    chunk_ids: list[str]
    rowids: np.ndarray
    vectors: np.ndarray
    public: np.ndarray
    group_masks: dict[str, np.ndarray]
    bm25: Any

    def mask(self, access: Access) -> np.ndarray:
        allowed = self.public.copy()
        for group in access.groups:
            member = self.group_masks.get(group)
            if member is not None:
                allowed |= member
        return allowed


class LocalStore:
    """An on-disk index in one folder: `index.sqlite` plus `snapshots/<generation>/`."""

    def __init__(self, directory: Path, *, dim: int, model: str) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.dim = dim
        self.model = model
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
        self._stemmer = _stemmer()

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
        elif stored["model"] != self.model or int(stored["dim"]) != self.dim:
            raise StoreError(
                f"the index was built with embedder {stored['model']!r} ({stored['dim']}-d) but the workspace "
                f"is configured for {self.model!r} ({self.dim}-d); re-embed or restore embedder.model"
            )

    @property
    def generation(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return int(row[0]) if row else 0

    def document_hashes(self, origin: str) -> dict[str, str]:
        rows = self.db.execute("SELECT source, content_hash FROM documents WHERE origin = ?", (origin,))
        return dict(rows.fetchall())

    def write(
        self, updates: Sequence[DocumentUpdate], delete_sources: Sequence[tuple[str, str]] = ()
    ) -> None:
        if not updates and not delete_sources:
            return
        now = time.time()
        with self._write_lock, self.db:
            for update in updates:
                doc = update.document
                if update.vectors.shape != (len(update.chunks), self.dim):
                    raise StoreError(
                        f"{doc.source}: {update.vectors.shape} vectors for {len(update.chunks)} chunks"
                    )
                self.db.execute("DELETE FROM chunks WHERE doc_id = ?", (doc.doc_id,))
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
                self.db.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
                self.db.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,))
            self.db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")

    def refresh(self) -> None:
        """Load (or build and save) the snapshot of the latest committed generation."""
        generation = self.generation
        if self._snapshot is not None and self._snapshot.generation >= generation:
            return
        with self._refresh_lock:  # concurrent searches after a write build the snapshot once
            if self._snapshot is not None and self._snapshot.generation >= generation:
                return
            folder = self.directory / "snapshots" / str(generation)
            snapshot = self._load_snapshot(folder, generation) if (folder / "complete").exists() else None
            if snapshot is None:
                snapshot = self._build_snapshot(generation)
                self._save_snapshot(snapshot, folder.with_name(str(snapshot.generation)))
            self._snapshot = snapshot

    def _build_snapshot(self, generation: int) -> Snapshot:
        import bm25s

        self.db.execute("BEGIN")  # one read transaction: the generation and the rows it stamps agree
        try:
            generation = self.generation
            rows = self.db.execute(
                "SELECT id, chunk_id, vector, groups, title, heading, text FROM chunks ORDER BY id"
            ).fetchall()
        finally:
            self.db.execute("COMMIT")
        chunk_ids = [r[1] for r in rows]
        rowids = np.array([r[0] for r in rows], dtype=np.int64)
        vectors = (
            np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32).reshape(len(rows), self.dim).copy()
            if rows
            else np.zeros((0, self.dim), dtype=np.float32)
        )
        groups = [json.loads(r[3]) for r in rows]
        public, group_masks = _group_masks(groups)
        bm25 = None
        if rows:
            texts = [index_text(r[4], json.loads(r[5]), r[6]) for r in rows]
            bm25 = bm25s.BM25()
            bm25.index(bm25_tokens(texts, self._stemmer), show_progress=False)
        return Snapshot(generation, chunk_ids, rowids, vectors, public, group_masks, bm25)

    def _save_snapshot(self, snapshot: Snapshot, folder: Path) -> None:
        """Write to a private temp folder and rename, so a reader never sees half a snapshot."""
        parent = folder.parent
        parent.mkdir(parents=True, exist_ok=True)
        temp = parent / f".tmp-{snapshot.generation}-{os.getpid()}"
        shutil.rmtree(temp, ignore_errors=True)
        temp.mkdir()
        np.save(temp / "vectors.npy", snapshot.vectors)
        np.save(temp / "rowids.npy", snapshot.rowids)
        (temp / "chunk_ids.json").write_text(json.dumps(snapshot.chunk_ids))
        groups = {g: np.flatnonzero(m).tolist() for g, m in snapshot.group_masks.items()}
        (temp / "groups.json").write_text(
            json.dumps({"public": np.flatnonzero(snapshot.public).tolist(), **groups})
        )
        if snapshot.bm25 is not None:
            snapshot.bm25.save(str(temp / "bm25"))
        (temp / "complete").write_text(str(snapshot.generation))
        try:
            os.replace(temp, folder)
        except OSError:
            shutil.rmtree(temp, ignore_errors=True)  # another process saved the same generation first
        for old in parent.iterdir():
            if old.name != folder.name and (not old.name.startswith(".tmp-") or _stale(old)):
                shutil.rmtree(old, ignore_errors=True)

    def _load_snapshot(self, folder: Path, generation: int) -> Snapshot | None:
        import bm25s

        try:
            vectors = np.load(folder / "vectors.npy")
            rowids = np.load(folder / "rowids.npy")
            chunk_ids = json.loads((folder / "chunk_ids.json").read_text())
            positions = json.loads((folder / "groups.json").read_text())
            bm25 = bm25s.BM25.load(str(folder / "bm25")) if (folder / "bm25").exists() else None
        except (OSError, ValueError):
            return None
        n = len(chunk_ids)
        masks = {}
        for name, where in positions.items():
            mask = np.zeros(n, dtype=bool)
            mask[np.asarray(where, dtype=np.int64)] = True
            masks[name] = mask
        public = masks.pop("public")
        return Snapshot(generation, chunk_ids, rowids, vectors, public, masks, bm25)

    def _current(self) -> Snapshot:
        self.refresh()
        assert self._snapshot is not None
        return self._snapshot

    def _allowed(self, snapshot: Snapshot, access: Access) -> np.ndarray:
        allowed = snapshot.mask(access)
        if access.filters and len(allowed):
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
            ids = [
                r[0] for r in self.db.execute(f"SELECT id FROM chunks WHERE {' AND '.join(clauses)}", params)
            ]
            allowed &= np.isin(snapshot.rowids, np.asarray(ids, dtype=np.int64))
        return allowed

    def search_dense(self, vector: np.ndarray, k: int, access: Access) -> list[tuple[str, float]]:
        snapshot = self._current()
        allowed = self._allowed(snapshot, access)
        visible = int(allowed.sum())
        if visible == 0 or k <= 0:
            return []
        scores = snapshot.vectors @ np.asarray(vector, dtype=np.float32)
        scores[~allowed] = -np.inf
        k = min(k, visible)
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(snapshot.chunk_ids[i], float(scores[i])) for i in top]

    def search_bm25(self, query: str, k: int, access: Access) -> list[tuple[str, float]]:
        snapshot = self._current()
        if snapshot.bm25 is None or k <= 0:
            return []
        vocabulary = snapshot.bm25.vocab_dict
        tokens = [t for t in bm25_tokens([query], self._stemmer).vocab if t in vocabulary]
        if not tokens:
            return []
        allowed = self._allowed(snapshot, access)
        visible = int(allowed.sum())
        if visible == 0:
            return []
        documents, scores = snapshot.bm25.retrieve(
            [tokens], k=min(k, visible), weight_mask=allowed.astype(np.float32), show_progress=False
        )
        return [
            (snapshot.chunk_ids[int(i)], float(s))
            for i, s in zip(documents[0], scores[0], strict=True)
            if s > 0
        ]

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
        copy = LocalStore(target, dim=embedder.dim, model=embedder.name)
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


def _group_masks(groups: list[list[str]]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    n = len(groups)
    public = np.array([not g for g in groups], dtype=bool)
    masks: dict[str, np.ndarray] = {}
    for position, names in enumerate(groups):
        for name in names:
            if name not in masks:
                masks[name] = np.zeros(n, dtype=bool)
            masks[name][position] = True
    return public, masks


def _stale(path: Path, seconds: float = 3600) -> bool:
    try:
        return time.time() - path.stat().st_mtime > seconds
    except OSError:
        return False
