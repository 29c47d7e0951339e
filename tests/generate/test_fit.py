"""Prompt fitting: history is trimmed oldest first, the question is never cut, too long is a clear error."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from ragtune.errors import ContextLengthError
from ragtune.generate import GenerationParams, Message
from ragtune.generate.prompts import base_messages
from ragtune.strategies import STRATEGIES, answer_question, fit_answer_room, fit_history


class WordModel:
    """A fake generator that counts one token per word: enough to test the fitting arithmetic fast."""

    name = "words"

    def __init__(self, context_window: int) -> None:
        self.context_window = context_window
        self.seen: list[Message] = []

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return sum(len(m["content"].split()) + 4 for m in messages)

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[str]:
        self.seen = list(messages)
        yield "ok"


def turns(n: int, words: int = 20) -> list[Message]:
    return [
        Message(role="user" if i % 2 == 0 else "assistant", content=f"turn{i} " + "w " * words)
        for i in range(n)
    ]


def test_history_is_trimmed_oldest_first() -> None:
    model = WordModel(context_window=400)
    params = GenerationParams(max_tokens=100)
    history = turns(40)
    kept, notes = fit_history(model, lambda h: base_messages("how many days?", h), history, params)
    assert 0 < len(kept) < len(history) and kept == history[-len(kept) :], "the newest turns are kept"
    assert model.count_tokens(base_messages("how many days?", kept)) <= 400 - 100
    assert notes and "oldest turns" in notes[0]


def test_a_question_that_cannot_fit_is_a_context_length_error() -> None:
    model = WordModel(context_window=200)
    with pytest.raises(ContextLengthError, match="shorten the question"):
        answer_question("why " * 500, STRATEGIES["base"], model, GenerationParams(max_tokens=50))


def test_a_huge_max_tokens_leaves_half_the_window_for_the_prompt() -> None:
    params, notes = fit_answer_room(WordModel(context_window=2048), GenerationParams(max_tokens=4096))
    assert params.max_tokens == 1024 and "lowered" in notes[0]


def test_base_answers_with_a_long_history_after_trimming() -> None:
    model = WordModel(context_window=300)
    answer = answer_question(
        "Days?", STRATEGIES["base"], model, GenerationParams(max_tokens=50), history=turns(30)
    )
    assert answer.answer == "ok" and model.seen[-1]["content"] == "Days?"
    assert any("oldest turns" in note for note in answer.debug["notes"])  # type: ignore[attr-defined]


def test_lone_surrogates_in_a_question_are_replaced() -> None:
    model = WordModel(context_window=300)
    answer_question("Days \ud800 off?", STRATEGIES["base"], model, GenerationParams(max_tokens=10))
    assert model.seen[-1]["content"] == "Days \ufffd off?"
