"""manifest.json: what a trained adapter or tuned embedder says about itself, written atomically.

A folder counts as finished once its manifest exists, so a manifest must never be half written: it
goes to a temporary file beside it first and is renamed into place (readers see the old one or the
new one).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ragtune.errors import WorkspaceError
from ragtune.version import __version__

MANIFEST = "manifest.json"
READERS = "readers"


def readers_of(groups: Iterable[Iterable[str]]) -> list[str]:
    """A trained model's readers: the union of the access groups of everything it learnt from.

    Weights cannot apply retrieval's per-chunk access, so a caller must hold every one of them to use
    the model; [] means it learnt from public text only.
    """
    return sorted({group for chunk_groups in groups for group in chunk_groups})


def write_json_atomic(path: Path, data: Any) -> None:
    """JSON to `path` through a temporary file and a rename: no reader ever sees half a file."""
    _write_atomic(path, lambda out: json.dump(data, out, indent=2, ensure_ascii=False))


def write_text_atomic(path: Path, text: str) -> None:
    """Text to `path` the same way (several writers of the same file are safe too)."""
    _write_atomic(path, lambda out: out.write(text))


def _write_atomic(path: Path, write: Callable[[TextIO], object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")  # one per writer
    try:
        with temp.open("w", encoding="utf-8") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


@dataclass
class Manifest:
    folder: Path
    data: dict[str, Any]

    @staticmethod
    def exists(folder: Path) -> bool:
        return (folder / MANIFEST).is_file()

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        path = folder / MANIFEST
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise WorkspaceError(f"{path}: missing; the folder is not a finished run") from exc
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise WorkspaceError(f"{path}: unreadable ({exc}); retrain or delete the folder") from exc
        if not isinstance(data, dict):
            raise WorkspaceError(f"{path}: expected a JSON object")
        return cls(folder, data)

    @staticmethod
    def names(parent: Path) -> list[str]:
        """The folders under `parent` that hold a finished run, without reading them."""
        return sorted(p.parent.name for p in parent.glob(f"*/{MANIFEST}"))

    @classmethod
    def newest_first(cls, parent: Path) -> list[Manifest]:
        """The finished runs under `parent`, most recently written first."""
        paths = sorted(parent.glob(f"*/{MANIFEST}"), key=lambda p: p.stat().st_mtime)
        return [cls.read(p.parent) for p in reversed(paths)]  # on equal times, the last listed first

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    @property
    def kind(self) -> str:
        return str(self.data.get("kind", ""))

    @property
    def readers(self) -> list[str] | None:
        """The groups a caller must hold all of to use this model (see readers_of); None when the run
        predates the record, which a reader must treat as learnt from every group (fail closed)."""
        recorded = self.data.get(READERS)
        if not isinstance(recorded, list):
            return None
        return sorted({str(group) for group in recorded})

    def write(self) -> None:
        """Stamped with the time and ragtune version on first write; atomic."""
        self.data.setdefault("created_at", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        self.data.setdefault("ragtune_version", __version__)
        write_json_atomic(self.folder / MANIFEST, self.data)
