"""base | rag | finetuned | hybrid: question -> Answer. The one place where strategies differ.

A strategy is two choices: does it retrieve passages, and does it use a tuned generator. Everything
else (prompt text, timing, citation handling) is shared.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from ragtune.citations import infer_citations, parse_citations, verify_citations
from ragtune.config import DEFAULT_PERSONA
from ragtune.errors import ContextLengthError, RagtuneError
from ragtune.generate import Generation, GenerationParams, Generator, Message, run_generation
from ragtune.generate.prompts import REFUSAL, CitationStyle, base_messages, format_passage, rag_messages
from ragtune.index.retriever import Retriever
from ragtune.index.store import Access
from ragtune.text import scrub
from ragtune.types import Answer, Hit


@dataclass(frozen=True)
class Strategy:
    name: str
    retrieves: bool
    tuned: bool
    summary: str


STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy("base", retrieves=False, tuned=False, summary="the model alone"),
        Strategy("rag", retrieves=True, tuned=False, summary="retrieved passages in the prompt, cited"),
        Strategy("finetuned", retrieves=False, tuned=True, summary="a LoRA-tuned model, no retrieval"),
        Strategy("hybrid", retrieves=True, tuned=True, summary="a tuned model over live retrieval"),
    )
}


def get_strategy(name: str) -> Strategy:
    if name not in STRATEGIES:
        raise RagtuneError(f"unknown strategy {name!r}; use one of {', '.join(STRATEGIES)}")
    return STRATEGIES[name]


def answer_question(
    question: str,
    strategy: Strategy,
    generator: Generator,
    params: GenerationParams,
    *,
    retriever: Retriever | None = None,
    access: Access | None = None,
    passages: int = 4,
    min_relevance: float = 0.3,
    history: Sequence[Message] = (),
    on_token: Callable[[str], None] | None = None,
    citation_style: CitationStyle = "attached",
    persona: str = DEFAULT_PERSONA,
) -> Answer:
    """Answer one question; the caller's access flows into retrieval, so passages are all readable."""
    question = scrub(question)
    history = [Message(role=m["role"], content=scrub(m["content"])) for m in history]
    if not question.strip():
        raise RagtuneError("empty question: ask something")
    params, notes = fit_answer_room(generator, params)
    if not strategy.retrieves:
        history, dropped_notes = fit_history(
            generator, lambda h: base_messages(question, h, persona), history, params
        )
        generation = run_generation(generator, base_messages(question, history, persona), params, on_token)
        return Answer(
            generation.text,
            strategy.name,
            refused=is_refusal(generation.text),
            timings=_timings(0.0, generation),
            debug={"notes": notes + dropped_notes + generation.notes, "generator": generator.name},
        )
    if retriever is None:
        raise RagtuneError(f"strategy {strategy.name!r} needs an index; ingest documents first")
    fit_history(
        generator, lambda h: rag_messages(question, [], h, citation_style, persona), [], params
    )  # fail fast

    started = time.perf_counter()
    hits = retriever.retrieve(question, k=passages, access=access or Access())
    retrieve_ms = round((time.perf_counter() - started) * 1000, 1)
    dense = [h.scores["dense"] for h in hits if "dense" in h.scores]
    relevance = max(dense, default=float("-inf"))
    debug: dict[str, object] = {
        "best_relevance": round(relevance, 4),
        "min_relevance": min_relevance,
        "generator": generator.name,
    }
    if not hits or (dense and relevance < min_relevance):
        if on_token is not None:
            on_token(REFUSAL)
        debug["notes"] = ["no passage is relevant enough; answered without generating"]
        return Answer(
            REFUSAL,
            strategy.name,
            passages=hits,
            refused=True,
            timings=_timings(retrieve_ms, None),
            debug=debug,
        )

    first = [format_passage(1, hits[0], citation_style, max_chars=_MIN_PASSAGE_CHARS)]
    history, dropped_notes = fit_history(
        generator, lambda h: rag_messages(question, first, h, citation_style, persona), history, params
    )
    texts, passage_notes = fit_passages(
        generator, question, hits, history, params.max_tokens, citation_style, persona
    )
    notes += dropped_notes + passage_notes
    given = hits[: len(texts)]
    generation = run_generation(
        generator, rag_messages(question, texts, history, citation_style, persona), params, on_token
    )
    text, citations, dropped = parse_citations(generation.text, given)
    if not citations and not is_refusal(text):
        citations = infer_citations(text, given)
        if citations:
            text = f"{text} " + "".join(f"[{c.n}]" for c in citations)
    debug["notes"] = notes + generation.notes + [f"dropped citation [{n}]: no such passage" for n in dropped]
    refused = is_refusal(text)
    verification = None if refused else verify_citations(text, [h.chunk for h in given], retriever.embedder)
    return Answer(
        text,
        strategy.name,
        citations=citations,
        passages=given,
        refused=refused,
        timings=_timings(retrieve_ms, generation),
        debug=debug,
        verification=verification.to_dict() if verification else None,
    )


