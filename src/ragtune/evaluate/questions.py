"""Question sets (compare, synth output, RAFT input): one JSON object a line, validated up front."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ragtune.errors import DataError


def is_unanswerable(question: dict[str, Any]) -> bool:
    """`answers: []` means the right answer is a refusal."""
    return not question.get("answers")


def read_questions(path: Path) -> list[dict[str, Any]]:
    """Question-format JSONL (INTERFACE.md); a bad line is reported as FILE:LINE: reason."""
    if not path.is_file():
        raise DataError(f"{path}: not found")
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: not JSON ({exc.msg})") from exc
            if (
                not isinstance(row, dict)
                or not isinstance(row.get("question"), str)
                or not row["question"].strip()
            ):
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
