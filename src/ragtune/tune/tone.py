"""Tone that keeps reading: the voice learnt from the team's examples, then distilled into answers from passages.

A tone adapter trained on bare style examples signs its answers alone but, under hybrid, often
falls back to the rag prompt's terse "answer [1]" (examples/hr: 65% of answers in the house style).
Trained on the same examples set beside retrieved passages, it keeps the style but learns that the
answer need not come from the passages, which it then ignores (accuracy 84% -> 65% of questions).

So the voice model (the bare adapter) answers synthesised questions in the exact prompt hybrid
sends, and only its answers that are right (they contain the synthesised answer) and in the house
style (they carry the style examples' closing line, when they share one) and grounded in the
passages become training data (ragtune.tune.distil). The final adapter learns both at once, from
examples where both were done.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.console import Console

from ragtune.generate import GenerationParams, Generator
from ragtune.generate.prompts import format_passage, rag_messages
from ragtune.index.retriever import Retriever
from ragtune.index.store import Access
from ragtune.tune.distil import Candidate, Distilled, distil


def distil_in_voice(
    retriever: Retriever,
    voice: Generator,
    rows: list[dict[str, Any]],
    params: GenerationParams,
    *,
    passages: int,
    allowed: Access,
    persona: str,
    marker: str | None,
    console: Console,
    show_progress: bool = True,
) -> Distilled:
    """The voice model's answers in the hybrid prompt, kept when right, grounded and in the house style."""
    candidates: list[Candidate] = []
    skipped: Counter[str] = Counter()
    for row in rows:
        answers = [a for a in row.get("answers", []) if a.strip()]
        if not answers:
            skipped["no answer to check"] += 1
            continue
        hits = retriever.retrieve(row["question"], k=passages, access=allowed)
        if not hits:
            skipped["nothing retrieved"] += 1
            continue
        texts = [format_passage(n, hit, "inline") for n, hit in enumerate(hits, start=1)]
        prompt = rag_messages(row["question"], texts, style="inline", persona=persona)
        candidates.append(Candidate(prompt, [h.chunk for h in hits], answers))
    built = distil(
        voice,
        candidates,
        params,
        embedder=retriever.embedder,
        marker=marker,
        console=console,
        show_progress=show_progress,
    )
    built.rejected.update(skipped)
    return built
