"""A Milvus server (standalone or a cluster) as the index: chunks, vectors and documents live there.

Why this shape (figures in docs/decisions.md §15): dense search runs in the engine with the access
filter and metadata filters in its filter expression, so top-k is always filled with readable chunks.
Milvus 2.3 has no full-text index and no sparse vectors, so BM25 runs here, over the chunk texts read
back from the engine, with the same base + delta + tombstone snapshot as the embedded index
(segments.py): the engine's auto ids are the row ids, and a `removed` collection holds tombstones.

Milvus has no transactions. A write inserts the new chunks before it deletes the old ones and stamps
the document's content hash last, so a writer killed halfway leaves a document that the next sync
sees as changed and writes again; searches in between may see both versions of one document. One
writer at a time per collection (ragtune's ingest lock gives that on one machine).
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import itertools
import json
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, ParamSpec, TypeVar

import numpy as np

from ragtune.errors import StoreError, StoreUnavailableError
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
from ragtune.types import Chunk, Document, document_id, index_text

POINTER = "milvus.json"  # in the index folder: which collections hold this index
TEXT_PART = 16_000  # characters per document-text row (a VARCHAR holds 65,535 bytes)
MAX_GROUPS = 64
TEXT_BYTES, KEY_BYTES, GROUP_BYTES = 65_535, 1_024, 256  # VARCHAR lengths
BATCH = 1_000
MAX_K = 16_384  # the most hits one Milvus search returns
EVERY_CHUNK = "rowid > 0"  # auto ids are positive
EVERY_DOCUMENT_PART = 'key != ""'
# Milvus 2.3 requires a vector field in every collection; the bookkeeping ones carry this one.
_PLACEHOLDER = [0.0, 0.0]
P = ParamSpec("P")
R = TypeVar("R")
VectorIndex = Literal["FLAT", "HNSW"]
# HNSW build parameters: Milvus' documented middle ground (M 8-64, efConstruction 8-512).
_INDEX_PARAMS: dict[str, dict[str, int]] = {"FLAT": {}, "HNSW": {"M": 16, "efConstruction": 200}}
_CHUNK_FIELDS = [
    "rowid", "chunk_id", "doc_id", "source", "title", "text", "start", "end", "heading", "page", "row",
    "groups", "meta",
]  # fmt: skip


def _quote(value: str) -> str:
    """A string literal for a Milvus filter expression."""
    return json.dumps(value, ensure_ascii=False)  # Milvus' parser rejects JSON's surrogate pairs


def _strings(values: Sequence[str]) -> str:
    return "[" + ", ".join(_quote(v) for v in values) + "]"


def access_expression(access: Access) -> str:
    """The ACL as a filter: public chunks (no groups), or chunks sharing a group with the caller."""
    if not access.groups:
        return "array_length(groups) == 0"
    return f"(array_length(groups) == 0 or array_contains_any(groups, {_strings(sorted(access.groups))}))"


def _engine_call(method: Callable[P, R]) -> Callable[P, R]:
    """A request the server failed or refused becomes a StoreUnavailableError (HTTP 503), not a crash."""

    @functools.wraps(method)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        from pymilvus.exceptions import MilvusException

        try:
            return method(*args, **kwargs)
        except MilvusException as exc:
            raise StoreUnavailableError(f"Milvus: {method.__name__} failed ({exc.message})") from exc

    return call


class MilvusStore:
    """An index held by a Milvus server; `directory` keeps only the name of its collections."""

    def __init__(
        self,
        directory: Path,
        *,
        dim: int,
        model: str,
        uri: str,
        token: str = "",
        collection: str = "ragtune",
        rebuild_below: int = 2_000,
        poll_seconds: float = 1.0,
        timeout: float = 30.0,
        vector_index: VectorIndex = "FLAT",
        ef_search: int = 128,
    ) -> None:
        """`collection`: the name of a new index's collections (`<collection>_chunks`, ...); an
        existing index folder names its own. `poll_seconds`: how often a search checks for writes made
        by other processes (this process's own writes are searchable at once). `vector_index`: FLAT
        is exact; HNSW (built by the server per sealed segment) is for millions of chunks, searched
        with breadth `ef_search`. An existing index is re-indexed when its type differs."""
        from pymilvus import MilvusClient
        from pymilvus.exceptions import MilvusException

        self.directory = directory
        self.dim = dim
        self.model = model
        self.uri = uri
        self.rebuild_below = rebuild_below
        self.poll_seconds = poll_seconds
        self.vector_index = vector_index
        self.ef_search = ef_search
        self._credentials = token
        self._strong_until = 0.0
        self._pruned = 0.0
        self._globbed: tuple[int, dict[str, list[str]]] = (-1, {})  # generation, glob -> sources
        self.name = _collection_name(directory, collection)
        try:
            self.client = MilvusClient(uri=uri, token=token, timeout=timeout)
            self._create_collections()
            self._check_model()
            self._settle()
            # The saved BM25 base belongs to this very collection (not one recreated under its name).
            chunks_id = self.client.describe_collection(self._collection("chunks"))["collection_id"]
        except MilvusException as exc:
            raise StoreError(f"Milvus at {uri}: {exc.message}") from exc
        except StoreError:
            raise
        except Exception as exc:  # grpc and connection errors come in several types
            raise StoreError(f"cannot reach Milvus at {uri} ({exc}); is the server running?") from exc
        self._bm25_folder = directory / "bm25" / str(chunks_id)
        self._stemmer = stemmer()
        self._snapshot: Snapshot | None = None
        self._checked = 0.0
        self._refresh_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._rebuilding: threading.Thread | None = None

    # -- collections --------------------------------------------------------------------------

    def _collection(self, kind: str) -> str:
        return f"{self.name}_{kind}"

    def _create_collections(self) -> None:
        from pymilvus import DataType

        text, key = TEXT_BYTES, KEY_BYTES
        groups = {"element_type": DataType.VARCHAR, "max_capacity": MAX_GROUPS, "max_length": GROUP_BYTES}
        schemas: dict[str, list[tuple[str, Any, dict[str, Any]]]] = {
            "chunks": [
                ("rowid", DataType.INT64, {"is_primary": True}),
                ("chunk_id", DataType.VARCHAR, {"max_length": key}),
                ("doc_id", DataType.VARCHAR, {"max_length": key}),
                ("source", DataType.VARCHAR, {"max_length": key}),
                ("title", DataType.VARCHAR, {"max_length": key}),
                ("text", DataType.VARCHAR, {"max_length": text}),
                ("start", DataType.INT64, {}),
                ("end", DataType.INT64, {}),
                ("heading", DataType.VARCHAR, {"max_length": text}),
                ("page", DataType.INT64, {}),
                ("row", DataType.INT64, {}),
                ("written", DataType.INT64, {}),  # the generation of the write that inserted the row
                ("groups", DataType.ARRAY, groups),
                ("meta", DataType.JSON, {}),
                ("vector", DataType.FLOAT_VECTOR, {"dim": self.dim}),
            ],
            "documents": [
                ("key", DataType.VARCHAR, {"is_primary": True, "max_length": key + 20}),
                ("doc_id", DataType.VARCHAR, {"max_length": key}),
                ("part", DataType.INT64, {}),
                ("origin", DataType.VARCHAR, {"max_length": key}),
                ("source", DataType.VARCHAR, {"max_length": key}),
                ("title", DataType.VARCHAR, {"max_length": key}),
                ("content_hash", DataType.VARCHAR, {"max_length": 128}),
                ("groups", DataType.ARRAY, groups),
                ("chunks", DataType.INT64, {}),
                ("meta", DataType.JSON, {}),
                ("text", DataType.VARCHAR, {"max_length": text}),
                ("vector", DataType.FLOAT_VECTOR, {"dim": len(_PLACEHOLDER)}),
            ],
            "removed": [
                ("rowid", DataType.INT64, {"is_primary": True}),
                ("generation", DataType.INT64, {}),
                ("at", DataType.DOUBLE, {}),
                ("vector", DataType.FLOAT_VECTOR, {"dim": len(_PLACEHOLDER)}),
            ],
            "meta": [
                ("key", DataType.VARCHAR, {"is_primary": True, "max_length": 64}),
                ("value", DataType.VARCHAR, {"max_length": key}),
                ("vector", DataType.FLOAT_VECTOR, {"dim": len(_PLACEHOLDER)}),
            ],
        }
        names = [self._collection(kind) for kind in schemas]
        for name, fields in zip(names, schemas.values(), strict=True):
            if not self.client.has_collection(name):
                schema = self.client.create_schema(
                    auto_id=name.endswith("_chunks"), enable_dynamic_field=False
                )
                for field, data_type, options in fields:
                    schema.add_field(field, data_type, **options)
                self.client.create_collection(name, schema=schema, consistency_level="Bounded")
                self._index_vectors(name, self.vector_index if name == self._collection("chunks") else "FLAT")
        self._reindex_chunks()
        # Loads requested together and polled: one by one, pymilvus waits ~2.5 s for each.
        waiting = [n for n in names if not str(self.client.get_load_state(n)["state"]).endswith("Loaded")]
        for name in waiting:
            self.client.load_collection(name, _async=True)
        deadline = time.monotonic() + 120
        while waiting and time.monotonic() < deadline:
            time.sleep(0.05)
            waiting = [
                n for n in waiting if not str(self.client.get_load_state(n)["state"]).endswith("Loaded")
            ]
        if waiting:
            raise StoreError(f"Milvus at {self.uri}: {', '.join(waiting)} did not load in 120 s")
        self.directory.mkdir(parents=True, exist_ok=True)
        pointer = self.directory / POINTER
        if not pointer.exists():
            pointer.write_text(json.dumps({"collection": self.name, "uri": self.uri}) + "\n")

    def _index_vectors(self, collection: str, index_type: str) -> None:
        index = self.client.prepare_index_params()
        params = _INDEX_PARAMS[index_type]
        index.add_index(field_name="vector", index_type=index_type, metric_type="IP", params=params)
        self.client.create_index(collection, index)

    def _reindex_chunks(self) -> None:
        """The chunk vectors indexed as configured: the bookkeeping collections stay FLAT (a few rows)."""
        chunks = self._collection("chunks")
        names = self.client.list_indexes(chunks, field_name="vector")
        if names and self.client.describe_index(chunks, names[0]).get("index_type") == self.vector_index:
            return
        self.client.release_collection(chunks)
        for name in names:
            self.client.drop_index(chunks, name)
        self._index_vectors(chunks, self.vector_index)

    def _check_model(self) -> None:
        stored = self._meta(strong=True)
        if "model" not in stored:
            self._set_meta({"model": self.model, "dim": str(self.dim), "generation": "0"})
        else:
            check_embedder(stored, self.model, self.dim)

    def _settle(self) -> None:
        """One strong read per collection at open: on a standalone server every later read then sees
        at least what was committed before this store opened (an ingest just finished, say)."""
        for kind, every in (("chunks", EVERY_CHUNK), ("documents", EVERY_DOCUMENT_PART)):
            self.client.query(self._collection(kind), filter=every, limit=1, consistency_level="Strong")

    def _level(self, strong: bool) -> str:
        """Strong reads wait for the server to apply every write so far (~0.2 s on a standalone
        server); bounded ones answer at once from what it has applied. This process reads strongly for
        a second after its own writes, so that what it wrote is what it reads."""
        return "Strong" if strong or time.monotonic() < self._strong_until else "Bounded"

    def _meta(self, strong: bool = False) -> dict[str, str]:
        rows = self.client.query(
            self._collection("meta"), filter='key != ""', output_fields=["key", "value"],
            consistency_level=self._level(strong),
        )  # fmt: skip
        return {r["key"]: r["value"] for r in rows}

    def _set_meta(self, values: dict[str, str]) -> None:
        rows = [{"key": k, "value": v, "vector": _PLACEHOLDER} for k, v in values.items()]
        self.client.upsert(self._collection("meta"), rows)

    @property
    def generation(self) -> int:
        return int(self._meta().get("generation", 0))

    # -- writes -------------------------------------------------------------------------------

    @_engine_call
    def document_hashes(self, origin: str) -> dict[str, str]:
        rows = self._query_all(
            "documents", f"origin == {_quote(origin)} and part == 0", ["source", "content_hash"], strong=True
        )
        return {r["source"]: r["content_hash"] for r in rows}

    def refusal(self, document: Document, chunks: Sequence[Chunk]) -> str | None:
        return _refusal(document, chunks)

    @_engine_call
    def write(
        self, updates: Sequence[DocumentUpdate], delete_sources: Sequence[tuple[str, str]] = ()
    ) -> None:
        """New chunks in, then old chunks out (tombstoned for the BM25 snapshots), then the document
        rows with their content hashes, then the generation: each step leaves a state the next sync
        repairs."""
        if not updates and not delete_sources:
            return
        for update in updates:
            _check_update(update, self.dim)
        doc_ids = [u.document.doc_id for u in updates] + [document_id(*s) for s in delete_sources]
        with self._write_lock, ThreadPoolExecutor(2) as pool:
            # Three strong reads (~0.2 s each on a standalone server) wait side by side.
            old = pool.submit(self._rowids_of, doc_ids)
            keys = pool.submit(self._document_keys, doc_ids)
            generation = int(self._meta(strong=True).get("generation", 0)) + 1  # another writer's too
            replaced = old.result()  # read before the new chunks go in, or they would count as old
            self._insert_chunks(updates, generation)
            self._tombstone(replaced, generation)
            for gone in _batches(keys.result(), BATCH):
                self.client.delete(self._collection("documents"), ids=gone)
            # One insert per batch of rows, not per document: each call is a round trip (~5 ms here).
            rows = (row for update in updates for row in _document_rows(update))
            for some in _batches(rows, BATCH):
                self.client.insert(self._collection("documents"), some)
            self._set_meta({"generation": str(generation)})
            self._checked = 0.0  # this process's next search catches up at once
            self._strong_until = time.monotonic() + 1.0
            if time.monotonic() - self._pruned > 600:  # a strong read: not on every write
                self._forget_removed_before(time.time() - 3600)
                self._pruned = time.monotonic()

    def _rowids_of(self, doc_ids: Sequence[str]) -> list[int]:
        """The documents' chunk ids, read strongly (another process may have written them just now).
        Deletes go by primary key: Milvus 2.3 resolves a delete by expression with a weaker read."""
        found: list[int] = []
        for some in _batches(list(doc_ids), BATCH):
            rows = self._query_all("chunks", f"doc_id in {_strings(some)}", ["rowid"], strong=True)
            found.extend(int(r["rowid"]) for r in rows)
        return found

    def _document_keys(self, doc_ids: Sequence[str]) -> list[str]:
        found: list[str] = []
        for some in _batches(list(doc_ids), BATCH):
            rows = self._query_all("documents", f"doc_id in {_strings(some)}", ["key"], strong=True)
            found.extend(r["key"] for r in rows)
        return found

    def _insert_chunks(self, updates: Sequence[DocumentUpdate], generation: int) -> None:
        rows = (
            {
                "chunk_id": c.chunk_id, "doc_id": c.doc_id, "source": c.source, "title": c.title,
                "text": c.text, "start": c.start, "end": c.end, "heading": json.dumps(c.heading),
                "page": -1 if c.page is None else c.page, "row": -1 if c.row is None else c.row,
                "groups": list(c.groups), "meta": c.meta, "vector": np.asarray(v, dtype=np.float32).tolist(),
                "written": generation,
            }
            for update in updates
            for c, v in zip(update.chunks, update.vectors, strict=True)
        )  # fmt: skip
        for some in _batches(rows, BATCH):
            self.client.insert(self._collection("chunks"), some)

    def _tombstone(self, rowids: list[int], generation: int) -> None:
        now = time.time()
        for some in _batches(rowids, BATCH):
            rows = [{"rowid": r, "generation": generation, "at": now, "vector": _PLACEHOLDER} for r in some]
            self.client.upsert(self._collection("removed"), rows)
            self.client.delete(self._collection("chunks"), ids=some)

    def _forget_removed_before(self, cutoff: float) -> None:
        """Tombstones older than an hour go; a snapshot older than the newest of them reloads."""
        old = self._query_all("removed", f"at < {cutoff}", ["rowid", "generation"])
        if old:
            through = max(int(r["generation"]) for r in old)
            self._set_meta({"removed_through": str(through)})
            for some in _batches([int(r["rowid"]) for r in old], BATCH):
                self.client.delete(self._collection("removed"), ids=some)

    @_engine_call
    def seal(self, timeout: float = 3600.0) -> int:
        """Seal the chunks written so far and wait until the server has indexed them; the rows indexed.

        Milvus builds an HNSW graph per sealed segment; rows still in a growing segment are searched
        through its interim index (recall@10 0.84 at 5,000 bench chunks), until the segment fills or
        idles. A bulk load then seals at once, so what is measured or served next is the graph."""
        chunks = self._collection("chunks")
        self.client.flush(chunks)
        (name,) = self.client.list_indexes(chunks, field_name="vector")
        deadline = time.monotonic() + timeout
        while (state := self.client.describe_index(chunks, name))["pending_index_rows"]:
            if time.monotonic() > deadline:
                pending = state["pending_index_rows"]
                raise StoreError(f"Milvus at {self.uri}: {pending} rows not indexed in {timeout:.0f} s")
            time.sleep(1.0)
        return int(state["indexed_rows"])

    # -- the BM25 snapshot --------------------------------------------------------------------

    @_engine_call
    def refresh(self) -> None:
        """Catch the BM25 snapshot up with every committed write (rebuilt while the index is small)."""
        with self._refresh_lock:
            meta = self._meta()
            self._checked = time.monotonic()
            generation = int(meta.get("generation", 0))
            snapshot = self._snapshot
            if snapshot is not None and snapshot.generation >= generation:
                return
            removed_through = int(meta.get("removed_through", 0))
            if snapshot is None or snapshot.generation < removed_through:
                snapshot = self._saved_snapshot(generation, removed_through)
            caught = None
            if snapshot is not None and snapshot.rows > self.rebuild_below:
                caught = self._caught_up(snapshot, generation)
            self._snapshot = caught or Snapshot.of(self._new_base(generation))
            if self._snapshot.wants_new_base() and self._rebuilding is None:
                self._rebuilding = threading.Thread(target=self._rebuild_in_background, daemon=True)
                self._rebuilding.start()

    def _current(self) -> Snapshot:
        if self._snapshot is None or time.monotonic() - self._checked > self.poll_seconds:
            self.refresh()
        assert self._snapshot is not None
        return self._snapshot

    def _rows(self, where: str, known: np.ndarray | None = None) -> Rows:
        """Chunk rows matching `where`, but those in `known`, read with strong consistency: a
        generation seen in the meta collection has all its rows visible (it is stamped after them)."""
        fields = ["rowid", "chunk_id", "groups", "title", "heading", "text"]
        found = sorted(self._query_all("chunks", where, fields, strong=True), key=lambda r: int(r["rowid"]))
        if known is not None and len(known):
            seen = np.isin(np.array([int(r["rowid"]) for r in found], dtype=np.int64), known)
            found = [r for r, old in zip(found, seen, strict=True) if not old]
        return Rows(
            np.array([int(r["rowid"]) for r in found], dtype=np.int64),
            [r["chunk_id"] for r in found],
            np.zeros((len(found), 0), dtype=np.float32),  # dense search runs in the engine
            [list(r["groups"]) for r in found],
            [index_text(r["title"], json.loads(r["heading"]), r["text"]) for r in found],
        )

    def _new_base(self, generation: int) -> Base:
        """BM25 over every chunk text in the engine, saved in the index folder so that the next
        process opens it and reads only what changed since (at 100k chunks: 20 s to read and build)."""
        # Row ids are auto ids, increasing per proxy but not across a cluster's proxies: new rows are
        # found by the generation that wrote them, never by `rowid > last` (last_rowid stays 0).
        base = build_base(self._rows(EVERY_CHUNK), generation, 0, self._stemmer, ann_min_chunks=2**62)
        folder = self._bm25_folder / str(generation)
        with contextlib.suppress(OSError):  # a read-only folder only costs the next process a rebuild
            save_base(base, folder)
            for old in folder.parent.iterdir():
                if old.name != folder.name:
                    shutil.rmtree(old, ignore_errors=True)
        return base

    def _saved_snapshot(self, generation: int, removed_through: int) -> Snapshot | None:
        """The BM25 base saved by this folder's last process, if the tombstones since it are all kept."""
        folder = self._bm25_folder
        saved = sorted((int(p.name) for p in folder.glob("[0-9]*")), reverse=True) if folder.is_dir() else []
        base = load_base(folder / str(saved[0])) if saved else None
        if base is None or not removed_through <= base.generation <= generation:
            return None
        return Snapshot.of(base)

    def _caught_up(self, snapshot: Snapshot, generation: int) -> Snapshot | None:
        """`snapshot` with the rows written and deleted since (the two strong reads side by side), or
        None when tombstones it needed were pruned meanwhile (then only a new base is right).

        Rows of a write still in progress when the snapshot was read may be in it already: they are
        told apart by row id."""
        known = np.concatenate([snapshot.base.rowids, snapshot.delta.rowids])
        with ThreadPoolExecutor(2) as pool:
            since = f"generation > {snapshot.generation}"
            removed = pool.submit(self._query_all, "removed", since, ["rowid"], strong=True)
            rows = self._rows(f"written > {snapshot.generation}", known)
        if int(self._meta(strong=True).get("removed_through", 0)) > snapshot.generation:
            return None  # read after the tombstones: a prune that raced them is seen here
        return snapshot.advanced(
            rows,
            np.array(sorted(int(r["rowid"]) for r in removed.result()), dtype=np.int64),
            generation,
            self._stemmer,
        )

    def _rebuild_in_background(self) -> None:
        """A new BM25 base from every row, built while searches go on reading the delta."""
        from pymilvus.exceptions import MilvusException

        try:
            base = self._new_base(self.generation)
            with self._refresh_lock:
                self._snapshot = self._caught_up(Snapshot.of(base), self.generation) or self._snapshot
        except (MilvusException, StoreError):
            pass  # the server went away: searches keep the delta; the next refresh retries
        finally:
            self._rebuilding = None

    # -- searches -----------------------------------------------------------------------------

    def _filter_expression(self, access: Access) -> str:
        """The ACL and the caller's metadata filters as one Milvus expression."""
        clauses = [access_expression(access)]
        for key, value in access.filters:
            if key == "source":
                clauses.append(f"source in {_strings(self._sources_matching(value))}")
            elif key == "doc_id":
                clauses.append(f"doc_id == {_quote(value)}")
            else:
                clauses.append(_meta_clause(key, value))
        return " and ".join(clauses)

    def _sources_matching(self, pattern: str) -> list[str]:
        """The sources a glob matches, listed once per generation of the index (a strong listing of
        every document costs ~0.2 s; a hybrid search filters twice)."""
        if self._snapshot is not None:  # caught up every second; a dense-only reader has none to build
            generation = self._current().generation
        else:
            generation = int(self._meta().get("generation", 0))
        if self._globbed[0] != generation:
            self._globbed = (generation, {})
        cache = self._globbed[1]
        found = cache.get(pattern)
        if found is None:
            rows = self._query_all("documents", "part == 0", ["source"], strong=True)
            found = sorted({r["source"] for r in rows if fnmatch.fnmatchcase(r["source"], pattern)})
            if len(cache) >= 256:
                cache.clear()
            cache[pattern] = found
        return found

    def _search_params(self, k: int) -> dict[str, Any]:
        if self.vector_index == "HNSW":  # Milvus requires ef >= k
            return {"metric_type": "IP", "params": {"ef": max(self.ef_search, min(k, MAX_K))}}
        return {"metric_type": "IP"}

    @_engine_call
    def search_dense(self, vector: np.ndarray, k: int, access: Access) -> list[tuple[str, float]]:
        if k <= 0:
            return []
        hits = self.client.search(
            self._collection("chunks"), [np.asarray(vector, dtype=np.float32).tolist()], limit=min(k, MAX_K),
            filter=self._filter_expression(access), output_fields=["chunk_id"], search_params=self._search_params(k),
            consistency_level=self._level(False),
        )  # fmt: skip
        return [(h["entity"]["chunk_id"], float(h["distance"])) for h in hits[0]]

    @_engine_call
    def search_bm25(self, query: str, k: int, access: Access) -> list[tuple[str, float]]:
        snapshot = self._current()
        tokens = query_tokens(query, self._stemmer)
        if not tokens or k <= 0:
            return []
        base, delta = snapshot.allowed(access)
        if access.filters and (base.any() or delta.any()):
            where = self._filter_expression(access)
            ids = np.array([int(r["rowid"]) for r in self._query_all("chunks", where, ["rowid"])], np.int64)
            base &= np.isin(snapshot.base.rowids, ids)
            delta &= np.isin(snapshot.delta.rowids, ids)
        return merged(
            snapshot.base.bm25_hits(tokens, k, base),
            snapshot.delta.bm25_hits(tokens, k, delta, ~snapshot.delta_dead, snapshot.base),
            k=k,
        )

    # -- reads --------------------------------------------------------------------------------

    @_engine_call
    def chunks(self, chunk_ids: Sequence[str]) -> list[Chunk]:
        by_id: dict[str, Chunk] = {}
        for some in _batches(list(chunk_ids), BATCH):
            for row in self._query_all("chunks", f"chunk_id in {_strings(some)}", _CHUNK_FIELDS):
                by_id[row["chunk_id"]] = _chunk(row)
        return [by_id[c] for c in chunk_ids if c in by_id]

    @_engine_call
    def all_chunks(self, access: Access | None) -> list[Chunk]:
        """Every chunk the caller may read (None: every chunk, for internal jobs), in index order."""
        where = EVERY_CHUNK if access is None else access_expression(access)
        rows = sorted(self._query_all("chunks", where, _CHUNK_FIELDS), key=lambda r: int(r["rowid"]))
        return [_chunk(r) for r in rows]

    def _documents(self, where: str = "part == 0") -> list[StoredDocument]:
        fields = ["doc_id", "source", "origin", "title", "content_hash", "groups", "chunks", "meta"]
        rows = self._query_all("documents", where, fields, strong=True)  # listings show every commit
        return sorted(map(_document, rows), key=_by_source)

    @_engine_call
    def documents(self, access: Access) -> list[StoredDocument]:
        return [d for d in self._documents() if access.may_read(d.groups)]

    @_engine_call
    def document(self, doc_id: str, access: Access) -> StoredDocument | None:
        """One document by id, or None when it does not exist or the caller may not read it."""
        found = self._documents(f"doc_id == {_quote(doc_id)} and part == 0")
        return found[0] if found and access.may_read(found[0].groups) else None

    @_engine_call
    def document_text(self, doc_id: str) -> str | None:
        parts = self._query_all("documents", f"doc_id == {_quote(doc_id)}", ["part", "text"], strong=True)
        return "".join(p["text"] for p in sorted(parts, key=lambda p: int(p["part"]))) if parts else None

    @_engine_call
    def groups(self) -> set[str]:
        return {group for d in self._documents() for group in d.groups}

    @_engine_call
    def group_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for document in self._documents():
            for group in document.groups or [""]:
                counts[group] = counts.get(group, 0) + 1
        return counts

    @_engine_call
    def stats(self) -> dict[str, Any]:
        return {
            "documents": self._count("documents", "part == 0"),
            "chunks": self._count("chunks", EVERY_CHUNK),
            "generation": self.generation,
            "model": self.model,
            "dim": self.dim,
            "backend": "milvus",
            "collection": self.name,
        }

    def _count(self, kind: str, where: str) -> int:
        rows = self.client.query(
            self._collection(kind), filter=where, output_fields=["count(*)"], consistency_level="Strong"
        )
        return int(rows[0]["count(*)"])

    def _query_all(
        self, kind: str, where: str, fields: list[str], strong: bool = False
    ) -> list[dict[str, Any]]:
        """Every row matching `where`, page by page (a single query returns at most 16,384 rows)."""
        return list(self._iterate(kind, where, fields, strong=strong))

    def _iterate(
        self, kind: str, where: str, fields: list[str], *, strong: bool = False, batch: int = 5_000
    ) -> Iterator[dict[str, Any]]:
        primary = "rowid" if kind in ("chunks", "removed") else "key"
        level = self._level(strong)
        after: Any = None
        while True:
            page_where = where if after is None else f"({where}) and {primary} > {_literal(after)}"
            rows = self.client.query(
                self._collection(kind), filter=page_where, output_fields=[*fields, primary], limit=batch,
                consistency_level=level,
            )  # fmt: skip
            if not rows:
                return
            rows = sorted(rows, key=lambda r: r[primary])
            yield from rows
            if len(rows) < batch:
                return
            after = rows[-1][primary]

    # -- copies -------------------------------------------------------------------------------

    @_engine_call
    def copy_to(self, target: Path) -> None:
        """Every chunk and document copied into new collections named in `target`; this one unchanged."""
        self._copy(target, None)

    @_engine_call
    def reembed_copy(self, target: Path, embedder: SentenceTransformerEmbedder, cache: EmbeddingCache) -> int:
        """A copy at `target` with every chunk vector from `embedder`, its BM25 snapshot built; the
        chunk count. Chunks, documents and hashes are copied as they are, so syncs stay incremental."""
        return self._copy(target, (embedder, cache))

    def _copy(self, target: Path, reembed: tuple[SentenceTransformerEmbedder, EmbeddingCache] | None) -> int:
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        model, dim = (reembed[0].name, reembed[0].dim) if reembed else (self.model, self.dim)
        copy = MilvusStore(
            target, dim=dim, model=model, uri=self.uri, token=self._credentials,
            collection=f"{self.name}_{uuid.uuid4().hex[:8]}", rebuild_below=self.rebuild_below,
            vector_index=self.vector_index, ef_search=self.ef_search,
        )  # fmt: skip
        try:
            count = 0
            rows = self._iterate("chunks", EVERY_CHUNK, [*_CHUNK_FIELDS, "vector"], strong=True)
            for page in _batches(rows, BATCH):  # streamed: never every vector in memory at once
                for row in page:
                    del row["rowid"]
                    row["written"] = 1  # the copy's first generation
                if reembed is not None:
                    texts = [index_text(r["title"], json.loads(r["heading"]), r["text"]) for r in page]
                    vectors, _ = embed_with_cache(reembed[0], reembed[1], texts)
                    for row, vector in zip(page, vectors, strict=True):
                        row["vector"] = np.asarray(vector, dtype=np.float32).tolist()
                copy.client.insert(copy._collection("chunks"), page)
                count += len(page)
            fields = ["key", "doc_id", "part", "origin", "source", "title", "content_hash", "groups", "chunks",
                      "meta", "text", "vector"]  # fmt: skip
            for page in _batches(
                self._query_all("documents", EVERY_DOCUMENT_PART, fields, strong=True), BATCH
            ):
                copy.client.insert(copy._collection("documents"), page)
            copy._set_meta({"generation": "1"})
            copy.refresh()
        except BaseException:
            copy.drop()  # half a copy must not stay behind on the server
            raise
        copy.close()
        return count

    @_engine_call
    def drop(self) -> None:
        """Delete this index for good: its collections and its folder (scratch copies)."""
        for kind in ("chunks", "documents", "removed", "meta"):
            self.client.drop_collection(self._collection(kind))
        self.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing twice (drop, then the workspace) is fine
            self.client.close()


def drop_index_folder(directory: Path, uri: str, token: str = "") -> None:
    """Drop the collections an index folder names, then the folder: an index being replaced (a
    retriever switch to a name used before) must not leave its collections on the server."""
    from pymilvus import MilvusClient

    pointer = directory / POINTER
    if pointer.exists():
        name = str(json.loads(pointer.read_text())["collection"])
        client = MilvusClient(uri=uri, token=token)
        try:
            for kind in ("chunks", "documents", "removed", "meta"):
                client.drop_collection(f"{name}_{kind}")
        finally:
            client.close()
    shutil.rmtree(directory, ignore_errors=True)


def _collection_name(directory: Path, default: str) -> str:
    pointer = directory / POINTER
    if pointer.exists():
        return str(json.loads(pointer.read_text())["collection"])
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,200}", default):
        raise StoreError(f"index.collection {default!r}: use letters, digits and underscores")
    return default


