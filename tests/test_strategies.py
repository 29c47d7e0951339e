"""Strategy logic with a scripted generator (fast); the real model runs in tests/e2e and tests/generate."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from ragtune.citations import infer_citations, parse_citations
from ragtune.errors import RagtuneError
from ragtune.generate import GenerationParams, Message
from ragtune.generate.prompts import REFUSAL
from ragtune.strategies import STRATEGIES, answer_question, fit_passages, get_strategy, is_refusal
from ragtune.types import Chunk, Hit


def _hit(n: int, text: str, dense: float = 0.8) -> Hit:
    chunk = Chunk(f"d{n}:0", f"d{n}", f"doc{n}.md", f"Doc {n}", text, 0, len(text), heading=("Section",))
    return Hit(chunk, 1.0 / n, {"dense": n}, {"dense": dense})


class ScriptedGenerator:
    """Replies with a fixed text; counts a token per word. Stands in for a model in logic tests only."""

    name = "scripted"

    def __init__(self, reply: str, context_window: int = 4096) -> None:
        self.reply = reply
        self.context_window = context_window
        self.seen: list[Sequence[Message]] = []

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return sum(len(m["content"].split()) for m in messages)

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[str]:
        self.seen.append(messages)
        for word in self.reply.split(" "):
            yield word + " "


class FixedRetriever:
    def __init__(self, hits: list[Hit]) -> None:
        self.hits = hits
        self.embedder = None  # citation checks fall back to lexical support

    def retrieve(self, query: str, k: int | None = None, **_: object) -> list[Hit]:
        return self.hits[:k]


def test_citations_are_parsed_and_invalid_ones_dropped() -> None:
    hits = [_hit(1, "Leave is 25 days."), _hit(2, "Pay day is the 25th.")]
    text, citations, dropped = parse_citations("You get 25 days [1] paid on the 25th [2, 7]. See [9].", hits)
    assert [c.n for c in citations] == [1, 2]
    assert citations[0].chunk.source == "doc1.md"
    assert dropped == [7, 9]
    assert "[7]" not in text and "[9]" not in text and "[2]" in text


def test_uncited_answer_gets_the_best_overlapping_passage_marked_inferred() -> None:
    hits = [
        _hit(1, "Parking is free in Dublin."),
        _hit(2, "Full-time employees receive 25 days of annual leave."),
    ]
    citations = infer_citations("Employees receive 25 days of annual leave.", hits)
    assert [(c.n, c.inferred) for c in citations] == [(2, True)]
    assert infer_citations("Hello there.", hits) == []


def test_passages_are_trimmed_to_fit_the_context_window() -> None:
    hits = [_hit(n, " ".join(["word"] * 100)) for n in range(1, 6)]
    generator = ScriptedGenerator("ok", context_window=400)
    texts, notes = fit_passages(generator, "question?", hits, (), max_tokens=100, style="inline")
    assert 1 <= len(texts) < 5
    assert "to fit the 400-token context" in notes[0]
    tiny = ScriptedGenerator("ok", context_window=150)
    texts, notes = fit_passages(tiny, "question?", hits, (), max_tokens=100)
    assert len(texts) == 1 and any("cut to" in n for n in notes)


def test_rag_refuses_without_generating_when_nothing_is_relevant() -> None:
    generator = ScriptedGenerator("made up")
    retriever = FixedRetriever([_hit(1, "Unrelated text.", dense=0.05)])
    answer = answer_question(
        "What is the CEO's favourite colour?",
        get_strategy("rag"),
        generator,
        GenerationParams(),
        retriever=retriever,
        min_relevance=0.3,
    )  # type: ignore[arg-type]
    assert answer.refused and answer.answer == REFUSAL and answer.citations == []
    assert generator.seen == []


def test_rag_prompt_holds_numbered_passages_and_answer_cites_them() -> None:
    generator = ScriptedGenerator("You get 25 days [1].")
    retriever = FixedRetriever([_hit(1, "Full-time employees receive 25 days."), _hit(2, "Other.")])
    answer = answer_question(
        "How many days?",
        get_strategy("rag"),
        generator,
        GenerationParams(),
        retriever=retriever,
        citation_style="inline",
    )  # type: ignore[arg-type]
    system, user = generator.seen[0][0]["content"], generator.seen[0][-1]["content"]
    assert '<passage id="1" source="doc1.md">' in system and '<passage id="2" source="doc2.md">' in system
    assert user == "How many days?", "the question alone closes the prompt"
    assert [c.n for c in answer.citations] == [1] and not answer.citations[0].inferred
    assert set(answer.timings) >= {"retrieve_ms", "ttft_ms", "generate_ms", "tokens_per_s"}


def test_attached_style_gives_plain_context_and_attaches_the_supporting_passage() -> None:
    generator = ScriptedGenerator("Full-time employees receive 25 days of annual leave.")
    retriever = FixedRetriever([_hit(1, "Parking is free."), _hit(2, "Full-time employees receive 25 days.")])
    answer = answer_question(
        "How many days?",
        get_strategy("rag"),
        generator,
        GenerationParams(),
        retriever=retriever,
        citation_style="attached",
    )  # type: ignore[arg-type]
    prompt = generator.seen[0][-1]["content"]
    assert "[1]" not in prompt and "Parking is free." in prompt
    assert [(c.n, c.inferred) for c in answer.citations] == [(2, True)]
    assert answer.answer.endswith("[2]")


def test_base_strategy_does_not_retrieve() -> None:
    generator = ScriptedGenerator("I think 20 days.")
    answer = answer_question("How many days?", get_strategy("base"), generator, GenerationParams())
    assert answer.passages == [] and answer.citations == []
    assert "Passages" not in generator.seen[0][-1]["content"]


def test_unknown_strategy_and_empty_question_are_clear_errors() -> None:
    assert set(STRATEGIES) == {"base", "rag", "finetuned", "hybrid"}
    with pytest.raises(RagtuneError, match="unknown strategy 'magic'"):
        get_strategy("magic")
    with pytest.raises(RagtuneError, match="empty question"):
        answer_question("  ", get_strategy("base"), ScriptedGenerator("x"), GenerationParams())


def test_paraphrased_refusals_count_as_refusals() -> None:
    assert is_refusal("The documents available to you do not cover this. [3]")
    assert is_refusal("I don’t know.") and is_refusal("The passages contain no information about parking.")
    assert not is_refusal("Full-time employees get 25 days of paid annual leave [1].")
