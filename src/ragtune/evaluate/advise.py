"""Needs + measurements -> a recommended strategy, with reasons that quote the measured numbers.

Hard needs filter first (citations, freshness, latency, access control), measured accuracy decides
among what is left, and ties inside the confidence intervals go to the simpler, cheaper strategy.
The rule of thumb (fast-changing facts -> RAG, fixed tone/format -> fine-tuning, both -> hybrid) is
stated next to the choice, and any disagreement with it is said plainly.
"""

from __future__ import annotations

from typing import Any

from ragtune.config import NeedsConfig

# Simplest first: what a team has to build and keep running.
COMPLEXITY = ("base", "rag", "finetuned", "hybrid")
FAST_CHANGING = ("daily", "weekly")
THIN_N = 30
WIDE_CI = 0.25
TIE = 0.05  # accuracy points within which the simpler strategy is preferred (if intervals overlap too)


def rule_of_thumb(needs: NeedsConfig) -> tuple[str, str]:
    changing = needs.facts_change in FAST_CHANGING
    if changing and needs.tone_required:
        return "hybrid", "facts change often and a fixed tone is required"
    if changing or needs.citations_required:
        return "rag", "facts change often" if changing else "answers must cite their sources"
    if needs.tone_required:
        return "finetuned", "a fixed tone/format matters and facts are stable"
    return "rag", "the default for answering from documents"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.0f}%"


def _ci(row: dict[str, Any], metric: str) -> str:
    ci = row.get(f"{metric}_ci")
    return f" [{ci[0] * 100:.0f}–{ci[1] * 100:.0f}]" if ci else ""


