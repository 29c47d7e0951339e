"""Freshness edits: a fact that changes (file, old text, new text, the question and both answers).

ragtune.jobs.freshness applies one to a scratch copy of the workspace and times each strategy.
"""

from __future__ import annotations

import json
from pathlib import Path

from ragtune.errors import EvalError

EDIT_KEYS = ("file", "old", "new", "question", "old_answer", "new_answer")


def read_edit(path: Path) -> dict[str, str]:
    try:
        edit = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise EvalError(f"{path}: not found") from exc
    except json.JSONDecodeError as exc:
        raise EvalError(f"{path}: not JSON ({exc.msg})") from exc
    missing = [key for key in EDIT_KEYS if not isinstance(edit.get(key), str) or not edit[key]]
    if missing:
        raise EvalError(f"{path}: missing or empty {', '.join(missing)} (needs {', '.join(EDIT_KEYS)})")
    return {key: edit[key] for key in EDIT_KEYS}
