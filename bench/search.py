"""Search latency at scale: p50/p95 per mode, query embedding included, and memory.

    python bench/search.py [--chunks 100000] [--queries 200]

The corpus is N chunks whose texts are mixed from the HR sample's sentences (so BM25 sees a real
vocabulary) and whose vectors are random unit vectors (dense latency does not depend on content;
embedding 100,000 chunks on 2 CPU cores would take an hour). 30% of chunks carry one of 10 access
groups; the caller has 2 of them, so the ACL mask is exercised on every query. Queries are real
questions from examples/hr/questions.jsonl, embedded by the real MiniLM model per query.

Baseline in the same run: the raw libraries alone on the same arrays (numpy matmul + argpartition,
bm25s.retrieve) with no access filter, fusion, or chunk fetch. Target: hybrid p50 <= 15 ms.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from _common import current_rss_mb, percentiles, print_table

from ragtune.index.segments import bm25_tokens
from ragtune.index.store import Access, DocumentUpdate, Store
from ragtune.types import Chunk, Document, Section
from ragtune.workspace import Workspace

HR = Path(__file__).resolve().parents[1] / "examples" / "hr"


def sentences() -> list[str]:
    found: list[str] = []
    for line in (HR / "beir" / "corpus.jsonl").read_text().splitlines():
        text = json.loads(line)["text"]
        found.extend(s.strip() for s in text.replace("\n", " ").split(". ") if len(s.split()) > 4)
    return found


def corpus(n: int, dim: int, seed: int = 0) -> Iterator[DocumentUpdate]:
    """The same N chunks every call (seeded): 10 per document, 30% of documents in one of 10 groups."""
    rng = random.Random(seed)
    nprng = np.random.default_rng(seed)
    pool = sentences()
    per_doc = 10
    for d in range(n // per_doc):
        groups = [f"g{rng.randrange(10)}"] if rng.random() < 0.3 else []
        texts = [". ".join(rng.sample(pool, 3)) for _ in range(per_doc)]
        body = "\n\n".join(texts)
        doc = Document(f"doc-{d}.md", "bench", f"Doc {d}", body, [Section(body, 0)], groups, {}, str(d))
        chunks = [
            Chunk(f"{doc.doc_id}:{i}", doc.doc_id, doc.source, doc.title, t, 0, len(t), groups=groups)
            for i, t in enumerate(texts)
        ]
        vectors = nprng.standard_normal((per_doc, dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        yield DocumentUpdate(doc, chunks, vectors)


def build(store: Store, n: int, dim: int) -> None:
    """Write the corpus through the Store protocol, 1,000 documents per transaction."""
    updates = corpus(n, dim)
    while batch := list(itertools.islice(updates, 1_000)):
        store.write(batch)


def raw_baseline(n: int, dim: int) -> tuple[np.ndarray, Any, Any, float]:
    """The same chunks in the raw libraries alone: a numpy matrix and a bm25s index (and its build s)."""
    import bm25s
    import Stemmer

    vectors: list[np.ndarray] = []
    texts: list[str] = []
    for update in corpus(n, dim):
        vectors.append(update.vectors)
        texts.extend(c.index_text for c in update.chunks)
    stemmer = Stemmer.Stemmer("english")
    started = time.perf_counter()
    bm25 = bm25s.BM25()
    bm25.index(bm25_tokens(texts, stemmer), show_progress=False)
    return np.concatenate(vectors), bm25, stemmer, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    questions = [json.loads(line)["question"] for line in (HR / "questions.jsonl").read_text().splitlines()]
    questions = (questions * (args.queries // len(questions) + 1))[: args.queries]

    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.init(tmp)
        memory_start = current_rss_mb()
        ws.embedder.embed(["warm up"])
        memory_model = current_rss_mb()
        started = time.perf_counter()
        build(ws.store, args.chunks, ws.embedder.dim)
        write_s = time.perf_counter() - started
        started = time.perf_counter()
        ws.store.refresh()
        snapshot_s = time.perf_counter() - started
        memory_index = current_rss_mb()
        access = Access.of(["g1", "g2"])

        rows = []
        for mode in ("dense", "bm25", "hybrid"):
            ws.retriever.retrieve(questions[0], k=10, mode=mode, access=access)
            samples = []
            for question in questions:
                started = time.perf_counter()
                ws.retriever.retrieve(question, k=10, mode=mode, access=access)
                samples.append(time.perf_counter() - started)
            rows.append([f"ragtune {mode} (ACL, k=10)", *percentiles(samples)])

        disk_mb = ws.stats()["disk_bytes"] / 1e6
        matrix, bm25, stemmer, raw_build_s = raw_baseline(args.chunks, ws.embedder.dim)
        embed_samples, raw_dense, raw_bm25 = [], [], []
        for question in questions:
            started = time.perf_counter()
            vector = ws.embedder.embed([question])[0]
            embed_samples.append(time.perf_counter() - started)
            started = time.perf_counter()
            scores = matrix @ vector
            top = np.argpartition(-scores, 10)[:10]
            top[np.argsort(-scores[top])]
            raw_dense.append(time.perf_counter() - started)
            started = time.perf_counter()
            tokens = [t for t in bm25_tokens([question], stemmer).vocab if t in bm25.vocab_dict]
            bm25.retrieve([tokens], k=10, show_progress=False)
            raw_bm25.append(time.perf_counter() - started)
        rows += [
            ["baseline: query embedding only", *percentiles(embed_samples)],
            ["baseline: raw numpy top-10 (no ACL)", *percentiles(raw_dense)],
            ["baseline: raw bm25s top-10 (no ACL)", *percentiles(raw_bm25)],
        ]
        ws.close()

    print_table(
        f"search: {args.chunks:,} chunks, {len(questions)} queries (write {write_s:.1f} s, "
        f"snapshot {snapshot_s:.1f} s vs raw bm25s index {raw_build_s:.1f} s, disk {disk_mb:.0f} MB)",
        ["what", "p50 ms", "p95 ms"],
        rows,
    )
    print_table(
        "memory (RSS)",
        ["stage", "MB"],
        [["start", memory_start], ["+ embedder", memory_model], ["+ index loaded", memory_index]],
    )


if __name__ == "__main__":
    main()