def _literal(value: Any) -> str:
    return _quote(value) if isinstance(value, str) else str(int(value))


def _meta_clause(key: str, value: str) -> str:
    """meta[key] equals value, as text or as the number it spells (SQLite's CAST matches both)."""
    field = f"meta[{_quote(key)}]"
    clause = f"{field} == {_quote(value)}"
    try:
        number = float(value)
    except ValueError:
        return clause
    if abs(number) < 2**53:  # an integer Milvus can hold, and no inf or nan
        clause = f"({clause} or {field} == {int(number) if number.is_integer() else number})"
    return clause


def _check_update(update: DocumentUpdate, dim: int) -> None:
    doc = update.document
    check_vectors(update, dim)
    reason = _refusal(doc, update.chunks)
    if reason:
        raise StoreError(f"{doc.source[:200]}: {reason}")


def _refusal(doc: Document, chunks: Sequence[Chunk]) -> str | None:
    """The first field over the collections' limits, named, or None."""
    if len(doc.groups) > MAX_GROUPS:
        return f"{len(doc.groups)} access groups; the Milvus index holds {MAX_GROUPS}"
    if any(len(group.encode()) > GROUP_BYTES for group in doc.groups):
        return f"an access group name over {GROUP_BYTES} bytes (the Milvus index's limit)"
    for name, value in (("source", doc.source), ("title", doc.title)):
        if len(value.encode()) > KEY_BYTES:
            return f"its {name} is over {KEY_BYTES} bytes (the Milvus index's limit)"
    if any(len(chunk.text.encode()) > TEXT_BYTES for chunk in chunks):
        return f"a chunk of over {TEXT_BYTES} bytes (the Milvus index's limit); lower chunking.max_tokens"
    return None


