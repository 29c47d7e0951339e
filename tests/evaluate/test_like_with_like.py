"""compare names the base model of every strategy, says when they differ, and never mixes setups."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ragtune.errors import EvalError
from ragtune.evaluate.compare import CompareRun, name_base_models


def _rows(*names: str) -> dict[str, dict[str, Any]]:
    return {name: {"accuracy": 0.5} for name in names}


def test_strategies_without_an_adapter_run_on_the_generator() -> None:
    summary = _rows("base", "rag")
    assert name_base_models(summary, {}, "builtin:qwen") is None
    assert [row["base_model"] for row in summary.values()] == ["builtin:qwen", "builtin:qwen"]


def test_an_adapter_on_the_rag_model_is_like_with_like() -> None:
    summary = _rows("rag", "hybrid")
    assert name_base_models(summary, {"hybrid": {"base_model": "builtin:qwen"}}, "builtin:qwen") is None
    assert summary["hybrid"]["base_model"] == "builtin:qwen"


def test_an_adapter_on_another_base_is_named_in_a_note() -> None:
    summary = _rows("rag", "finetuned")
    note = name_base_models(summary, {"finetuned": {"base_model": "builtin:smollm2"}}, "builtin:qwen")
    assert (
        summary["finetuned"]["base_model"] == "builtin:smollm2"
        and summary["rag"]["base_model"] == "builtin:qwen"
    )
    assert note == (
        "not like with like: the strategies ran on different base models "
        "(rag: builtin:qwen, finetuned: builtin:smollm2)"
    )


def test_a_resumed_compare_refuses_answers_of_another_adapter(tmp_path: Path) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"question": "How many days?", "answers": ["25"]}\n')
    setup = {"generator": "builtin:qwen", "adapters": {"hybrid": ["raft", "sha-a", 23]}}
    CompareRun(questions, ["rag", "hybrid"], tmp_path / "run", setup).open()
    assert CompareRun(questions, ["rag", "hybrid"], tmp_path / "run", setup).open() == [], (
        "same setup resumes"
    )
    retrained = {"generator": "builtin:qwen", "adapters": {"hybrid": ["raft", "sha-b", 23]}}
    with pytest.raises(EvalError, match="holds answers of another model or adapter"):
        CompareRun(questions, ["rag", "hybrid"], tmp_path / "run", retrained).open()
