"""The recommendation logic on hand-made measurements: each rule, and when it must speak up."""

from __future__ import annotations

from typing import Any

from ragtune.config import NeedsConfig
from ragtune.evaluate.advise import recommend


def row(accuracy: float, ci: tuple[float, float], n: int = 100, **extra: Any) -> dict[str, Any]:
    return {
        "accuracy": accuracy,
        "accuracy_ci": list(ci),
        "accuracy_n": n,
        "groundedness": extra.pop("groundedness", None),
        "groundedness_n": extra.pop("groundedness_n", 0),
        "citation_precision": None,
        "latency_p50_ms": extra.pop("p50", 1000.0),
        "latency_p95_ms": extra.pop("p95", 2000.0),
        "tone": extra.pop("tone", None),
        **extra,
    }


def measured(**rows: dict[str, Any]) -> dict[str, Any]:
    return {"strategies": rows, "freshness": None}


RETRIEVES = {"groundedness": 0.8, "groundedness_n": 90}


def test_simplest_strategy_wins_when_intervals_overlap() -> None:
    result = measured(
        base=row(0.05, (0.01, 0.1)),
        rag=row(0.50, (0.40, 0.60), **RETRIEVES),
        hybrid=row(0.53, (0.43, 0.63), **RETRIEVES),
    )
    rec = recommend(result, NeedsConfig())
    assert rec["strategy"] == "rag"
    assert any("as accurate as hybrid within the 95% intervals" in r for r in rec["reasons"])
    assert rec["reasons"][0].startswith("rag: answers contain an accepted answer 50% [40–60]")


def test_a_clearly_better_strategy_wins_despite_complexity() -> None:
    result = measured(rag=row(0.40, (0.32, 0.48), **RETRIEVES), hybrid=row(0.70, (0.62, 0.78), **RETRIEVES))
    assert recommend(result, NeedsConfig())["strategy"] == "hybrid"


def test_citations_required_excludes_strategies_without_sources() -> None:
    result = measured(finetuned=row(0.9, (0.85, 0.95)), rag=row(0.5, (0.4, 0.6), **RETRIEVES))
    rec = recommend(result, NeedsConfig(citations_required=True))
    assert rec["strategy"] == "rag" and "cannot cite" in rec["excluded"]["finetuned"]


def test_fast_changing_facts_exclude_strategies_that_missed_the_edit() -> None:
    result = measured(finetuned=row(0.6, (0.5, 0.7)), rag=row(0.5, (0.45, 0.55), **RETRIEVES))
    result["freshness"] = {
        "strategies": {
            "finetuned": {"answers_new": False, "retrain_seconds": 300.0, "seconds_to_new": None},
            "rag": {"answers_new": True, "seconds_to_new": 2.5},
        }
    }
    rec = recommend(result, NeedsConfig(facts_change="daily"))
    assert rec["strategy"] == "rag"
    assert "old value" in rec["excluded"]["finetuned"] and "300s" in rec["excluded"]["finetuned"]
    assert any("2.5s after the edit" in r for r in rec["reasons"])


def test_tone_tips_the_choice_only_within_the_accuracy_interval() -> None:
    result = measured(
        rag=row(0.50, (0.40, 0.60), tone=0.40, **RETRIEVES),
        hybrid=row(0.48, (0.38, 0.58), tone=0.70, **RETRIEVES),
    )
    assert recommend(result, NeedsConfig(tone_required=True))["strategy"] == "hybrid"
    result["strategies"]["hybrid"].update(accuracy=0.2, accuracy_ci=[0.1, 0.3])
    assert recommend(result, NeedsConfig(tone_required=True))["strategy"] == "rag"


def test_the_style_hit_rate_outranks_similarity_when_measured() -> None:
    result = measured(
        rag=row(0.50, (0.40, 0.60), tone=0.70, style_hit=0.0, **RETRIEVES),
        hybrid=row(0.48, (0.38, 0.58), tone=0.40, style_hit=0.9, **RETRIEVES),
    )
    rec = recommend(result, NeedsConfig(tone_required=True))
    assert rec["strategy"] == "hybrid"
    assert any("carries the house style in 90% of answers vs 0%" in r for r in rec["reasons"])


def test_latency_target_and_a_plain_contradiction_of_the_rule_of_thumb() -> None:
    result = measured(
        rag=row(0.50, (0.40, 0.60), p95=900.0, **RETRIEVES),
        hybrid=row(0.20, (0.12, 0.28), p95=5000.0, tone=0.9, **RETRIEVES),
    )
    rec = recommend(result, NeedsConfig(facts_change="daily", tone_required=True, latency_target_ms=1000))
    assert rec["strategy"] == "rag"
    assert "above the 1000 ms target" in rec["excluded"]["hybrid"]
    assert rec["rule_of_thumb"] == {
        "strategy": "hybrid",
        "because": "facts change often and a fixed tone is required",
        "agrees": False,
    }
    assert any(w.startswith("the measurements contradict the rule of thumb (hybrid") for w in rec["warnings"])


def test_when_every_strategy_misses_the_latency_target_accuracy_decides() -> None:
    result = measured(
        rag=row(0.95, (0.85, 1.0), p95=4900.0, **RETRIEVES),
        hybrid=row(0.60, (0.45, 0.75), p95=6900.0, **RETRIEVES),
    )
    rec = recommend(result, NeedsConfig(latency_target_ms=3000))
    assert rec["strategy"] == "rag", "the slower, less accurate strategy must not win by being checked last"
    assert not rec["excluded"]
    assert any("no strategy meets the 3000 ms p95 target" in w for w in rec["warnings"])


def test_thin_evidence_is_said_plainly() -> None:
    rec = recommend(measured(rag=row(0.5, (0.2, 0.8), n=12, **RETRIEVES)), NeedsConfig())
    assert rec["thin_evidence"] and any(
        "the evidence is thin: 12 answerable questions" in w for w in rec["warnings"]
    )
    solid = recommend(measured(rag=row(0.5, (0.45, 0.55), n=200, **RETRIEVES)), NeedsConfig())
    assert not solid["thin_evidence"]
