"""JSON Lines input, read the same way everywhere: one object a line, errors as FILE:LINE: reason."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ragtune.errors import DataError


def read_objects(path: Path, error: type[Exception] = DataError) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """(where, line number, object) for each non-blank line; `error` is raised for a missing file,
    a line that is not JSON, or a line that is not an object."""
    if not path.is_file():
        raise error(f"{path}: not found")
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise error(f"{where}: not valid JSON ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise error(f"{where}: expected a JSON object")
            yield where, number, row
