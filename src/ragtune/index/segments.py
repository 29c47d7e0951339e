"""Search structures of the embedded index: a base built once, plus what changed since it.

Why this shape (docs/decisions.md §14): at a million chunks, building BM25 and an ANN graph takes
minutes, and a saved edit must be searchable in under a second. Like a Lucene segment, the base is
built from one committed generation, saved, and never changed; rows written after it form a small
delta that is searched exactly and scored with the base's BM25 statistics, so both sides rank on
one scale; rows deleted since are masked (tombstones). When the delta outgrows a share of the base,
the store builds a new base. Everything here is plain arrays: SQLite stays in local_store.py.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from ragtune.access import Access

TOKEN_PATTERN = r"(?u)\b\w+\b"
# Below this many readable rows, scoring exactly beats walking the ANN graph around unreadable ones.
EXACT_BELOW = 20_000
ANN_NEIGHBOURS = 16  # HNSW M: 0.98 recall@10 at ef 128 on 100k sentence-mix vectors (bench/search.py)
ANN_EF_CONSTRUCTION = 40

Hits = list[tuple[str, float]]


def stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


def bm25_tokens(texts: Sequence[str], stem: Any) -> Any:
    import bm25s

    return bm25s.tokenize(
        list(texts), stopwords="en", stemmer=stem, token_pattern=TOKEN_PATTERN, show_progress=False
    )


def query_tokens(query: str, stem: Any) -> list[str]:
    """The distinct BM25 terms of a query, tokenized exactly as the chunks were."""
    return [t for t in bm25_tokens([query], stem).vocab if t]


@dataclass(frozen=True)
class Rows:
    """Chunk rows read from the index in id order: what a base is built from or a delta extended with."""

    rowids: np.ndarray
    chunk_ids: list[str]
    vectors: np.ndarray
    groups: list[list[str]]
    texts: list[str]

    def __len__(self) -> int:
        return len(self.chunk_ids)


@dataclass(frozen=True)
class GroupMasks:
    """Which rows are public and which belong to each access group, as boolean masks."""

    public: np.ndarray
    members: dict[str, np.ndarray]

    @classmethod
    def of(cls, groups: Sequence[Sequence[str]]) -> GroupMasks:
        n = len(groups)
        members: dict[str, np.ndarray] = {}
        for position, names in enumerate(groups):
            for name in names:
                members.setdefault(name, np.zeros(n, dtype=bool))[position] = True
        return cls(np.array([not g for g in groups], dtype=bool), members)

    def allowed(self, access: Access) -> np.ndarray:
        allowed = self.public.copy()
        for group in access.groups:
            member = self.members.get(group)
            if member is not None:
                allowed |= member
        return allowed

    def extended(self, other: GroupMasks) -> GroupMasks:
        n, m = len(self.public), len(other.public)
        members = {
            name: np.concatenate(
                [self.members.get(name, np.zeros(n, dtype=bool)), other.members.get(name, np.zeros(m, bool))]
            )
            for name in self.members.keys() | other.members.keys()
        }
        return GroupMasks(np.concatenate([self.public, other.public]), members)


def best(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k highest finite scores, best first (ties keep index order)."""
    k = min(k, int(np.isfinite(scores).sum()))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    top = np.argpartition(-scores, k - 1)[:k]
    return top[np.argsort(-scores[top], kind="stable")]


def exact_dense(
    vectors: np.ndarray, vector: np.ndarray, k: int, allowed: np.ndarray
) -> list[tuple[int, float]]:
    """Exact inner-product top-k over the allowed rows (gathering them when they are few)."""
    readable = np.flatnonzero(allowed)
    if len(readable) == 0 or k <= 0:
        return []
    if len(readable) < len(allowed) // 4:
        scores = np.asarray(vectors[readable]) @ vector
        return [(int(readable[i]), float(scores[i])) for i in best(scores, k)]
    scores = np.asarray(vectors @ vector, dtype=np.float32)
    scores[~allowed] = -np.inf
    return [(int(i), float(scores[i])) for i in best(scores, k)]


def bm25_idf(df: np.ndarray, n_docs: int) -> np.ndarray:
    """bm25s' default ("lucene") idf, so that delta rows score on the base's scale."""
    return np.log1p((n_docs - df + 0.5) / (df + 0.5))


