"""Question sets (compare, synth output, RAFT input): one JSON object a line, validated up front."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ragtune.errors import DataError
from ragtune.jsonl import read_objects


def is_unanswerable(question: dict[str, Any]) -> bool:
    """`answers: []` means the right answer is a refusal."""
    return not question.get("answers")


def read_questions(path: Path) -> list[dict[str, Any]]:
    """Question-format JSONL (INTERFACE.md); a bad line is reported as FILE:LINE: reason."""
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for where, number, row in read_objects(path):
        if not isinstance(row.get("question"), str) or not row["question"].strip():
            raise DataError(f'{where}: expected an object with a non-empty "question"')
        answers = row.get("answers", [])
        if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
            raise DataError(f'{where}: "answers" must be a list of strings')
        if not isinstance(row.get("gold_doc"), str | None):
            raise DataError(f'{where}: "gold_doc" must be a source path or null')
        row.setdefault("id", f"line-{number}")
        if str(row["id"]) in seen:
            raise DataError(f"{where}: duplicate id {row['id']!r}")
        seen.add(str(row["id"]))
        row.setdefault("answers", [])
        row.setdefault("category", "unanswerable" if not row["answers"] else "fact")
        rows.append(row)
    if not rows:
        raise DataError(f"{path}: no questions")
    return rows