def recommend(result: dict[str, Any], needs: NeedsConfig) -> dict[str, Any]:
    """The recommendation block of a compare result (also what `ragtune advise` prints)."""
    rows: dict[str, dict[str, Any]] = result["strategies"]
    reasons: list[str] = []
    warnings: list[str] = []
    fresh = (result.get("freshness") or {}).get("strategies", {})
    candidates = [s for s in COMPLEXITY if s in rows]
    excluded: dict[str, str] = {}

    def exclude(strategy: str, why: str) -> None:
        if strategy in candidates and len(candidates) > 1:
            candidates.remove(strategy)
            excluded[strategy] = why

    for strategy in list(candidates):
        if needs.citations_required and not rows[strategy].get("groundedness_n"):
            exclude(strategy, "cannot cite sources (no retrieval)")
    if needs.facts_change in FAST_CHANGING:
        for strategy in list(candidates):
            probe = fresh.get(strategy)
            if probe is not None and not probe["answers_new"]:
                retrain = probe.get("retrain_seconds")
                cost = f"; retraining took {retrain:.0f}s" if retrain else ""
                exclude(strategy, f"still answered the old value after the edit{cost}")
            elif probe is None and strategy in ("base", "finetuned"):
                exclude(strategy, "keeps facts in weights: every change needs retraining")
    if needs.data_sensitivity == "restricted":
        for strategy in list(candidates):
            if strategy in ("finetuned",):
                exclude(strategy, "per-user document access can only be enforced at retrieval")
    if needs.latency_target_ms:
        target = needs.latency_target_ms
        slow = {
            s: p95 for s in candidates if (p95 := rows[s].get("latency_p95_ms")) is not None and p95 > target
        }
        if len(slow) == len(candidates):  # excluding all but the last one checked would pick by order
            warnings.append(
                f"no strategy meets the {target:.0f} ms p95 target on this hardware; "
                "a GPU or a smaller answer length would be needed"
            )
        else:
            for strategy, p95 in slow.items():
                exclude(strategy, f"p95 latency {p95:.0f} ms is above the {target:.0f} ms target")

    def accuracy(strategy: str) -> float:
        return float(rows[strategy].get("accuracy") or 0.0)

    best = max(candidates, key=lambda s: (accuracy(s), -COMPLEXITY.index(s)))
    chosen = best
    if needs.tone_required:  # the house mark when the style examples have one, else similarity to them
        metric = "style_hit" if any(rows[s].get("style_hit") is not None for s in candidates) else "tone"
        toned = [s for s in candidates if rows[s].get(metric) is not None]
        if toned:
            by_tone = max(toned, key=lambda s: rows[s][metric])
            if by_tone != best and _overlap(rows[by_tone], rows[best], "accuracy"):
                chosen = by_tone
                mine, theirs = rows[by_tone][metric], rows[best].get(metric) or 0.0
                carries = (
                    f"carries the house style in {mine:.0%} of answers vs {theirs:.0%}"
                    if metric == "style_hit"
                    else f"is closest to the style examples ({mine:.2f} vs {theirs:.2f})"
                )
                reasons.append(
                    f"tone matters: {by_tone} {carries}, at accuracy within the interval of {best}"
                )
    # A simpler strategy within the chosen one's interval and within TIE points of it is as good.
    simplest = min(
        (
            s
            for s in candidates
            if _overlap(rows[s], rows[chosen], "accuracy") and accuracy(s) >= accuracy(chosen) - TIE
        ),
        key=COMPLEXITY.index,
    )
    if simplest != chosen and not needs.tone_required:
        reasons.append(
            f"{simplest} is as accurate as {chosen} within the 95% intervals "
            f"({_pct(rows[simplest]['accuracy'])}{_ci(rows[simplest], 'accuracy')} vs "
            f"{_pct(rows[chosen]['accuracy'])}{_ci(rows[chosen], 'accuracy')}) and simpler to run"
        )
        chosen = simplest

    row = rows[chosen]
    reasons.insert(
        0,
        f"{chosen}: answers contain an accepted answer {_pct(row.get('accuracy'))}{_ci(row, 'accuracy')} "
        f"of the time over {row.get('accuracy_n', 0)} answerable questions",
    )
    for other in rows:
        if other != chosen and rows[other].get("accuracy") is not None:
            reasons.append(
                f"{other}: {_pct(rows[other]['accuracy'])}{_ci(rows[other], 'accuracy')}"
                + (f" (excluded: {excluded[other]})" if other in excluded else "")
            )
    if row.get("groundedness") is not None:
        reasons.append(
            f"groundedness {_pct(row['groundedness'])}, citation precision {_pct(row.get('citation_precision'))}"
        )
    if row.get("latency_p50_ms") is not None:
        reasons.append(f"latency p50 {row['latency_p50_ms']:.0f} ms, p95 {row['latency_p95_ms']:.0f} ms")
    probe = fresh.get(chosen)
    if probe is not None and probe.get("seconds_to_new") is not None:
        reasons.append(f"a changed fact was answered correctly {probe['seconds_to_new']:.1f}s after the edit")

    n = row.get("accuracy_n", 0)
    ci = row.get("accuracy_ci")
    thin = n < THIN_N or (ci is not None and ci[1] - ci[0] > WIDE_CI)
    if thin:
        warnings.append(
            f"the evidence is thin: {n} answerable questions"
            + (f", accuracy interval {ci[0] * 100:.0f}–{ci[1] * 100:.0f}%" if ci else "")
            + "; add questions before relying on this choice"
        )
    thumb, why = rule_of_thumb(needs)
    contradicts = thumb != chosen
    if contradicts and thumb in rows:
        t = rows[thumb]
        warnings.append(
            f"the measurements contradict the rule of thumb ({thumb}, because {why}): {thumb} scored "
            f"{_pct(t.get('accuracy'))}{_ci(t, 'accuracy')} against {chosen}'s {_pct(row.get('accuracy'))}"
            f"{_ci(row, 'accuracy')}"
            + (f", and was excluded: {excluded[thumb]}" if thumb in excluded else "")
        )
    elif contradicts:
        warnings.append(f"the rule of thumb says {thumb} ({why}), but it was not measured")
    unset = [k for k, v in needs.model_dump().items() if v in ("", None)]
    return {
        "strategy": chosen,
        "reasons": reasons,
        "warnings": warnings,
        "excluded": excluded,
        "rule_of_thumb": {"strategy": thumb, "because": why, "agrees": not contradicts},
        "thin_evidence": thin,
        "needs": needs.model_dump(),
        "needs_unset": unset,
    }


def _overlap(a: dict[str, Any], b: dict[str, Any], metric: str) -> bool:
    ca, cb = a.get(f"{metric}_ci"), b.get(f"{metric}_ci")
    if not ca or not cb:
        return a.get(metric) == b.get(metric)
    return bool(ca[0] <= cb[1] and cb[0] <= ca[1])