def _document_rows(update: DocumentUpdate) -> list[dict[str, Any]]:
    doc = update.document
    pieces = [doc.text[i : i + TEXT_PART] for i in range(0, len(doc.text), TEXT_PART)] or [""]
    return [
        {
            "key": f"{doc.doc_id}#{part}", "doc_id": doc.doc_id, "part": part, "origin": doc.origin,
            "source": doc.source, "title": doc.title, "content_hash": doc.content_hash,
            "groups": list(doc.groups), "chunks": len(update.chunks), "meta": doc.meta, "text": piece,
            "vector": _PLACEHOLDER,
        }
        for part, piece in enumerate(pieces)
    ]  # fmt: skip


def _chunk(r: dict[str, Any]) -> Chunk:
    return Chunk(
        r["chunk_id"], r["doc_id"], r["source"], r["title"], r["text"], int(r["start"]), int(r["end"]),
        tuple(json.loads(r["heading"])), None if r["page"] < 0 else int(r["page"]),
        None if r["row"] < 0 else int(r["row"]), list(r["groups"]), dict(r["meta"] or {}),
    )  # fmt: skip


def _document(r: dict[str, Any]) -> StoredDocument:
    return StoredDocument(
        r["doc_id"], r["source"], r["origin"], r["title"], r["content_hash"], list(r["groups"]),
        int(r["chunks"]), dict(r["meta"] or {}),
    )  # fmt: skip


def _by_source(document: StoredDocument) -> str:
    return document.source


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch
