"""Metric functions, each small and unit-tested against hand-computed values; libraries where they exist."""

from __future__ import annotations

METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")


def score_run(qrels: dict[str, dict[str, int]], ranked: dict[str, list[str]]) -> dict[str, float]:
    """Mean metrics over every judged query (a query with no results scores 0)."""
    import pytrec_eval

    def as_run(depth: int) -> dict[str, dict[str, float]]:
        return {
            q: {d: float(len(docs) - i) for i, d in enumerate(docs[:depth])}
            for q, docs in ranked.items()
            if docs
        }

    full = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut_10", "recall_10", "recall_100"}).evaluate(
        as_run(100)
    )
    top10 = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(as_run(10))
    n = len(qrels)

    def mean(table: dict[str, dict[str, float]], key: str) -> float:
        return round(sum(table.get(q, {}).get(key, 0.0) for q in qrels) / n, 4)

    return {
        "ndcg@10": mean(full, "ndcg_cut_10"),
        "recall@10": mean(full, "recall_10"),
        "recall@100": mean(full, "recall_100"),
        "mrr@10": mean(top10, "recip_rank"),
    }
