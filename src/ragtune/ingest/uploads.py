"""Files sent to the server: a safe name, an atomic place in the uploads folder, undone if not indexed.

An upload replaces the earlier file of the same name only once the new one is indexed; a file that
cannot be parsed leaves the folder and the index exactly as they were.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from ragtune.ingest.sync import IngestReport

MAX_NAME_CHARS = 120  # file systems allow 255 bytes; keep room for the staging and backup names
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]")


def clean_upload_name(raw: str) -> str:
    """The last path part, unsafe characters replaced, cut to MAX_NAME_CHARS keeping the extension.

    Returns "" when nothing usable is left; path traversal ("../x") cannot survive this.
    """
    name = _UNSAFE.sub("_", raw.replace("\\", "/").split("/")[-1]).strip(" .")
    if name in ("", ".", ".."):
        return ""
    if len(name) > MAX_NAME_CHARS:
        stem, dot, suffix = name.rpartition(".")
        if dot and 0 < len(suffix) <= 10:
            name = stem[: MAX_NAME_CHARS - len(suffix) - 1].rstrip(" .") + "." + suffix
        else:
            name = name[:MAX_NAME_CHARS]
    return name


class UploadFolder:
    """The uploads folder of a workspace; `add` is one upload from staged file to indexed document."""

    def __init__(self, folder: Path, staging: Path) -> None:
        self.folder = folder
        self.staging = staging
        folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # uploads of the same name must not interleave their swaps

    def new_staging_dir(self) -> Path:
        path = self.staging / uuid.uuid4().hex
        path.mkdir(parents=True)
        return path

    def add(
        self,
        staged: Path,
        groups: Sequence[str],
        ingest: Callable[[Path, Sequence[str]], IngestReport],
    ) -> IngestReport:
        """Move `staged` into place and index it; on failure (or a crash) put the old file back."""
        final = self.folder / staged.name
        backup = staged.with_name(staged.name + ".previous")
        with self._lock:
            had_previous = final.exists()
            if had_previous:
                os.replace(final, backup)
            os.replace(staged, final)
            try:
                report = ingest(final, groups)
            except BaseException:
                self._restore(final, backup, had_previous)
                raise
            if report.failed:
                self._restore(final, backup, had_previous)
            return report

    @staticmethod
    def _restore(final: Path, backup: Path, had_previous: bool) -> None:
        if had_previous:
            os.replace(backup, final)
        else:
            final.unlink(missing_ok=True)

    def discard(self, staging_dir: Path) -> None:
        shutil.rmtree(staging_dir, ignore_errors=True)
