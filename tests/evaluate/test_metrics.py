"""Metric functions against values computed by hand."""

from __future__ import annotations

import math

import pytest

from ragtune.evaluate.metrics import (
    bootstrap_ci,
    citation_precision,
    contains_answer,
    exact_match,
    groundedness,
    normalize_answer,
    per_query_retrieval,
    style_marker,
    token_f1,
)


def test_normalisation_drops_case_punctuation_and_articles() -> None:
    assert normalize_answer("The  25 Days!") == "25 days"


def test_exact_match_and_contains() -> None:
    assert exact_match("25 days.", ["25 days", "25"]) == 1.0
    assert exact_match("You get 25 days.", ["25 days"]) == 0.0
    assert contains_answer("You get 25 days of leave.", ["25 days"]) == 1.0
    assert contains_answer("You get 125 days.", ["25"]) == 0.0, "whole words only"
    assert contains_answer("anything", [""]) == 0.0


def test_token_f1_by_hand() -> None:
    # prediction "you get 25 days", gold "25 days": common 2, precision 2/4, recall 2/2 -> F1 = 2/3
    assert token_f1("You get 25 days", ["25 days"]) == pytest.approx(2 / 3)
    assert token_f1("nothing in common", ["25 days"]) == 0.0
    assert token_f1("25 days", ["12 days", "25 days"]) == 1.0, "best over accepted answers"


def test_groundedness_counts_supported_sentences() -> None:
    passage = "Full-time employees receive 25 days of paid annual leave per calendar year."
    answer = "Employees receive 25 days of paid leave. Managers also get a company car."
    # sentence 1: employees receive 25 days paid leave -> all 6 content words in the passage;
    # sentence 2: managers also get company car -> none; so 1 of 2 sentences is supported.
    assert groundedness(answer, [passage]) == 0.5
    assert groundedness(answer, []) is None


def test_citation_precision() -> None:
    assert citation_precision(["a.md", "b.md", "a.md", "c.md"], "a.md") == 0.5
    assert citation_precision([], "a.md") is None
    assert citation_precision(["a.md"], None) is None


def test_per_query_retrieval_by_hand() -> None:
    qrels = {"q1": {"d1": 1}, "q2": {"d2": 1}, "q3": {"d3": 1}}
    ranked = {"q1": ["d1", "x"], "q2": ["x", "d2"], "q3": ["x", "y"]}
    scores = per_query_retrieval(qrels, ranked, k=10)
    assert scores["q1"] == {"recall@10": 1.0, "mrr@10": 1.0, "ndcg@10": 1.0}
    assert scores["q2"]["mrr@10"] == 0.5 and scores["q2"]["ndcg@10"] == pytest.approx(1 / math.log2(3))
    assert scores["q3"] == {"recall@10": 0.0, "mrr@10": 0.0, "ndcg@10": 0.0}


def test_bootstrap_interval_brackets_the_mean() -> None:
    values = [1.0] * 30 + [0.0] * 30
    low, high = bootstrap_ci(values)
    assert low < 0.5 < high and low > 0.3 and high < 0.7
    assert bootstrap_ci([1.0, 1.0, 1.0]) == (1.0, 1.0)
    assert all(math.isnan(v) for v in bootstrap_ci([1.0]))


def test_the_style_marker_is_the_closing_line_most_examples_share() -> None:
    signed = [f"Answer {n}.\n\n— Brightwell People Team" for n in range(9)]
    assert style_marker([*signed, "An unsigned answer."]) == "— Brightwell People Team"
    assert style_marker([*signed[:7], "x\ny", "x\nz", "x\nw"]) is None, "7 of 10 is not the house style"
    assert style_marker(["One line.", "Another line."]) is None, "no line is shared"
    assert style_marker([]) is None


def test_the_house_sign_off_is_not_counted_as_an_unsupported_claim() -> None:
    from ragtune.evaluate.compare import _supported_share

    verification = {
        "sentences": [
            {"text": "You get 25 days of paid leave.", "supported": True},
            {"text": "Enjoy the time off!", "supported": False},
            {"text": "— Brightwell People Team", "supported": False},
        ]
    }
    assert _supported_share(verification, None) == 1 / 3
    assert _supported_share(verification, "— Brightwell People Team") == 1 / 2
    assert _supported_share({"sentences": []}, None) is None
