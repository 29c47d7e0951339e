"""Synthetic question-answer pairs: the span and check logic by hand, then a real SmolLM2 run."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragtune.tune.data import load_examples
from ragtune.tune.synth import answer_spans, check_question, split_sentences
from ragtune.types import Chunk
from tests.tune.conftest import read_jsonl

LEAVE = Chunk(
    "c1",
    "d1",
    "leave.md",
    "Annual Leave Policy",
    "Full-time employees receive 25 days of paid annual leave per calendar year.",
    0,
    70,
    ("Entitlement",),
)


def test_answer_spans_are_counted_things_amounts_dates_and_times() -> None:
    assert answer_spans("Full-time employees receive 25 days of paid annual leave.") == ["25 days"]
    assert answer_spans("You may work abroad for 30 working days a year.") == ["30 working days"]
    assert answer_spans("The allowance is EUR 1,200 per year.") == ["1,200"]
    assert answer_spans("Mileage is paid at £0.45 per mile.") == ["£0.45"]
    assert answer_spans("We close at 17:00 on 24 July 2026.") == ["17:00", "24 July 2026"]
    assert answer_spans("Income protection replaces 65% of base salary.") == ["65%"]
    assert answer_spans("Leave accrues in equal monthly instalments.") == []


def test_sentences_skip_headings_and_split_on_full_stops() -> None:
    text = "# Entitlement\n\nYou get 25 days. Public holidays come on top.\n- Carry over up to 5 days."
    assert split_sentences(text) == [
        "You get 25 days.",
        "Public holidays come on top.",
        "Carry over up to 5 days.",
    ]


def test_check_question_drops_giveaways_and_off_topic_questions() -> None:
    assert (
        check_question("How many days of paid annual leave do full-time employees get?", "25 days", LEAVE)
        is None
    )
    assert (
        check_question("Do full-time employees get 25 days of leave?", "25 days", LEAVE)
        == "gives the answer away"
    )
    assert (
        check_question("How long does the warranty cover parts?", "25 days", LEAVE) == "not about the chunk"
    )
    assert check_question("Annual leave days", "25 days", LEAVE) == "not a question"


@pytest.mark.slow  # a real model
def test_synth_writes_checked_questions_split_by_chunk(synth_workspace: tuple[Path, dict]) -> None:
    _, report = synth_workspace
    assert report["questions"] >= 8, report
    questions = read_jsonl(Path(report["out"]))
    assert len(questions) == report["questions"] == report["train"] + report["val"]
    assert report["val"] >= 1 and report["train"] >= 1
    for q in questions:
        assert {"id", "question", "answers", "gold_doc", "category"} <= set(q)
        assert q["question"].endswith("?") and q["answers"][0] in q["evidence"]
        assert q["answers"][0].lower() not in q["question"].lower()
        assert q["gold_doc"].endswith(".md")
    assert len({q["question"].lower() for q in questions}) == len(questions), "duplicates are dropped"
    train_chunks = {q["chunk_id"] for q in questions if q["split"] == "train"}
    val_chunks = {q["chunk_id"] for q in questions if q["split"] == "val"}
    assert not train_chunks & val_chunks, "validation asks about chunks training never saw"


@pytest.mark.slow  # a real model
def test_synth_never_uses_restricted_documents(synth_workspace: tuple[Path, dict]) -> None:
    _, report = synth_workspace
    assert report["skipped_restricted_chunks"] > 0, "salary-bands.md is restricted to group hr"
    questions = read_jsonl(Path(report["out"]))
    assert all("salary-bands" not in q["gold_doc"] for q in questions)


@pytest.mark.slow  # a real model
def test_synth_chat_data_is_valid_training_data(synth_workspace: tuple[Path, dict]) -> None:
    _, report = synth_workspace
    train = load_examples(Path(report["train_chat"]))
    assert len(train) == report["train"]
    assert all(example.completion.strip() for example in train)
