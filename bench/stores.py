"""Benchmark: which embedded index engine should ragtune use?

Builds a synthetic, seeded corpus of N chunks (default 100,000) and measures a
set of candidate engines behind one small interface (`Store`):

* corpus: ~40-word texts drawn Zipf-style from a 20,000-word vocabulary of
  syllable words whose head is real English function words ("the", "of", ...),
  384-d random unit float32 vectors, 1-3 of 20 ACL groups per chunk (about 10%
  of chunks have none and are public), 5 chunks per document;
* queries: 50 five-word texts drawn the same way plus a random unit vector; the
  caller holds 2 groups.  A chunk is visible when it has no groups or shares a
  group with the caller, and every engine applies that filter *before* top-k.

Per candidate it reports: build seconds (insert + indexes), open seconds
(reopen from disk in a fresh process, including the first dense and text
query, so lazy loading is not hidden), p50/p95 latency of dense, text and
hybrid (RRF, k=60, over 50 candidates per leg) queries under the ACL filter,
seconds to delete 100 documents until the deletion is visible to queries
(with the snapshot rebuild share where one is needed), disk MB, RSS growth of
the serving process (open + queries), recall@10 of dense search against exact
brute force, the number of returned hits that violate the ACL, and the number
of deleted chunks still returned after deletion.

Each candidate's build and serve phases run in their own child processes so
RSS and caches do not leak between engines.

Run (from the repository root):

    .venv/bin/python bench/stores.py                  # N=100,000, all engines
    .venv/bin/python bench/stores.py --n 5000 --only numpy-bm25s-sqlite
    .venv/bin/python bench/stores.py --json results.json   # also write JSON
    .venv/bin/python bench/stores.py --json -              # JSON to stdout

milvus-lite runs at --milvus-n (default 20,000) and is skipped when pymilvus
or milvus-lite is not importable.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import re
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

DIM = 384
VOCAB_SIZE = 20_000
N_GROUPS = 20
CHUNKS_PER_DOC = 5
PUBLIC_FRACTION = 0.10
CALLER_GROUPS = 2
TOP_K = 10
FUSION_CANDIDATES = 50
RRF_K = 60
DELETE_DOCS = 100
SEED = 20_240_601

# Common English function words that are in the stop lists of bm25s ("en"),
# Lance/tantivy ("English") and Milvus ("_english_"); they take the head of
# the Zipf distribution so that text queries hit realistic long posting lists.
HEAD_WORDS = (
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "with",
    "was", "on", "be", "by", "at", "this", "are", "or", "not", "an", "but",
    "they", "will", "there", "their", "these", "then", "if", "into", "such",
    "no",
)  # fmt: skip
ONSETS = (
    "", "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s",
    "t", "v", "w", "z", "br", "ch", "cl", "cr", "dr", "fl", "gr", "pl", "pr",
    "sh", "st", "th", "tr",
)  # fmt: skip
VOWELS = ("a", "e", "i", "o", "u", "ai", "ea", "io", "ou", "y")
CODAS = ("", "", "n", "r", "s", "t", "l", "m", "nd", "st", "ck", "ng", "x")

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float32]
BoolArray = NDArray[np.bool_]


# --------------------------------------------------------------------------
# Synthetic corpus
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Chunks:
    """Column-oriented corpus handed to `Store.build`."""

    ids: IntArray
    doc_ids: IntArray
    texts: list[str]
    vectors: FloatArray  # (n, DIM), unit rows
    groups: list[tuple[str, ...]]  # empty tuple = public
    bits: NDArray[np.uint32]  # same ACL as a bitmask, for the checker only

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class Query:
    text: str
    vector: FloatArray
    groups: tuple[str, ...]
    bits: int


def group_name(i: int) -> str:
    return f"g{i:02d}"


def make_vocabulary(rng: np.random.Generator) -> list[str]:
    """HEAD_WORDS followed by unique syllable words, shorter words first."""
    words = set(HEAD_WORDS)
    out = list(HEAD_WORDS)
    while len(out) < VOCAB_SIZE:
        n_syll = int(rng.choice([1, 2, 2, 3, 3, 4]))
        word = "".join(
            ONSETS[rng.integers(len(ONSETS))]
            + VOWELS[rng.integers(len(VOWELS))]
            + CODAS[rng.integers(len(CODAS))]
            for _ in range(n_syll)
        )
        if len(word) >= 3 and word not in words:
            words.add(word)
            out.append(word)
    tail = sorted(out[len(HEAD_WORDS) :], key=lambda w: (len(w), rng.random()))
    return out[: len(HEAD_WORDS)] + tail


def zipf_weights(n: int, s: float = 1.0) -> NDArray[np.float64]:
    w = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** s
    return w / w.sum()


def unit_vectors(rng: np.random.Generator, n: int) -> FloatArray:
    v = rng.standard_normal((n, DIM), dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


def sample_texts(
    rng: np.random.Generator, vocab: NDArray[np.str_], p: NDArray[np.float64], lengths: IntArray
) -> list[str]:
    flat = rng.choice(len(vocab), size=int(lengths.sum()), p=p)
    words = vocab[flat].tolist()
    out: list[str] = []
    start = 0
    for n in lengths.tolist():
        out.append(" ".join(words[start : start + n]))
        start += n
    return out


def make_corpus(n: int, n_queries: int, seed: int = SEED) -> tuple[Chunks, list[Query]]:
    rng = np.random.default_rng(seed)
    vocab = np.array(make_vocabulary(rng))
    p = zipf_weights(len(vocab))

    texts = sample_texts(rng, vocab, p, rng.integers(32, 49, size=n))
    vectors = unit_vectors(rng, n)

    n_member = rng.integers(1, 4, size=n)
    n_member[rng.random(n) < PUBLIC_FRACTION] = 0
    picks = np.argsort(rng.random((n, N_GROUPS)), axis=1)[:, :3]
    groups: list[tuple[str, ...]] = []
    bits = np.zeros(n, dtype=np.uint32)
    for i, (m, row) in enumerate(zip(n_member.tolist(), picks.tolist(), strict=True)):
        chosen = sorted(row[:m])
        groups.append(tuple(group_name(g) for g in chosen))
        bits[i] = sum(1 << g for g in chosen)

    ids = np.arange(n, dtype=np.int64)
    chunks = Chunks(ids, ids // CHUNKS_PER_DOC, texts, vectors, groups, bits)

    q_texts = sample_texts(rng, vocab, p, np.full(n_queries, 5, dtype=np.int64))
    q_vectors = unit_vectors(rng, n_queries)
    queries = []
    for text, vec in zip(q_texts, q_vectors, strict=True):
        g = sorted(rng.choice(N_GROUPS, size=CALLER_GROUPS, replace=False).tolist())
        queries.append(Query(text, vec, tuple(group_name(i) for i in g), sum(1 << i for i in g)))
    return chunks, queries


def visible(bits: NDArray[np.uint32], caller_bits: int) -> BoolArray:
    """The ACL rule, independent of any engine: public or sharing a group."""
    return (bits == 0) | ((bits & np.uint32(caller_bits)) != 0)


def exact_dense(chunks: Chunks, q: Query, k: int) -> list[int]:
    scores = chunks.vectors @ q.vector
    scores[~visible(chunks.bits, q.bits)] = -np.inf
    top = np.argsort(-scores, kind="stable")[:k]
    return chunks.ids[top].tolist()


# --------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------


def rrf(lists: Iterable[Sequence[int]], limit: int, k: int = RRF_K) -> list[int]:
    """Reciprocal rank fusion; ties broken by id for determinism."""
    score: dict[int, float] = {}
    for hits in lists:
        for rank, doc in enumerate(hits):
            score[doc] = score.get(doc, 0.0) + 1.0 / (k + rank + 1)
    return sorted(score, key=lambda d: (-score[d], d))[:limit]


def top_k(scores: NDArray[np.floating[Any]], k: int) -> NDArray[np.intp]:
    """Indices of the k best finite scores, best first."""
    k = min(k, len(scores))
    idx = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    idx = idx[np.argsort(-scores[idx], kind="stable")]
    return idx[np.isfinite(scores[idx])]


def dir_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def rss_bytes() -> int:
    """Current resident set size; psutil if present, else /proc, else peak RSS."""
    if importlib.util.find_spec("psutil") is not None:
        import psutil

        return int(psutil.Process().memory_info().rss)
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def sql_list(values: Iterable[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


# --------------------------------------------------------------------------
# Store interface
# --------------------------------------------------------------------------


class Store(ABC):
    """One candidate engine, persisted under `path`.

    Ids returned by the query methods are chunk ids, best first.
    """

    name: str = ""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stats: dict[str, float] = {}  # extra timings, e.g. rebuild_s

    @abstractmethod
    def build(self, chunks: Chunks) -> None: ...

    @abstractmethod
    def open(self) -> None: ...

    @abstractmethod
    def dense(self, vec: FloatArray, groups: Sequence[str], k: int) -> list[int]: ...

    @abstractmethod
    def text(self, query: str, groups: Sequence[str], k: int) -> list[int]: ...

    def hybrid(self, query: str, vec: FloatArray, groups: Sequence[str], k: int) -> list[int]:
        return rrf(
            [self.dense(vec, groups, FUSION_CANDIDATES), self.text(query, groups, FUSION_CANDIDATES)],
            limit=k,
        )

    @abstractmethod
    def delete_docs(self, doc_ids: Sequence[int]) -> None: ...

    def disk_bytes(self) -> int:
        return dir_bytes(self.path)

    def close(self) -> None:
        return None

    def variants(self) -> list[tuple[str, Callable[[], None]]]:
        """Query-time variants measured on the same built index (label, switch)."""
        return []


# --------------------------------------------------------------------------
# LanceDB
# --------------------------------------------------------------------------


class LanceStore(Store):
    """LanceDB: native FTS index + flat vector search, ACL as a SQL prefilter.

    The ACL is `array_has_any(groups, [...]) OR array_length(groups) = 0` on a
    `list<string>` column carrying a LABEL_LIST scalar index.
    """

    name = "lancedb (flat)"
    table_name = "chunks"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.table: Any = None

    def build(self, chunks: Chunks) -> None:
        import lancedb
        import pyarrow as pa
        from lancedb.index import FTS, LabelList

        vectors = pa.FixedSizeListArray.from_arrays(pa.array(chunks.vectors.ravel()), DIM)
        data = pa.table(
            {
                "id": pa.array(chunks.ids),
                "doc_id": pa.array(chunks.doc_ids),
                "text": pa.array(chunks.texts),
                "groups": pa.array([list(g) for g in chunks.groups], pa.list_(pa.string())),
                "vector": vectors,
            }
        )
        self.table = lancedb.connect(self.path).create_table(self.table_name, data)
        self.table.create_index("text", config=FTS())
        self.table.create_index("groups", config=LabelList())
        self.build_vector_index()

    def build_vector_index(self) -> None:
        return None

    def open(self) -> None:
        import lancedb

        self.table = lancedb.connect(self.path).open_table(self.table_name)

    @staticmethod
    def acl(groups: Sequence[str]) -> str:
        return f"array_has_any(groups, [{sql_list(groups)}]) OR array_length(groups) = 0"

    def tune(self, query: Any) -> Any:
        """Hook for index-specific query knobs."""
        return query

    def vector_query(self, vec: FloatArray) -> Any:
        return self.tune(self.table.search(vec, vector_column_name="vector").distance_type("dot"))

    @staticmethod
    def ids(query: Any, k: int) -> list[int]:
        return query.select(["id"]).limit(k).to_arrow()["id"].to_pylist()

    def dense(self, vec: FloatArray, groups: Sequence[str], k: int) -> list[int]:
        return self.ids(self.vector_query(vec).where(self.acl(groups), prefilter=True), k)

    def text(self, query: str, groups: Sequence[str], k: int) -> list[int]:
        q = self.table.search(query, query_type="fts").where(self.acl(groups), prefilter=True)
        return self.ids(q, k)

    def hybrid(self, query: str, vec: FloatArray, groups: Sequence[str], k: int) -> list[int]:
        from lancedb.rerankers import RRFReranker

        # Native hybrid asks each leg for `limit` rows, so ask for 50 and cut.
        q = (
            self.table.search(query_type="hybrid", vector_column_name="vector")
            .vector(vec)
            .text(query)
            .distance_type("dot")
            .where(self.acl(groups), prefilter=True)
            .rerank(RRFReranker(K=RRF_K))
        )
        return self.ids(self.tune(q), FUSION_CANDIDATES)[:k]

    def delete_docs(self, doc_ids: Sequence[int]) -> None:
        self.table.delete(f"doc_id IN ({', '.join(map(str, doc_ids))})")


class LanceHnswStore(LanceStore):
    """LanceDB with an HNSW-SQ vector index (one IVF partition).

    The default `ef` gave recall@10 ~0.3 under the ACL prefilter at 20k random
    vectors, so queries raise it to 300 (~0.96 at 20k).
    """

    name = "lancedb (hnsw-sq, ef=300)"
    ef = 300

    def tune(self, query: Any) -> Any:
        return query.ef(self.ef)

    def build_vector_index(self) -> None:
        from lancedb.index import HnswSq

        self.table.create_index("vector", config=HnswSq(distance_type="dot", num_partitions=1))


# --------------------------------------------------------------------------
# SQLite as the source of truth + in-memory numpy snapshot
# --------------------------------------------------------------------------


class SqliteChunks:
    """chunks / chunk_groups tables; vectors stored as float32 blobs."""

    def __init__(self, db_path: Path) -> None:
        self.conn = sqlite3.connect(db_path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")

    def create(self) -> None:
        self.conn.executescript(
            """
            CREATE TABLE chunks (
                id INTEGER PRIMARY KEY, doc_id INTEGER NOT NULL,
                text TEXT NOT NULL, vector BLOB NOT NULL);
            CREATE INDEX chunks_doc ON chunks(doc_id);
            CREATE TABLE chunk_groups (
                grp TEXT NOT NULL, chunk_id INTEGER NOT NULL,
                PRIMARY KEY (grp, chunk_id)) WITHOUT ROWID;
            CREATE INDEX chunk_groups_chunk ON chunk_groups(chunk_id);
            """
        )

    def insert(self, chunks: Chunks) -> None:
        with self.transaction():
            self.conn.executemany(
                "INSERT INTO chunks(id, doc_id, text, vector) VALUES (?, ?, ?, ?)",
                zip(
                    chunks.ids.tolist(),
                    chunks.doc_ids.tolist(),
                    chunks.texts,
                    (v.tobytes() for v in chunks.vectors),
                    strict=True,
                ),
            )
            self.conn.executemany(
                "INSERT INTO chunk_groups(grp, chunk_id) VALUES (?, ?)",
                ((g, i) for i, gs in zip(chunks.ids.tolist(), chunks.groups, strict=True) for g in gs),
            )
        self.checkpoint()

    def checkpoint(self) -> None:
        """Fold the WAL back into the database file (bulk loads leave it large)."""
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def delete_docs(self, doc_ids: Sequence[int]) -> list[int]:
        marks = ", ".join("?" * len(doc_ids))
        with self.transaction():
            rows = self.conn.execute(f"SELECT id FROM chunks WHERE doc_id IN ({marks})", list(doc_ids))
            ids = [r[0] for r in rows]
            id_marks = ", ".join("?" * len(ids))
            self.conn.execute(f"DELETE FROM chunk_groups WHERE chunk_id IN ({id_marks})", ids)
            self.conn.execute(f"DELETE FROM chunks WHERE id IN ({id_marks})", ids)
        return ids

    def transaction(self) -> _Transaction:
        return _Transaction(self.conn)

    def load(self, with_text: bool) -> tuple[IntArray, FloatArray, list[str], dict[str, IntArray]]:
        cols = "id, vector, text" if with_text else "id, vector, ''"
        rows = self.conn.execute(f"SELECT {cols} FROM chunks ORDER BY id").fetchall()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(-1, DIM)
        texts = [r[2] for r in rows] if with_text else []
        members: dict[str, list[int]] = {}
        for grp, chunk_id in self.conn.execute("SELECT grp, chunk_id FROM chunk_groups"):
            members.setdefault(grp, []).append(chunk_id)
        postings = {g: np.searchsorted(ids, np.array(m, dtype=np.int64)) for g, m in members.items()}
        return ids, vectors.copy(), texts, postings


class _Transaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")


class DenseSnapshot:
    """Flat numpy matrix; the ACL is a boolean row mask applied before top-k."""

    def __init__(self, ids: IntArray, vectors: FloatArray, postings: dict[str, IntArray]) -> None:
        self.ids = ids
        self.vectors = vectors
        self.postings = postings  # group -> row indices
        self.alive = np.ones(len(ids), dtype=bool)
        self.public = self.alive.copy()
        for rows in postings.values():
            self.public[rows] = False

    def mask(self, groups: Sequence[str]) -> BoolArray:
        m = self.public.copy()
        for g in groups:
            rows = self.postings.get(g)
            if rows is not None:
                m[rows] = True
        m &= self.alive
        return m

    def search(self, vec: FloatArray, mask: BoolArray, k: int) -> list[int]:
        scores = self.vectors @ vec
        scores[~mask] = -np.inf
        return self.ids[top_k(scores, k)].tolist()

    def remove(self, ids: Sequence[int]) -> None:
        rows = np.searchsorted(self.ids, np.asarray(ids, dtype=np.int64))
        self.alive[rows[rows < len(self.ids)]] = False

    def save(self, path: Path) -> None:
        np.save(path / "ids.npy", self.ids)
        np.save(path / "vectors.npy", self.vectors)
        names = sorted(self.postings)
        sizes = [len(self.postings[g]) for g in names]
        np.savez(
            path / "postings.npz",
            names=np.array(names),
            offsets=np.cumsum([0, *sizes]),
            rows=np.concatenate([self.postings[g] for g in names]) if names else np.array([], np.int64),
        )

    @classmethod
    def load(cls, path: Path) -> DenseSnapshot:
        with np.load(path / "postings.npz") as z:
            names, offsets, rows = z["names"].tolist(), z["offsets"], z["rows"]
        postings = {g: rows[offsets[i] : offsets[i + 1]] for i, g in enumerate(names)}
        return cls(np.load(path / "ids.npy"), np.load(path / "vectors.npy"), postings)


class NumpyBm25sStore(Store):
    """SQLite source of truth; numpy dense + bm25s snapshot persisted beside it.

    Deletion commits to SQLite, then rebuilds and saves the snapshot; the
    rebuild share is reported as `rebuild_s`.
    """

    name = "numpy+bm25s+sqlite"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.db: SqliteChunks | None = None
        self.dense_index: DenseSnapshot | None = None
        self.bm25: Any = None
        self.stemmer: Any = None

    def build(self, chunks: Chunks) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self.db = SqliteChunks(self.path / "chunks.sqlite")
        self.db.create()
        self.db.insert(chunks)
        self.rebuild()

    def rebuild(self) -> None:
        import bm25s

        assert self.db is not None
        ids, vectors, texts, postings = self.db.load(with_text=True)
        self.dense_index = DenseSnapshot(ids, vectors, postings)
        tokens = bm25s.tokenize(texts, stopwords="en", stemmer=self._stemmer(), show_progress=False)
        self.bm25 = bm25s.BM25()
        self.bm25.index(tokens, show_progress=False)
        snap = self.path / "snapshot"
        shutil.rmtree(snap, ignore_errors=True)
        snap.mkdir()
        self.dense_index.save(snap)
        self.bm25.save(snap / "bm25s")

    def _stemmer(self) -> Any:
        import Stemmer

        if self.stemmer is None:
            self.stemmer = Stemmer.Stemmer("english")
        return self.stemmer

    def open(self) -> None:
        import bm25s

        self.db = SqliteChunks(self.path / "chunks.sqlite")
        self.dense_index = DenseSnapshot.load(self.path / "snapshot")
        self.bm25 = bm25s.BM25.load(self.path / "snapshot" / "bm25s")

    def dense(self, vec: FloatArray, groups: Sequence[str], k: int) -> list[int]:
        assert self.dense_index is not None
        return self.dense_index.search(vec, self.dense_index.mask(groups), k)

    def text(self, query: str, groups: Sequence[str], k: int) -> list[int]:
        import bm25s

        assert self.dense_index is not None
        tokens = bm25s.tokenize(
            query, stopwords="en", stemmer=self._stemmer(), return_ids=False, show_progress=False
        )[0]
        known = [t for t in tokens if t in self.bm25.vocab_dict]
        if not known:
            return []
        weight = self.dense_index.mask(groups).astype(np.float32)
        scores = self.bm25.get_scores(known, weight_mask=weight)
        scores[scores <= 0] = -np.inf  # masked-out or non-matching rows
        return self.dense_index.ids[top_k(scores, k)].tolist()

    def delete_docs(self, doc_ids: Sequence[int]) -> None:
        assert self.db is not None
        self.db.delete_docs(doc_ids)
        t = time.perf_counter()
        self.rebuild()
        self.stats["rebuild_s"] = time.perf_counter() - t


class Fts5Store(Store):
    """SQLite FTS5 bm25() with the ACL as an IN-subquery; same numpy dense.

    The FTS5 table uses external content (the `chunks` table) kept in sync by
    triggers, porter stemming, and OR semantics between query terms.  Dense
    vectors are loaded from SQLite blobs on open; deletes commit to SQLite and
    clear the rows' bits in the in-memory mask (no rebuild needed).
    """

    name = "sqlite-fts5"

    ACL_SQL = (
        "(fts.rowid IN (SELECT chunk_id FROM chunk_groups WHERE grp IN ({marks}))"
        " OR NOT EXISTS (SELECT 1 FROM chunk_groups g WHERE g.chunk_id = fts.rowid))"
    )

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.db: SqliteChunks | None = None
        self.dense_index: DenseSnapshot | None = None
        self.strip_stopwords = False

    def build(self, chunks: Chunks) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self.db = SqliteChunks(self.path / "chunks.sqlite")
        self.db.create()
        self.db.conn.executescript(
            """
            CREATE VIRTUAL TABLE fts USING fts5(
                text, content='chunks', content_rowid='id', tokenize='porter unicode61');
            CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN
                INSERT INTO fts(rowid, text) VALUES (new.id, new.text);
            END;
            CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN
                INSERT INTO fts(fts, rowid, text) VALUES ('delete', old.id, old.text);
            END;
            """
        )
        self.db.insert(chunks)
        self.db.conn.execute("INSERT INTO fts(fts) VALUES ('optimize')")
        self.db.checkpoint()
        self._load_dense()

    def _load_dense(self) -> None:
        assert self.db is not None
        ids, vectors, _, postings = self.db.load(with_text=False)
        self.dense_index = DenseSnapshot(ids, vectors, postings)

    def open(self) -> None:
        self.db = SqliteChunks(self.path / "chunks.sqlite")
        self._load_dense()

    def dense(self, vec: FloatArray, groups: Sequence[str], k: int) -> list[int]:
        assert self.dense_index is not None
        return self.dense_index.search(vec, self.dense_index.mask(groups), k)

    def text(self, query: str, groups: Sequence[str], k: int) -> list[int]:
        import bm25s.stopwords

        assert self.db is not None
        terms = dict.fromkeys(re.findall(r"\w+", query.lower()))
        if self.strip_stopwords:
            stop = set(bm25s.stopwords.STOPWORDS_EN)
            terms = dict.fromkeys(t for t in terms if t not in stop)
        if not terms:
            return []
        match = " OR ".join(f'"{t}"' for t in terms)
        sql = (
            "SELECT fts.rowid FROM fts WHERE fts MATCH ? AND "
            + self.ACL_SQL.format(marks=", ".join("?" * len(groups)))
            + " ORDER BY bm25(fts) LIMIT ?"
        )
        return [r[0] for r in self.db.conn.execute(sql, [match, *groups, k])]

    def delete_docs(self, doc_ids: Sequence[int]) -> None:
        assert self.db is not None and self.dense_index is not None
        self.dense_index.remove(self.db.delete_docs(doc_ids))

    def variants(self) -> list[tuple[str, Callable[[], None]]]:
        def strip() -> None:
            self.strip_stopwords = True

        return [("sqlite-fts5 (query stopwords dropped)", strip)]


# --------------------------------------------------------------------------
# milvus-lite
# --------------------------------------------------------------------------


class MilvusLiteStore(Store):
    """milvus-lite via pymilvus MilvusClient on a local .db path.

    FLAT/IP dense index, built-in BM25 function into a sparse field, ACL as
    `ARRAY_CONTAINS_ANY(groups, [...]) or ARRAY_LENGTH(groups) == 0`, native
    `hybrid_search` with RRFRanker(60).
    """

    name = "milvus-lite"
    collection = "chunks"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.client: Any = None

    @property
    def uri(self) -> str:
        return str(self.path / "milvus.db")

    def build(self, chunks: Chunks) -> None:
        from pymilvus import DataType, Function, FunctionType, MilvusClient

        self.path.mkdir(parents=True, exist_ok=True)
        self.client = MilvusClient(self.uri)
        schema = self.client.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("doc_id", DataType.INT64)
        schema.add_field(
            "text",
            DataType.VARCHAR,
            max_length=4096,
            enable_analyzer=True,
            analyzer_params={
                "tokenizer": "standard",
                "filter": ["lowercase", {"type": "stop", "stop_words": ["_english_"]},
                           {"type": "stemmer", "language": "english"}],
            },
        )  # fmt: skip
        schema.add_field(
            "groups", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=8, max_length=16
        )
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(
            Function(
                name="bm25",
                function_type=FunctionType.BM25,
                input_field_names=["text"],
                output_field_names=["sparse"],
            )
        )
        index = self.client.prepare_index_params()
        index.add_index("vector", index_type="FLAT", metric_type="IP")
        index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        self.client.create_collection(self.collection, schema=schema, index_params=index)
        batch = 2_000
        for s in range(0, len(chunks), batch):
            rows = [
                {"id": i, "doc_id": d, "text": t, "groups": list(g), "vector": v}
                for i, d, t, g, v in zip(
                    chunks.ids[s : s + batch].tolist(),
                    chunks.doc_ids[s : s + batch].tolist(),
                    chunks.texts[s : s + batch],
                    chunks.groups[s : s + batch],
                    chunks.vectors[s : s + batch].tolist(),
                    strict=True,
                )
            ]
            self.client.insert(self.collection, rows)
        self.client.flush(self.collection)

    def open(self) -> None:
        from pymilvus import MilvusClient

        self.client = MilvusClient(self.uri)
        self.client.load_collection(self.collection)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()

    @staticmethod
    def acl(groups: Sequence[str]) -> str:
        quoted = ", ".join(json.dumps(g) for g in groups)
        return f"ARRAY_CONTAINS_ANY(groups, [{quoted}]) or ARRAY_LENGTH(groups) == 0"

    def _search(self, data: Any, field_name: str, metric: str, groups: Sequence[str], k: int) -> list[int]:
        res = self.client.search(
            self.collection,
            data=[data],
            anns_field=field_name,
            filter=self.acl(groups),
            limit=k,
            search_params={"metric_type": metric},
        )
        return [int(hit["id"]) for hit in res[0]]

    def dense(self, vec: FloatArray, groups: Sequence[str], k: int) -> list[int]:
        return self._search(vec.tolist(), "vector", "IP", groups, k)

    def text(self, query: str, groups: Sequence[str], k: int) -> list[int]:
        return self._search(query, "sparse", "BM25", groups, k)

    def hybrid(self, query: str, vec: FloatArray, groups: Sequence[str], k: int) -> list[int]:
        from pymilvus import AnnSearchRequest, RRFRanker

        expr = self.acl(groups)
        legs = [
            AnnSearchRequest([vec.tolist()], "vector", {"metric_type": "IP"}, FUSION_CANDIDATES, expr),
            AnnSearchRequest([query], "sparse", {"metric_type": "BM25"}, FUSION_CANDIDATES, expr),
        ]
        res = self.client.hybrid_search(self.collection, legs, ranker=RRFRanker(RRF_K), limit=k)
        return [int(hit["id"]) for hit in res[0]]

    def delete_docs(self, doc_ids: Sequence[int]) -> None:
        self.client.delete(self.collection, filter=f"doc_id in [{', '.join(map(str, doc_ids))}]")


# --------------------------------------------------------------------------
# Measurement (runs inside a child process per phase)
# --------------------------------------------------------------------------

STORES: dict[str, type[Store]] = {
    "lancedb": LanceStore,
    "lancedb-hnsw": LanceHnswStore,
    "numpy-bm25s-sqlite": NumpyBm25sStore,
    "sqlite-fts5": Fts5Store,
    "milvus-lite": MilvusLiteStore,
}


@dataclass
class Row:
    candidate: str
    n: int
    build_s: float | None = None
    open_s: float | None = None
    dense_ms: tuple[float, float] | None = None
    text_ms: tuple[float, float] | None = None
    hybrid_ms: tuple[float, float] | None = None
    delete_s: float | None = None
    rebuild_s: float | None = None
    disk_mb: float | None = None
    rss_mb: float | None = None
    recall10: float | None = None
    acl_violations: int | None = None
    short_results: int | None = None  # queries with fewer than k hits
    deleted_leaks: int | None = None
    note: str = ""
    extra: dict[str, float] = field(default_factory=dict)


def percentiles(samples: list[float]) -> tuple[float, float]:
    a = np.asarray(samples) * 1000.0
    return float(np.percentile(a, 50)), float(np.percentile(a, 95))


def measure_queries(store: Store, chunks: Chunks, queries: list[Query], row: Row) -> None:
    kinds: dict[str, Callable[[Query], list[int]]] = {
        "dense": lambda q: store.dense(q.vector, q.groups, TOP_K),
        "text": lambda q: store.text(q.text, q.groups, TOP_K),
        "hybrid": lambda q: store.hybrid(q.text, q.vector, q.groups, TOP_K),
    }
    violations = 0
    recalls: list[float] = []
    for kind, run in kinds.items():
        for q in queries[:3]:  # warm-up, untimed
            run(q)
        times: list[float] = []
        short = 0
        for q in queries:
            t = time.perf_counter()
            hits = run(q)
            times.append(time.perf_counter() - t)
            hit_ids = np.asarray(hits, dtype=np.int64)
            violations += int((~visible(chunks.bits[hit_ids], q.bits)).sum())
            short += len(hits) < TOP_K
            if kind == "dense":
                truth = exact_dense(chunks, q, TOP_K)
                recalls.append(len(set(truth) & set(hits)) / TOP_K)
        setattr(row, f"{kind}_ms", percentiles(times))
        row.extra[f"short_{kind}"] = short
    row.recall10 = float(np.mean(recalls))
    row.acl_violations = violations
    row.short_results = int(sum(row.extra[f"short_{kind}"] for kind in kinds))


def delete_check(store: Store, chunks: Chunks, deleted: IntArray) -> tuple[int, int]:
    """(found before, leaked after) for self-queries of deleted chunks.

    Each probe asks for a deleted chunk with its own vector and first words,
    as a caller who may see it; before deletion the dense probe must find it.
    """
    probes = []
    for cid in deleted[:: max(1, len(deleted) // 20)].tolist():
        groups = chunks.groups[cid] or (group_name(0),)
        probes.append((cid, chunks.vectors[cid], " ".join(chunks.texts[cid].split()[:12]), groups))

    def hits(p: tuple[int, FloatArray, str, tuple[str, ...]]) -> set[int]:
        _, vec, text, groups = p
        return (
            set(store.dense(vec, groups, TOP_K))
            | set(store.text(text, groups, TOP_K))
            | set(store.hybrid(text, vec, groups, TOP_K))
        )

    return sum(p[0] in hits(p) for p in probes), len(probes)


def run_build(name: str, path: Path, n: int, n_queries: int) -> dict[str, Any]:
    chunks, _ = make_corpus(n, n_queries)
    gc.collect()
    rss0 = rss_bytes()
    store = STORES[name](path)
    t = time.perf_counter()
    store.build(chunks)
    build_s = time.perf_counter() - t
    out = {
        "build_s": build_s,
        "disk_mb": store.disk_bytes() / 2**20,
        "rss_build_mb": (rss_bytes() - rss0) / 2**20,
    }
    store.close()
    return out


def run_serve(name: str, path: Path, n: int, n_queries: int) -> dict[str, Any]:
    chunks, queries = make_corpus(n, n_queries)
    cls = STORES[name]
    row = Row(candidate=cls.name, n=n)
    gc.collect()
    rss0 = rss_bytes()

    t = time.perf_counter()
    store = cls(path)
    store.open()
    store.dense(queries[0].vector, queries[0].groups, TOP_K)
    store.text(queries[0].text, queries[0].groups, TOP_K)
    row.open_s = time.perf_counter() - t

    measure_queries(store, chunks, queries, row)
    row.rss_mb = (rss_bytes() - rss0) / 2**20

    variant_rows = []
    for label, switch in store.variants():
        switch()
        vrow = Row(candidate=label, n=n, note="same index, query-time variant")
        measure_queries(store, chunks, queries, vrow)
        variant_rows.append(asdict(vrow))

    rng = np.random.default_rng(SEED + 1)
    n_docs = int(chunks.doc_ids[-1]) + 1
    doc_ids = sorted(rng.choice(n_docs, size=min(DELETE_DOCS, n_docs), replace=False).tolist())
    deleted = chunks.ids[np.isin(chunks.doc_ids, doc_ids)]
    found_before, n_probes = delete_check(store, chunks, deleted)
    t = time.perf_counter()
    store.delete_docs(doc_ids)
    row.delete_s = time.perf_counter() - t
    row.rebuild_s = store.stats.get("rebuild_s")
    row.deleted_leaks, _ = delete_check(store, chunks, deleted)
    if found_before < n_probes:
        row.note = f"only {found_before}/{n_probes} delete probes found before deletion"
    store.close()
    return {"row": asdict(row), "variants": variant_rows}


# --------------------------------------------------------------------------
# Orchestration and output
# --------------------------------------------------------------------------


def run_phase(name: str, phase: str, path: Path, n: int, n_queries: int, tmp: Path) -> dict[str, Any]:
    out = tmp / f"{name}.{phase}.json"
    cmd = [
        sys.executable, __file__, "--worker", name, "--phase", phase,
        "--dir", str(path), "--n", str(n), "--queries", str(n_queries), "--out", str(out),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{name}/{phase} failed:\n{proc.stderr[-3000:]}")
    return json.loads(out.read_text())


def benchmark(name: str, n: int, n_queries: int, tmp: Path) -> list[dict[str, Any]]:
    path = tmp / name
    built = run_phase(name, "build", path, n, n_queries, tmp)
    served = run_phase(name, "serve", path, n, n_queries, tmp)
    row = served["row"]
    row["build_s"] = built["build_s"]
    row["disk_mb"] = built["disk_mb"]
    row["extra"]["rss_build_mb"] = built["rss_build_mb"]
    shutil.rmtree(path, ignore_errors=True)
    return [row, *served["variants"]]


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, (tuple, list)):
        return "/".join(f"{v:.1f}" for v in value)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


COLUMNS = (
    ("candidate", "candidate"),
    ("n", "N"),
    ("build_s", "build s"),
    ("open_s", "open s"),
    ("dense_ms", "dense p50/p95 ms"),
    ("text_ms", "text p50/p95 ms"),
    ("hybrid_ms", "hybrid p50/p95 ms"),
    ("delete_s", "del100 s"),
    ("rebuild_s", "(rebuild s)"),
    ("disk_mb", "disk MB"),
    ("rss_mb", "RSS MB"),
    ("recall10", "recall@10"),
    ("acl_violations", "ACL viol."),
    ("short_results", "short"),
    ("deleted_leaks", "del leaks"),
)


def print_table(rows: list[dict[str, Any]]) -> None:
    cells = [[fmt(r.get(key)) for key, _ in COLUMNS] for r in rows]
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        header = [title for _, title in COLUMNS]
        widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
        print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
        for c in cells:
            print("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)))
    else:
        table = Table(title="Embedded index engines (ACL prefilter, k=10)")
        for i, (_, title) in enumerate(COLUMNS):
            table.add_column(title, justify="left" if i == 0 else "right")
        for c in cells:
            table.add_row(*c)
        Console(width=240).print(table)
    for r in rows:
        if r.get("note"):
            print(f"note: {r['candidate']}: {r['note']}")


def available(name: str) -> str | None:
    """Reason a candidate cannot run here, or None."""
    if name == "milvus-lite":
        for mod in ("pymilvus", "milvus_lite"):
            if importlib.util.find_spec(mod) is None:
                return f"{mod} not installed (pip install milvus-lite pymilvus)"
    return None


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="chunks in the corpus")
    ap.add_argument("--milvus-n", type=int, default=20_000, help="chunks for milvus-lite")
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--only", nargs="+", choices=sorted(STORES), help="candidates to run")
    ap.add_argument("--json", metavar="PATH", help="write results as JSON ('-' = stdout)")
    ap.add_argument("--worker", choices=sorted(STORES), help=argparse.SUPPRESS)
    ap.add_argument("--phase", choices=("build", "serve"), help=argparse.SUPPRESS)
    ap.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        phase = run_build if args.phase == "build" else run_serve
        args.out.write_text(json.dumps(phase(args.worker, args.dir, args.n, args.queries)))
        return

    quiet = args.json == "-"
    names = args.only or list(STORES)
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ragtune-stores-") as tmp:
        for name in names:
            n = args.milvus_n if name == "milvus-lite" else args.n
            reason = available(name)
            if reason:
                rows.append(asdict(Row(candidate=STORES[name].name, n=n, note=f"skipped: {reason}")))
                continue
            if not quiet:
                print(f"[{time.perf_counter() - t0:7.1f}s] {name} at N={n:,} ...", file=sys.stderr)
            try:
                rows.extend(benchmark(name, n, args.queries, Path(tmp)))
            except RuntimeError as err:
                rows.append(asdict(Row(candidate=STORES[name].name, n=n, note=str(err)[-500:])))
    wall = time.perf_counter() - t0

    if args.json:
        payload = json.dumps({"wall_s": wall, "rows": rows}, indent=2)
        if quiet:
            print(payload)
        else:
            Path(args.json).write_text(payload)
    if not quiet:
        print_table(rows)
        print(f"wall time: {wall:.1f} s")


if __name__ == "__main__":
    main()
