"""Query -> hits: dense, BM25 or both fused, with the caller's access applied inside each search."""

from __future__ import annotations

from typing import Literal

import numpy as np

from ragtune.config import RetrievalConfig
from ragtune.errors import RagtuneError
from ragtune.index.embedder import Embedder
from ragtune.index.fusion import Fused, convex_combination, reciprocal_rank_fusion
from ragtune.index.rerank import CrossEncoderReranker
from ragtune.index.store import Access, Store
from ragtune.text import scrub
from ragtune.types import Hit

Mode = Literal["hybrid", "dense", "bm25"]
MODES: tuple[Mode, ...] = ("hybrid", "dense", "bm25")


def check_mode(mode: str) -> Mode:
    if mode not in MODES:
        raise RagtuneError(f"unknown search mode {mode!r}; use one of {', '.join(MODES)}")
    return mode


def relative_to_best(ranking: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """BM25 scores as a share of the best one: what a caller may see of them.

    A raw BM25 score carries the term's idf, computed over every chunk, restricted ones included: a
    caller comparing raw scores could count restricted chunks that hold a word. Divided by the best
    score of the caller's own list, a one-word query's idf cancels out. Order, and so fusion
    (convex normalises each list, RRF uses ranks), are unchanged.
    """
    if not ranking or ranking[0][1] <= 0:
        return ranking
    best = ranking[0][1]
    return [(item, score / best) for item, score in ranking]


class Retriever:
    def __init__(
        self,
        store: Store,
        embedder: Embedder,
        config: RetrievalConfig | None = None,
        reranker: CrossEncoderReranker | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.config = config or RetrievalConfig()
        self.reranker = reranker

    def retrieve(
        self,
        query: str,
        k: int | None = None,
        mode: str | None = None,
        access: Access | None = None,
        query_vector: np.ndarray | None = None,
    ) -> list[Hit]:
        """Top-k chunks the caller may read; `query_vector` skips embedding when it is precomputed."""
        k = k or self.config.k
        mode = check_mode(mode or self.config.mode)
        access = access or Access()
        query = scrub(query)
        if not query.strip():
            raise RagtuneError("empty query: give some words to search for")
        rankings = self.candidate_lists(query, mode, max(k, self.config.candidates), access, query_vector)
        if "bm25" in rankings:
            rankings["bm25"] = relative_to_best(rankings["bm25"])
        scored = self.fuse(rankings)
        keep = scored[: max(k, self.reranker.top_n) if self.reranker is not None else k]
        # Checked again on the rows fetched: a document re-ingested with other groups since the
        # search's snapshot (another process, a poll interval ago) reuses its chunk ids.
        fetched = self.store.chunks([item for item, _, _ in keep])
        chunks = {c.chunk_id: c for c in fetched if access.may_read(c.groups)}
        list_scores = {name: dict(ranking) for name, ranking in rankings.items()}
        hits = [
            Hit(chunks[item], score, ranks, {n: s[item] for n, s in list_scores.items() if item in s})
            for item, score, ranks in keep
            if item in chunks
        ]
        if self.reranker is not None:
            hits = self.reranker.rerank(query, hits)
        return hits[:k]

    def candidate_lists(
        self, query: str, mode: Mode, depth: int, access: Access, query_vector: np.ndarray | None = None
    ) -> dict[str, list[tuple[str, float]]]:
        """(chunk id, score) lists best first, one per search the mode runs, before any fusion."""
        rankings: dict[str, list[tuple[str, float]]] = {}
        if mode in ("dense", "hybrid"):
            vector = query_vector if query_vector is not None else self.embedder.embed([query])[0]
            rankings["dense"] = self.store.search_dense(vector, depth, access)
        if mode in ("bm25", "hybrid"):
            rankings["bm25"] = self.store.search_bm25(query, depth, access)
        return rankings

    def fuse(
        self,
        rankings: dict[str, list[tuple[str, float]]],
        fusion: Literal["convex", "rrf"] | None = None,
        alpha: float | None = None,
    ) -> Fused:
        """One list from one or two: the configured fusion and weight, unless `fusion` / `alpha` are given."""
        if len(rankings) == 1:
            ((name, ranking),) = rankings.items()
            return [(item, score, {name: rank}) for rank, (item, score) in enumerate(ranking, 1)]
        if (fusion or self.config.fusion) == "rrf":
            return reciprocal_rank_fusion(
                {n: [i for i, _ in r] for n, r in rankings.items()}, self.config.rrf_k
            )
        weight = self.config.alpha if alpha is None else alpha
        return convex_combination(rankings, {"dense": weight, "bm25": 1.0 - weight})
