"""Metric functions, each small and unit-tested against hand-computed values; libraries where they exist."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from bm25s.stopwords import STOPWORDS_EN

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


def per_query_retrieval(
    qrels: dict[str, dict[str, int]], ranked: dict[str, list[str]], k: int = 10
) -> dict[str, dict[str, float]]:
    """Recall@k, MRR@k and nDCG@10 of each judged query (pytrec_eval), for confidence intervals."""
    import pytrec_eval

    run = {q: {d: float(len(docs) - i) for i, d in enumerate(docs[:k])} for q, docs in ranked.items() if docs}
    table = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut_10", f"recall_{k}", "recip_rank"}).evaluate(run)
    return {
        q: {
            f"recall@{k}": table.get(q, {}).get(f"recall_{k}", 0.0),
            f"mrr@{k}": table.get(q, {}).get("recip_rank", 0.0),
            "ndcg@10": table.get(q, {}).get("ndcg_cut_10", 0.0),
        }
        for q in qrels
    }


# Answer metrics. Normalisation follows the SQuAD evaluation script (lower case, no punctuation,
# no articles, single spaces) so that exact match and token F1 mean what readers expect.
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = re.compile(r"[^\w\s]")


def normalize_answer(text: str) -> str:
    return " ".join(_ARTICLES.sub(" ", _PUNCTUATION.sub(" ", text.lower())).split())


def exact_match(prediction: str, accepted: Sequence[str]) -> float:
    return float(any(normalize_answer(prediction) == normalize_answer(a) for a in accepted))


def token_f1(prediction: str, accepted: Sequence[str]) -> float:
    """Best SQuAD token F1 against any accepted answer."""
    predicted = normalize_answer(prediction).split()
    best = 0.0
    for answer in accepted:
        gold = normalize_answer(answer).split()
        common = sum((Counter(predicted) & Counter(gold)).values())
        if common:
            precision, recall = common / len(predicted), common / len(gold)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def contains_answer(prediction: str, accepted: Sequence[str]) -> float:
    """1 when a normalised accepted answer occurs in the normalised prediction as whole words."""
    padded = f" {normalize_answer(prediction)} "
    return float(any(f" {normalize_answer(a)} " in padded for a in accepted if normalize_answer(a)))


_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_STOP = frozenset(STOPWORDS_EN)


def _content(text: str) -> list[str]:
    return [w for w in normalize_answer(text).split() if w not in _STOP]


def groundedness(answer: str, passages: Sequence[str], threshold: float = 0.6) -> float | None:
    """Share of answer sentences whose content words are mostly (>= threshold) found in the passages.

    Local and key-free: a lexical support check. None when there is nothing to judge (no sentence
    with content words, or no passages).
    """
    if not passages:
        return None
    support = set(_content(" ".join(passages)))
    sentences = [s for s in (_content(x) for x in _SENTENCE.split(answer)) if s]
    if not sentences:
        return None
    supported = sum(sum(w in support for w in s) / len(s) >= threshold for s in sentences)
    return supported / len(sentences)


def answer_sentences(answer: str) -> list[str]:
    """Sentences with content words: what groundedness judges."""
    return [s.strip() for s in _SENTENCE.split(answer) if _content(s)]


def citation_precision(cited_sources: Sequence[str], gold_doc: str | None) -> float | None:
    """Share of citations naming the gold document; None when nothing is cited or no gold is known."""
    if not cited_sources or gold_doc is None:
        return None
    return sum(source == gold_doc for source in cited_sources) / len(cited_sources)


def style_marker(style_answers: Sequence[str], share: float = 0.8) -> str | None:
    """The house style's mark: the last line (a sign-off) that at least `share` of the examples end with.

    Embedding similarity to the style examples measures topic more than voice; a sign-off every
    example carries is a plain yes or no per answer. None when the examples share no such line.
    """
    last_lines = [lines[-1].strip() for a in style_answers if (lines := a.strip().splitlines())]
    if not last_lines:
        return None
    line, count = Counter(last_lines).most_common(1)[0]
    return line if count >= share * len(style_answers) and len(line) <= 80 else None


def bootstrap_ci(values: Sequence[float], confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (scipy), (nan, nan) for fewer than two values."""
    import numpy as np
    from scipy.stats import bootstrap

    data = np.asarray([v for v in values if v is not None], dtype=float)
    if len(data) < 2:
        return (float("nan"), float("nan"))
    if np.all(data == data[0]):
        return (float(data[0]), float(data[0]))
    result = bootstrap(
        (data,),
        np.mean,
        confidence_level=confidence,
        n_resamples=2000,
        method="percentile",
        random_state=seed,
    )
    return (float(result.confidence_interval.low), float(result.confidence_interval.high))
