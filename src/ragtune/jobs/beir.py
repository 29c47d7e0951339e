"""`ragtune eval retrieval`: a BEIR corpus indexed in a scratch workspace, then scored per mode.

The scratch workspace lives under the current workspace's state (or the user cache) and is kept, so
a second run re-embeds nothing.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ragtune.config import CONFIG_FILE
from ragtune.evaluate.retrieval import load_beir, score_beir
from ragtune.index.retriever import Retriever
from ragtune.ingest.sources import RecordSource
from ragtune.layout import Layout, find_workspace
from ragtune.workspace import Workspace


def beir_workspace(folder: Path, workspace: Path | None = None, show_progress: bool = True) -> Workspace:
    """The BEIR corpus indexed in its scratch workspace (re-embedding nothing on a second run)."""
    corpus, _, _ = load_beir(folder)
    ws = _scratch_workspace(folder, workspace)
    ws.sync(RecordSource(corpus, origin="beir"), show_progress=show_progress)
    return ws


def _scratch_workspace(folder: Path, workspace: Path | None) -> Workspace:
    """A workspace for the corpus, with the caller's config, kept so re-runs re-embed nothing."""
    key = hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:10]
    parent = find_workspace(workspace or Path.cwd())
    base = Layout(parent).eval_scratch if parent else Path.home() / ".cache" / "ragtune" / "eval"
    scratch = base / f"{folder.resolve().name}-{key}"
    scratch.mkdir(parents=True, exist_ok=True)
    if parent is not None:
        shutil.copyfile(parent / CONFIG_FILE, scratch / CONFIG_FILE)
    return Workspace.init(scratch)


def evaluate_beir(
    folder: Path,
    modes: Sequence[str] = ("bm25", "dense", "hybrid"),
    split: str = "test",
    workspace: Path | None = None,
    show_progress: bool = True,
) -> dict[str, Any]:
    corpus, queries, qrels = load_beir(folder, split)
    ws = _scratch_workspace(folder, workspace)
    try:
        report = ws.sync(RecordSource(corpus, origin="beir"), show_progress=show_progress)
        plain = Retriever(ws.store, ws.embedder, ws.config.retrieval)  # no rerank step: each mode as it is
        results = score_beir(plain, queries, qrels, modes, console=ws.console, show_progress=show_progress)
        return {
            "dataset": str(folder),
            "docs": len(corpus),
            "queries": len(qrels),
            "index_seconds": report.seconds,
            "chunks_embedded": report.chunks_embedded,
            "results": results,
        }
    finally:
        ws.close()