def _timings(retrieve_ms: float, generation: Generation | None) -> dict[str, float]:
    """The same keys for every answer; zeros when nothing was generated."""
    return {
        "retrieve_ms": retrieve_ms,
        "ttft_ms": generation.ttft_ms if generation else 0.0,
        "generate_ms": generation.generate_ms if generation else 0.0,
        "tokens_per_s": generation.tokens_per_s if generation else 0.0,
        "completion_tokens": generation.completion_tokens if generation else 0,
    }


_MIN_PASSAGE_CHARS = 80
_TEMPLATE_MARGIN = 16  # tokens of slack: backends estimate the chat template's own tokens


def fit_answer_room(generator: Generator, params: GenerationParams) -> tuple[GenerationParams, list[str]]:
    """At most half the context window goes to the answer, so a huge max_tokens cannot crowd out the prompt."""
    limit = max(16, generator.context_window // 2)
    if params.max_tokens <= limit:
        return params, []
    note = f"max_tokens {params.max_tokens} lowered to {limit}: half of the {generator.context_window}-token context"
    return replace(params, max_tokens=limit), [note]


def fit_history(
    generator: Generator,
    messages_for: Callable[[Sequence[Message]], list[Message]],
    history: Sequence[Message],
    params: GenerationParams,
) -> tuple[list[Message], list[str]]:
    """Drop the oldest turns until the prompt fits; the question itself is never cut.

    `messages_for(history)` builds the smallest prompt the strategy can send with that history. If
    even no history does not fit, the question is too long: ContextLengthError, a clear 400.
    """
    budget = generator.context_window - params.max_tokens - _TEMPLATE_MARGIN
    kept = list(history)
    while kept and generator.count_tokens(messages_for(kept)) > budget:
        kept = kept[1:]
    needed = generator.count_tokens(messages_for(kept))
    if needed > budget:
        raise ContextLengthError(
            f"the question is too long: the prompt needs about {needed} tokens, but the model's "
            f"{generator.context_window}-token context holds {budget} after {params.max_tokens} reserved "
            "for the answer; shorten the question (or lower max_tokens)"
        )
    notes = [f"dropped the {len(history) - len(kept)} oldest turns of history to fit the context"]
    return kept, notes if len(kept) < len(history) else []


def fit_passages(
    generator: Generator,
    question: str,
    hits: Sequence[Hit],
    history: Sequence[Message],
    max_tokens: int,
    style: CitationStyle = "inline",
    persona: str = DEFAULT_PERSONA,
) -> tuple[list[str], list[str]]:
    """Passages that fit the context window with room for the answer; says what it cut."""
    budget = generator.context_window - max_tokens - _TEMPLATE_MARGIN

    def too_long(texts: list[str]) -> bool:
        return generator.count_tokens(rag_messages(question, texts, history, style, persona)) > budget

    texts = [format_passage(n, hit, style) for n, hit in enumerate(hits, start=1)]
    notes: list[str] = []
    while len(texts) > 1 and too_long(texts):
        texts.pop()
    if len(texts) < len(hits):
        notes.append(
            f"kept {len(texts)} of {len(hits)} passages to fit the {generator.context_window}-token context"
        )
    if texts and too_long(texts):
        limit = len(hits[0].chunk.text)
        while limit > _MIN_PASSAGE_CHARS and too_long(texts):
            limit = int(limit * 0.8)
            texts = [format_passage(1, hits[0], style, max_chars=limit)]
        notes.append(f"passage [1] cut to {limit} characters to fit the context")
    return texts, notes


# Ways models say the passages lack the answer; Qwen2.5 0.5B often paraphrases the exact refusal
# ("The documents available to you do not cover this.").
_REFUSALS = (
    "i don't know",
    "i do not know",
    "i'm not sure",
    "cannot find",
    "can't find",
    "do not cover",
    "does not cover",
    "don't cover",
    "do not contain the answer",
    "does not contain the answer",
    "no information",
)


def is_refusal(text: str) -> bool:
    lowered = text.lower().replace("’", "'")
    return any(p in lowered for p in _REFUSALS)
