"""Retrieval quality on a BEIR-format folder: nDCG@10, Recall@10/100, MRR@10 per mode (pytrec_eval).

The corpus is indexed in a scratch workspace kept under the current workspace's state (or the user
cache), through the normal sync path, so a second run re-embeds nothing.
"""

from __future__ import annotations

import csv
import hashlib
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.progress import Progress

from ragtune.config import CONFIG_FILE, RetrievalConfig
from ragtune.errors import EvalError
from ragtune.evaluate.metrics import METRICS, score_run
from ragtune.index.retriever import Retriever
from ragtune.index.store import Access
from ragtune.ingest.sources import RecordSource
from ragtune.jsonl import read_objects
from ragtune.workspace import Workspace, find_workspace


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise EvalError(f"{path}: not found (a BEIR folder has corpus.jsonl, queries.jsonl and qrels/)")
    rows = []
    for where, _, row in read_objects(path, EvalError):
        if "_id" not in row:
            raise EvalError(f'{where}: expected an object with an "_id"')
        rows.append(row)
    return rows


def load_beir(folder: Path, split: str = "test") -> tuple[list[tuple[str, str, str]], dict[str, str], dict]:
    """(corpus records, queries by id, qrels {query: {doc: relevance}}) of a BEIR folder."""
    corpus = [
        (str(r["_id"]), str(r.get("title") or ""), str(r.get("text") or ""))
        for r in _read_jsonl(folder / "corpus.jsonl")
    ]
    queries = {str(r["_id"]): str(r.get("text") or "") for r in _read_jsonl(folder / "queries.jsonl")}
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        available = ", ".join(p.stem for p in (folder / "qrels").glob("*.tsv")) or "none"
        raise EvalError(f"{qrels_path}: not found (splits available: {available})")
    qrels: dict[str, dict[str, int]] = {}
    with qrels_path.open(encoding="utf-8") as handle:
        for number, row in enumerate(csv.reader(handle, delimiter="\t"), start=1):
            if not row or (number == 1 and not row[-1].strip().lstrip("-").isdigit()):
                continue
            if len(row) < 3 or not row[-1].strip().lstrip("-").isdigit():
                raise EvalError(f"{qrels_path}:{number}: expected query-id, corpus-id, score")
            query_id, doc_id, score = row[0], row[-2], int(row[-1])
            if score > 0 and query_id in queries:
                qrels.setdefault(query_id, {})[doc_id] = score
    if not qrels:
        raise EvalError(f"{qrels_path}: no judged queries that appear in queries.jsonl")
    return corpus, queries, qrels


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
    base = parent / ".ragtune" / "eval" if parent else Path.home() / ".cache" / "ragtune" / "eval"
    scratch = base / f"{folder.resolve().name}-{key}"
    scratch.mkdir(parents=True, exist_ok=True)
    if parent is not None:
        shutil.copyfile(parent / CONFIG_FILE, scratch / CONFIG_FILE)
    return Workspace.init(scratch)


__all__ = ["METRICS", "beir_workspace", "evaluate_beir", "load_beir"]


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
        judged = sorted(qrels)
        vectors = ws.embedder.embed([queries[q] for q in judged]) if set(modes) - {"bm25"} else None
        settings = ws.config.retrieval.model_dump() | {
            "k": 200,
            "candidates": max(100, ws.config.retrieval.candidates),
        }
        retriever = Retriever(ws.store, ws.embedder, RetrievalConfig(**settings))
        results: dict[str, dict[str, float]] = {}
        with Progress(console=ws.console, disable=not show_progress, transient=True) as progress:
            for mode in modes:
                task = progress.add_task(f"searching ({mode})", total=len(judged))
                ranked: dict[str, list[str]] = {}
                for position, query_id in enumerate(judged):
                    hits = retriever.retrieve(
                        queries[query_id],
                        k=200,
                        mode=mode,
                        access=Access(),
                        query_vector=vectors[position] if vectors is not None else None,
                    )
                    ranked[query_id] = list(dict.fromkeys(hit.chunk.source for hit in hits))[:100]
                    progress.advance(task)
                results[mode] = score_run(qrels, ranked)
        return {
            "dataset": str(folder),
            "docs": len(corpus),
            "queries": len(judged),
            "index_seconds": report.seconds,
            "chunks_embedded": report.chunks_embedded,
            "results": results,
        }
    finally:
        ws.close()