@dataclass(frozen=True)
class Base:
    """Search structures of every row of one committed generation; saved once, never changed."""

    generation: int
    last_rowid: int
    rowids: np.ndarray
    chunk_ids: list[str]
    masks: GroupMasks
    vectors: np.ndarray  # float32; memory-mapped when an ANN graph does the searching
    bm25: Any  # bm25s.BM25, or None when there are no rows
    avgdl: float
    ann: Any = None  # a faiss HNSW index over the same rows, above the store's size threshold

    def __len__(self) -> int:
        return len(self.chunk_ids)

    def dense(self, vector: np.ndarray, k: int, allowed: np.ndarray, ef_search: int) -> Hits:
        readable = int(allowed.sum())
        if readable == 0:
            return []
        if self.ann is None or readable < EXACT_BELOW:
            found = exact_dense(self.vectors, vector, k, allowed)
        else:
            found = self._ann_dense(vector, k, allowed, readable, ef_search)
        return [(self.chunk_ids[i], s) for i, s in found]

    def _ann_dense(
        self, vector: np.ndarray, k: int, allowed: np.ndarray, readable: int, ef_search: int
    ) -> list[tuple[int, float]]:
        """HNSW search that only ever returns readable rows (the ACL is a bitmap inside the search),
        then the candidates rescored exactly from the float vectors (the graph holds 8-bit codes)."""
        import faiss

        bits = np.packbits(allowed, bitorder="little")
        selector = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bits))
        # Fewer readable rows means more unreadable ones to walk past: widen the search to match.
        ef = min(2048, max(2 * k, int(ef_search * len(allowed) / readable)))
        params = faiss.SearchParametersHNSW(sel=selector, efSearch=ef)  # type: ignore[attr-defined]
        _, found = self.ann.search(vector[None, :].astype(np.float32), 2 * k, params=params)
        candidates = np.sort(found[0][found[0] >= 0])
        scores = self._rows(candidates) @ vector
        return [(int(candidates[i]), float(scores[i])) for i in best(scores, k)]

    def _rows(self, positions: np.ndarray) -> np.ndarray:
        """A few rows of the vectors. From a memory map they are read with pread: touching the map
        would fault in 64 KB around each row, and a few thousand searches would map the whole file."""
        if not isinstance(self.vectors, np.memmap) or self.vectors.filename is None:
            return np.asarray(self.vectors[positions])
        size = self.vectors.shape[1] * 4
        with open(self.vectors.filename, "rb") as file:
            raw = [os.pread(file.fileno(), size, self.vectors.offset + int(p) * size) for p in positions]
        return np.frombuffer(b"".join(raw), dtype=np.float32).reshape(len(positions), -1)

    def bm25_hits(self, tokens: list[str], k: int, allowed: np.ndarray) -> Hits:
        if self.bm25 is None or k <= 0:
            return []
        known = [t for t in tokens if t in self.bm25.vocab_dict]
        readable = int(allowed.sum())
        if not known or readable == 0:
            return []
        documents, scores = self.bm25.retrieve(
            [known], k=min(k, readable), weight_mask=allowed.astype(np.float32), show_progress=False
        )
        return [
            (self.chunk_ids[int(i)], float(s)) for i, s in zip(documents[0], scores[0], strict=True) if s > 0
        ]

    def document_frequencies(self, tokens: list[str]) -> np.ndarray:
        """How many base rows hold each token (bm25s keeps one column of postings per token)."""
        indptr = self.bm25.scores["indptr"]
        vocab = self.bm25.vocab_dict
        return np.array([indptr[vocab[t] + 1] - indptr[vocab[t]] if t in vocab else 0 for t in tokens])


def build_base(rows: Rows, generation: int, last_rowid: int, stem: Any, ann_min_chunks: int) -> Base:
    import bm25s

    bm25, avgdl = None, 0.0
    if len(rows):
        tokens = bm25_tokens(rows.texts, stem)
        avgdl = float(np.mean([len(ids) for ids in tokens.ids]))
        bm25 = bm25s.BM25()
        bm25.index(tokens, show_progress=False)
    ann = build_ann(rows.vectors) if len(rows) >= ann_min_chunks else None
    masks = GroupMasks.of(rows.groups)
    return Base(generation, last_rowid, rows.rowids, rows.chunk_ids, masks, rows.vectors, bm25, avgdl, ann)


