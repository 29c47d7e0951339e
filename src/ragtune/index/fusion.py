"""Fusing BM25 and dense result lists: by rank (RRF) or by normalised score (convex combination).

Bruch et al. 2023 ("An Analysis of Fusion Functions for Hybrid Retrieval", TOIS) found a convex
combination of normalised scores above RRF on every BEIR set they tried, with its one weight tuned
on a few labelled queries; bench/retrieval.py measures both on ragtune's examples.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

Fused = list[tuple[str, float, dict[str, int]]]


def reciprocal_rank_fusion(rankings: Mapping[str, Sequence[str]], k: int = 60) -> Fused:
    """Fuse ranked id lists: score(id) = sum over lists of 1 / (k + rank), rank starting at 1.

    Returns (id, score, {list name: rank}) best first; ties keep first-seen order.
    """
    scores: dict[str, float] = {}
    ranks: dict[str, dict[str, int]] = {}
    for name, ids in rankings.items():
        for rank, item in enumerate(ids, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
            ranks.setdefault(item, {})[name] = rank
    ordered = sorted(scores, key=lambda item: -scores[item])
    return [(item, scores[item], ranks[item]) for item in ordered]


def min_max(scores: Sequence[float]) -> list[float]:
    """Scores mapped onto [0, 1] within their own list; a list of equal scores all becomes 1."""
    if not scores:
        return []
    low, high = min(scores), max(scores)
    if high - low < 1e-12:
        return [1.0] * len(scores)
    return [(s - low) / (high - low) for s in scores]


def convex_combination(
    lists: Mapping[str, Sequence[tuple[str, float]]], weights: Mapping[str, float]
) -> Fused:
    """score(id) = sum over lists of weight * min-max normalised score; an id missing from a list gets 0.

    Missing means "below that list's last candidate", so 0 (the list's floor) is the honest value.
    Returns (id, score, {list name: rank}) best first; ties keep first-seen order.
    """
    scores: dict[str, float] = {}
    ranks: dict[str, dict[str, int]] = {}
    for name, ranked in lists.items():
        weight = weights.get(name, 0.0)
        normalised_scores = min_max([score for _, score in ranked])
        for rank, ((item, _), normalised) in enumerate(zip(ranked, normalised_scores, strict=True), start=1):
            scores[item] = scores.get(item, 0.0) + weight * normalised
            ranks.setdefault(item, {})[name] = rank
    ordered = sorted(scores, key=lambda item: -scores[item])
    return [(item, scores[item], ranks[item]) for item in ordered]
