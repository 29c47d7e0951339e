"""`ragtune ask` end to end: real index, real MiniLM, real SmolLM2 through llama.cpp."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.slow  # real models or a real server: `pytest -m "not slow"` skips these


def ask(ws: Path, *args: str) -> dict:
    return json.loads(run_cli("ask", *args, "--json", cwd=ws).stdout)


def test_rag_answer_cites_the_policy_it_comes_from(hr_cli_workspace: Path) -> None:
    answer = ask(hr_cli_workspace, "How many days of paid annual leave do full-time employees get per year?")
    assert answer["strategy"] == "rag" and answer["answer"] and not answer["refused"]
    assert "25" in answer["answer"]
    assert answer["citations"], "an answer from the documents carries its source"
    citation = answer["citations"][0]
    assert citation["source"] == "policies/annual-leave.md"
    assert {"n", "source", "title", "text", "location"} <= set(citation)
    assert f"[{citation['n']}]" in answer["answer"]
    given = {p["n"]: p["source"] for p in answer["passages"]}
    assert all(given[c["n"]] == c["source"] for c in answer["citations"])
    timings = answer["timings"]
    assert timings["retrieve_ms"] > 0 and timings["generate_ms"] > 0 and timings["tokens_per_s"] > 0


def test_unanswerable_question_is_refused(hr_cli_workspace: Path) -> None:
    answer = ask(hr_cli_workspace, "What is the CEO's favourite colour?")
    assert answer["refused"] and answer["citations"] == []
    assert "don't know" in answer["answer"]


def test_restricted_document_never_reaches_a_caller_outside_its_group(hr_cli_workspace: Path) -> None:
    question = "What is the salary band midpoint for a Senior Engineer?"
    outsider = ask(hr_cli_workspace, question)
    assert outsider["passages"], "the outsider got passages, none of them restricted"
    assert all(p["source"] != "policies/salary-bands.md" for p in outsider["passages"])
    assert all(c["source"] != "policies/salary-bands.md" for c in outsider["citations"])
    assert "69,000" not in outsider["answer"]
    insider = ask(hr_cli_workspace, question, "--as-user", "dana")
    assert "policies/salary-bands.md" in [p["source"] for p in insider["passages"]]


def test_base_strategy_answers_without_sources_and_stream_prints_tokens(hr_cli_workspace: Path) -> None:
    base = ask(
        hr_cli_workspace,
        "How many days of paid annual leave do full-time employees get per year?",
        "--strategy",
        "base",
    )
    assert base["strategy"] == "base" and base["answer"]
    assert base["passages"] == [] and base["citations"] == [] and base["timings"]["retrieve_ms"] == 0
    streamed = run_cli("ask", "Who is the office manager in Lisbon?", "--stream", cwd=hr_cli_workspace)
    assert "rag · retrieve" in streamed.stdout


def test_bad_questions_and_strategies_are_one_line_errors(hr_cli_workspace: Path) -> None:
    for args, message in (
        (["  "], "empty question"),
        (["hi", "--strategy", "magic"], "unknown strategy"),
        (["hi", "--strategy", "finetuned"], "no tuned generator in this workspace yet"),
    ):
        result = run_cli("ask", *args, cwd=hr_cli_workspace, check=False)
        assert result.returncode == 1 and message in result.stderr and "Traceback" not in result.stderr


def test_chat_keeps_a_conversation_over_stdin(hr_cli_workspace: Path) -> None:
    import os
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "ragtune.cli", "chat"],
        input="How many days of paid annual leave do full-time employees get per year?\n"
        "What is the CEO's favourite colour?\n\n",
        cwd=hr_cli_workspace,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("you>") >= 2
    assert "policies/annual-leave.md" in result.stdout
    assert "don't know" in result.stdout