def build_ann(vectors: np.ndarray) -> Any:
    """An HNSW graph over 8-bit scalar-quantised vectors: a quarter of the float memory, and the
    exact rescoring of its candidates gives the precision back."""
    import faiss

    eight_bit: Any = faiss.ScalarQuantizer.QT_8bit
    ann = faiss.IndexHNSWSQ(vectors.shape[1], eight_bit, ANN_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
    ann.hnsw.efConstruction = ANN_EF_CONSTRUCTION
    ann.train(vectors[:: max(1, len(vectors) // 100_000)])
    ann.add(vectors)
    return ann


def save_base(base: Base, folder: Path) -> None:
    """Write to a private temp folder and rename, so a reader never sees half a base."""
    parent = folder.parent
    parent.mkdir(parents=True, exist_ok=True)
    temp = parent / f".tmp-{base.generation}-{os.getpid()}"
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir()
    np.save(temp / "vectors.npy", base.vectors)
    np.save(temp / "rowids.npy", base.rowids)
    (temp / "chunk_ids.json").write_text(json.dumps(base.chunk_ids))
    members = {g: np.flatnonzero(m).tolist() for g, m in base.masks.members.items()}
    # Public rows and group members in separate keys: no group name can stand in for the public set.
    (temp / "groups.json").write_text(
        json.dumps({"public": np.flatnonzero(base.masks.public).tolist(), "members": members})
    )
    if base.bm25 is not None:
        base.bm25.save(str(temp / "bm25"))
    if base.ann is not None:
        import faiss

        faiss.write_index(base.ann, str(temp / "ann.faiss"))
    info = {"generation": base.generation, "last_rowid": base.last_rowid, "avgdl": base.avgdl}
    (temp / "base.json").write_text(json.dumps(info))
    (temp / "complete").write_text(str(base.generation))
    try:
        os.replace(temp, folder)
    except OSError:
        shutil.rmtree(temp, ignore_errors=True)  # another process saved the same generation first


def load_base(folder: Path) -> Base | None:
    """A saved base, or None if it is incomplete or unreadable. With an ANN graph the vectors stay
    on disk (memory-mapped; searches read the few rows they rescore); without one, exact search
    reads them all, so they are loaded."""
    import bm25s

    if not (folder / "complete").exists():
        return None
    try:
        info = json.loads((folder / "base.json").read_text())
        has_ann = (folder / "ann.faiss").exists()
        vectors = np.load(folder / "vectors.npy", mmap_mode="r" if has_ann else None)
        rowids = np.load(folder / "rowids.npy")
        chunk_ids = json.loads((folder / "chunk_ids.json").read_text())
        positions = json.loads((folder / "groups.json").read_text())
        bm25 = bm25s.BM25.load(str(folder / "bm25")) if (folder / "bm25").exists() else None
        ann = None
        if has_ann:
            import faiss

            ann = faiss.read_index(str(folder / "ann.faiss"))
    except (OSError, ValueError, RuntimeError):
        return None
    if set(positions) != {"public", "members"}:
        return None  # a base of the old layout, where a group called "public" overwrote the public rows
    n = len(chunk_ids)

    def mask(where: list[int]) -> np.ndarray:
        rows = np.zeros(n, dtype=bool)
        rows[np.asarray(where, dtype=np.int64)] = True
        return rows

    masks = GroupMasks(mask(positions["public"]), {g: mask(w) for g, w in positions["members"].items()})
    return Base(
        info["generation"], info["last_rowid"], rowids, chunk_ids, masks, vectors, bm25,
        info["avgdl"], ann,
    )  # fmt: skip


@dataclass(frozen=True)
class Delta:
    """Rows written after the base: searched exactly, BM25-scored with the base's statistics."""

    rowids: np.ndarray
    chunk_ids: list[str]
    masks: GroupMasks
    vectors: np.ndarray
    term_counts: sparse.csr_matrix  # rows x terms
    terms: dict[str, int]
    lengths: np.ndarray

    @classmethod
    def empty(cls, dim: int) -> Delta:
        return cls(
            np.zeros(0, dtype=np.int64), [], GroupMasks.of([]), np.zeros((0, dim), dtype=np.float32),
            sparse.csr_matrix((0, 0), dtype=np.float32), {}, np.zeros(0, dtype=np.float32),
        )  # fmt: skip

    def __len__(self) -> int:
        return len(self.chunk_ids)

    def extended(self, rows: Rows, stem: Any) -> Delta:
        if not len(rows):
            return self
        tokens = bm25_tokens(rows.texts, stem)
        names = {i: t for t, i in tokens.vocab.items()}
        terms = dict(self.terms)
        cells: list[int] = []
        for ids in tokens.ids:
            cells.extend(terms.setdefault(names[i], len(terms)) for i in ids)
        lengths = np.array([len(ids) for ids in tokens.ids], dtype=np.float32)
        pointers = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        counts = sparse.csr_matrix(
            (np.ones(len(cells), dtype=np.float32), np.array(cells, dtype=np.int64), pointers),
            shape=(len(rows), len(terms)),
        )
        counts.sum_duplicates()
        old = self.term_counts.copy()
        old.resize((len(self), len(terms)))
        return Delta(
            np.concatenate([self.rowids, rows.rowids]),
            self.chunk_ids + rows.chunk_ids,
            self.masks.extended(GroupMasks.of(rows.groups)),
            np.concatenate([self.vectors, rows.vectors.astype(np.float32)]),
            sparse.vstack([old, counts], format="csr"),
            terms,
            np.concatenate([self.lengths, lengths]),
        )

    def dense(self, vector: np.ndarray, k: int, allowed: np.ndarray) -> Hits:
        return [(self.chunk_ids[i], s) for i, s in exact_dense(self.vectors, vector, k, allowed)]

    def bm25_hits(self, tokens: list[str], k: int, allowed: np.ndarray, live: np.ndarray, base: Base) -> Hits:
        """BM25 with the statistics a rebuilt index would have: the base's plus the live delta rows'.

        A term only the delta holds then gets the idf it will keep after the rebuild, not the
        inflated one of a term no row holds.
        """
        present = [t for t in tokens if t in self.terms]
        if not present or base.bm25 is None or not allowed.any() or k <= 0:
            return []
        counts = self.term_counts[:, [self.terms[t] for t in present]].toarray()
        n_docs = int(base.bm25.scores["num_docs"]) + int(live.sum())
        df = base.document_frequencies(present) + ((counts > 0) & live[:, None]).sum(axis=0)
        avgdl = (base.avgdl * (n_docs - live.sum()) + self.lengths[live].sum()) / max(n_docs, 1)
        k1, b = base.bm25.k1, base.bm25.b
        norm = k1 * (1 - b + b * self.lengths / max(avgdl, 1e-9))
        scores = (counts / (counts + norm[:, None])) @ bm25_idf(df.astype(np.float64), n_docs)
        scores[~allowed | (scores <= 0)] = -np.inf
        return [(self.chunk_ids[i], float(scores[i])) for i in best(scores, k)]


@dataclass(frozen=True)
class Snapshot:
    """What a search reads: the base, the delta, and the rows of either deleted since the base."""

    base: Base
    delta: Delta
    base_dead: np.ndarray
    delta_dead: np.ndarray
    generation: int

    @classmethod
    def of(cls, base: Base) -> Snapshot:
        empty = Delta.empty(base.vectors.shape[1])
        return cls(base, empty, np.zeros(len(base), dtype=bool), np.zeros(0, dtype=bool), base.generation)

    @property
    def last_rowid(self) -> int:
        return int(self.delta.rowids[-1]) if len(self.delta) else self.base.last_rowid

    @property
    def rows(self) -> int:
        """Rows searched, deleted ones included."""
        return len(self.base) + len(self.delta)

    def advanced(self, rows: Rows, removed: np.ndarray, generation: int, stem: Any) -> Snapshot:
        """This snapshot with `removed` row ids masked and `rows` appended; this one unchanged."""
        delta = self.delta.extended(rows, stem)
        return replace(
            self,
            delta=delta,
            base_dead=self.base_dead | _marked(self.base.rowids, removed),
            delta_dead=np.concatenate([self.delta_dead, np.zeros(len(rows), dtype=bool)])
            | _marked(delta.rowids, removed),
            generation=generation,
        )

    def wants_new_base(self) -> bool:
        """The delta or the tombstones have grown enough that searching them costs more than a rebuild."""
        n = max(len(self.base), 1)
        return len(self.delta) > 0.1 * n or int(self.base_dead.sum()) > 0.2 * n

    def allowed(self, access: Access) -> tuple[np.ndarray, np.ndarray]:
        """Readable, live rows of the base and of the delta."""
        return (
            self.base.masks.allowed(access) & ~self.base_dead,
            self.delta.masks.allowed(access) & ~self.delta_dead,
        )


def _marked(rowids: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """Which of `rowids` are in `removed`: a binary search when they are sorted (SQLite's ids, a base),
    else a set test (Milvus' auto ids arrive in order per write, not across a cluster's proxies)."""
    if len(rowids) > 1 and bool(np.any(rowids[1:] < rowids[:-1])):
        return np.isin(rowids, removed)
    marked = np.zeros(len(rowids), dtype=bool)
    if len(rowids) and len(removed):
        at = np.minimum(np.searchsorted(rowids, removed), len(rowids) - 1)
        hit = rowids[at] == removed
        marked[at[hit]] = True
    return marked


def merged(*lists: Hits, k: int) -> Hits:
    """The k best of several (chunk id, score) lists on one scale."""
    return sorted((hit for hits in lists for hit in hits), key=lambda hit: -hit[1])[:k]
