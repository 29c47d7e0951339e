"""Retrieval quality on a BEIR-format folder: nDCG@10, Recall@10/100, MRR@10 per mode (pytrec_eval).

ragtune.jobs.beir indexes the corpus in a scratch workspace and calls score_beir.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress

from ragtune.config import RetrievalConfig
from ragtune.errors import EvalError
from ragtune.evaluate.metrics import METRICS, score_run
from ragtune.index.retriever import Retriever
from ragtune.index.store import Access
from ragtune.jsonl import read_objects


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


def score_beir(
    retriever: Retriever,
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    modes: Sequence[str] = ("bm25", "dense", "hybrid"),
    *,
    console: Console | None = None,
    show_progress: bool = True,
) -> dict[str, dict[str, float]]:
    """Each mode's metrics over the judged queries; a document ranks at its best chunk."""
    judged = sorted(qrels)
    vectors = retriever.embedder.embed([queries[q] for q in judged]) if set(modes) - {"bm25"} else None
    settings = retriever.config.model_dump() | {"k": 200, "candidates": max(100, retriever.config.candidates)}
    deep = Retriever(retriever.store, retriever.embedder, RetrievalConfig(**settings))
    results: dict[str, dict[str, float]] = {}
    with Progress(console=console, disable=not show_progress, transient=True) as progress:
        for mode in modes:
            task = progress.add_task(f"searching ({mode})", total=len(judged))
            ranked: dict[str, list[str]] = {}
            for position, query_id in enumerate(judged):
                hits = deep.retrieve(
                    queries[query_id],
                    k=200,
                    mode=mode,
                    access=Access(),
                    query_vector=vectors[position] if vectors is not None else None,
                )
                ranked[query_id] = list(dict.fromkeys(hit.chunk.source for hit in hits))[:100]
                progress.advance(task)
            results[mode] = score_run(qrels, ranked)
    return results


__all__ = ["METRICS", "load_beir", "score_beir"]
