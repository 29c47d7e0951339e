"""Tone that keeps reading: the voice learnt from the team's examples, then distilled into answers from passages.

A tone adapter trained on bare style examples signs its answers alone but, under hybrid, often
falls back to the rag prompt's terse "answer [1]" (examples/hr: 65% of answers in the house style).
Trained on the same examples set beside retrieved passages, it keeps the style but learns that the
answer need not come from the passages, which it then ignores (accuracy 84% -> 65% of questions).

So the voice model (the bare adapter) answers synthesised questions in the exact prompt hybrid
sends, and only its answers that are right (they contain the synthesised answer) and in the house
style (they carry the style examples' closing line, when they share one) become training data:
rejection sampling, as in STaR (Zelikman et al. 2022). The final adapter learns both at once, from
examples where both were done.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console

from ragtune.evaluate.metrics import contains_answer
from ragtune.generate import GenerationParams, Generator, run_generation
from ragtune.generate.prompts import format_passage, rag_messages
from ragtune.index.retriever import Retriever
from ragtune.index.store import Access
from ragtune.progress import progress_bar
from ragtune.strategies import is_refusal


@dataclass
class ToneBuild:
    examples: list[dict[str, Any]]  # chat examples in the rag prompt, the voice model's kept answers
    asked: int
    marker: str | None
    rejected: Counter[str] = field(default_factory=Counter)


def verdict(text: str, answers: list[str], marker: str | None) -> str | None:
    """Why an answer is not kept (None: keep it)."""
    if is_refusal(text):
        return "refused"
    if not contains_answer(text, answers):
        return "wrong"
    if marker and marker not in text:
        return "not in the house style"
    return None


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
) -> ToneBuild:
    """The voice model's answers in the hybrid prompt, kept when right and in the house style."""
    built = ToneBuild([], 0, marker)
    progress = progress_bar("distil", console, show_progress)
    with progress:
        task = progress.add_task("distil", total=len(rows), info="")
        for row in rows:
            progress.advance(task)
            answers = [a for a in row.get("answers", []) if a.strip()]
            if not answers:
                built.rejected["no answer to check"] += 1
                continue
            hits = retriever.retrieve(row["question"], k=passages, access=allowed)
            if not hits:
                built.rejected["nothing retrieved"] += 1
                continue
            texts = [format_passage(n, hit, "inline") for n, hit in enumerate(hits, start=1)]
            prompt = rag_messages(row["question"], texts, style="inline", persona=persona)
            built.asked += 1
            text = run_generation(voice, prompt, params).text.strip()
            if reason := verdict(text, answers, marker):
                built.rejected[reason] += 1
            else:
                built.examples.append({"messages": [*prompt, {"role": "assistant", "content": text}]})
            progress.update(task, info=f"{len(built.examples)} kept")
    return built
