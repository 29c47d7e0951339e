"""Fit hybrid fusion on the workspace's own labelled questions: one weight, chosen by nDCG@10.

Bruch et al. 2023 found the convex weight needs only a few labelled queries and that tuned RRF
constants did not transfer across domains, so ragtune fits alpha per knowledge base.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ragtune.errors import DataError
from ragtune.evaluate.metrics import score_run
from ragtune.index.retriever import Retriever
from ragtune.index.store import Access

ALPHAS = tuple(round(0.05 * i, 2) for i in range(21))


def fusion_sweep(
    retriever: Retriever,
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    alphas: Sequence[float],
    access: Access | None = None,
) -> dict[str, dict[str, float]]:
    """Document-level metrics of bm25, dense, RRF and convex fusion at each alpha, searching once per query.

    Keys: "bm25", "dense", "rrf", and "convex a=0.50" style labels. Documents are ranked by their
    best chunk, as in evaluate_beir.
    """
    access = access or Access()
    judged = sorted(q for q in qrels if q in queries)
    depth = max(100, retriever.config.candidates)
    vectors = retriever.embedder.embed([queries[q] for q in judged])
    lists = {
        q: retriever.candidate_lists(queries[q], "hybrid", retriever.config.candidates, access, vectors[i])
        for i, q in enumerate(judged)
    }
    ids = {item for per_query in lists.values() for ranking in per_query.values() for item, _ in ranking}
    source = {chunk.chunk_id: chunk.source for chunk in retriever.store.chunks(sorted(ids))}

    def documents(fused: list[tuple[str, float, dict[str, int]]]) -> list[str]:
        return list(dict.fromkeys(source[item] for item, _, _ in fused if item in source))[:depth]

    runs: dict[str, dict[str, list[str]]] = {"bm25": {}, "dense": {}, "rrf": {}}
    for q, per_query in lists.items():
        for name in ("bm25", "dense"):
            runs[name][q] = documents(retriever.fuse({name: per_query[name]}))
        runs["rrf"][q] = documents(retriever.fuse(per_query, fusion="rrf"))
        for alpha in alphas:
            label = f"convex a={alpha:.2f}"
            runs.setdefault(label, {})[q] = documents(retriever.fuse(per_query, fusion="convex", alpha=alpha))
    judged_qrels = {q: qrels[q] for q in judged}
    return {name: score_run(judged_qrels, ranked) for name, ranked in runs.items()}


@dataclass
class FusionFit:
    fusion: str  # "convex" or "rrf"
    alpha: float
    questions: int
    ndcg: dict[str, float]  # nDCG@10 of every fusion tried, and of bm25 and dense alone

    @property
    def best(self) -> float:
        return self.ndcg["rrf"] if self.fusion == "rrf" else self.ndcg[f"convex a={self.alpha:.2f}"]

    def to_dict(self) -> dict[str, Any]:
        return {"fusion": self.fusion, "alpha": self.alpha, "questions": self.questions, "ndcg@10": self.ndcg}


def fit_fusion(
    retriever: Retriever, questions: list[dict[str, Any]], access: Access | None = None
) -> FusionFit:
    """The fusion with the best document nDCG@10; among equal alphas the one nearest 0.5 (least extreme)."""
    labelled = [q for q in questions if q.get("gold_doc")]
    if len(labelled) < 5:
        raise DataError(
            f"fitting fusion needs at least 5 questions with a gold_doc, got {len(labelled)}: "
            "label some, or run `ragtune synth` for synthetic ones"
        )
    queries = {str(q["id"]): str(q["question"]) for q in labelled}
    qrels = {str(q["id"]): {str(q["gold_doc"]): 1} for q in labelled}
    table = {
        name: m["ndcg@10"] for name, m in fusion_sweep(retriever, queries, qrels, ALPHAS, access).items()
    }
    alpha = max(ALPHAS, key=lambda a: (table[f"convex a={a:.2f}"], -abs(a - 0.5)))
    fusion = "rrf" if table["rrf"] > table[f"convex a={alpha:.2f}"] else "convex"
    return FusionFit(fusion, alpha, len(labelled), table)
