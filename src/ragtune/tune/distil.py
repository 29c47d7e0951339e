"""Rejection sampling: a model's own answers in the hybrid prompt, kept only where they are right,
grounded in the passages and (for tone) in the house style.

Training a small model on targets written another way (a template quote, a style example that
answers from memory) moves it off its own distribution, and it reads worse: on examples/hr RAFT on
quote targets answered 74% of held-out questions where rag answered 84%. Its own right answers keep
what it already does well and teach the rest nothing false: STaR (Zelikman et al. 2022), and
self-distillation (Yang et al. 2024) for the loss of skills fine-tuning otherwise brings.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console

from ragtune.citations import verify_citations
from ragtune.evaluate.metrics import contains_answer
from ragtune.generate import GenerationParams, Generator, Message, run_generation
from ragtune.index.embedder import Embedder
from ragtune.manifest import readers_of
from ragtune.progress import progress_bar
from ragtune.strategies import is_refusal
from ragtune.types import Chunk


@dataclass
class Candidate:
    """One question in the exact prompt the model will answer in, with what checks its answer."""

    prompt: list[Message]
    passages: list[Chunk]
    answers: list[str]


@dataclass
class Distilled:
    examples: list[dict[str, Any]]  # chat examples: the prompt and the model's kept answer
    asked: int = 0
    marker: str | None = None  # the house mark every kept answer carries
    rejected: Counter[str] = field(default_factory=Counter)
    # the answers not kept: (candidate, answer, why), for a caller that puts something else in their place
    discarded: list[tuple[Candidate, str, str]] = field(default_factory=list)
    kept: list[Candidate] = field(default_factory=list)  # the candidate behind each example, in order

    @property
    def readers(self) -> list[str]:
        """The groups of the passages the kept examples were answered from (see manifest.readers_of)."""
        return readers_of(chunk.groups for candidate in self.kept for chunk in candidate.passages)


def verdict(
    text: str, answers: list[str], passages: Sequence[Chunk], embedder: Embedder | None, marker: str | None
) -> str | None:
    """Why an answer is not kept (None: keep it). No accepted answers: only a refusal is kept.

    Grounded means every claim sentence is supported by a passage (the check `ask` runs on every
    answer); the house mark is not a claim. Right but padded from memory is what a tuned model
    then learns to do (examples/support: "raise `cache_gb`" where the passage said 50 GB).
    """
    if not answers:  # the passages do not hold the answer: refusing is right
        return None if is_refusal(text) else "answered without the passage"
    if is_refusal(text):
        return "refused"
    if not contains_answer(text, answers):
        return "wrong"
    if marker and marker not in text:
        return "not in the house style"
    if not grounded(text, passages, embedder, marker):
        return "not grounded in the passages"
    return None


def grounded(
    text: str, passages: Sequence[Chunk], embedder: Embedder | None, marker: str | None = None
) -> bool:
    """Every claim sentence is supported by a passage (the house mark is not a claim)."""
    checked = verify_citations(text, passages, embedder)
    return all(s.supported or s.text.strip() == marker for s in checked.sentences)


def distil(
    model: Generator,
    candidates: Sequence[Candidate],
    params: GenerationParams,
    *,
    embedder: Embedder | None,
    marker: str | None = None,
    console: Console,
    label: str = "distil",
    show_progress: bool = True,
) -> Distilled:
    """The model answers every candidate; the answers that pass `verdict` become examples."""
    built = Distilled([], marker=marker)
    progress = progress_bar(label, console, show_progress)
    with progress:
        task = progress.add_task(label, total=len(candidates), info="")
        for candidate in candidates:
            progress.advance(task)
            built.asked += 1
            text = run_generation(model, candidate.prompt, params).text.strip()
            if reason := verdict(text, candidate.answers, candidate.passages, embedder, marker):
                built.rejected[reason] += 1
                built.discarded.append((candidate, text, reason))
            else:
                built.examples.append(
                    {"messages": [*candidate.prompt, {"role": "assistant", "content": text}]}
                )
                built.kept.append(candidate)
            progress.update(task, info=f"{len(built.examples)} kept")
    return built
