"""Search at scale: latency per mode, recall@10 against exact search, memory, open time, an edit.

    python bench/search.py [--chunks 100000] [--queries 200] [--ann-min-chunks N]
    python bench/search.py --backend milvus [--milvus-uri URI] [--milvus-index FLAT|HNSW] --chunks 100000

The corpus is N chunks of three sentences each from the HR sample (so BM25 sees a real
vocabulary). A chunk's vector is the sum of its sentences' real MiniLM embeddings plus Gaussian
noise (sigma 0.05 per dimension), normalised: clustered like real embeddings, with neighbours that
share sentences. (Random unit vectors, used before, have no neighbourhood structure at all, so no
ANN index's recall on them says anything about text.) 30% of documents carry one of 10 access
groups; the caller has 2, so the ACL mask is in every query. Queries are the real questions of
examples/hr, embedded by the real MiniLM model per query.

The searches run in a fresh process that opens the saved index, as a server would: its open time
and memory are the index's own, not what building it left behind. Last, five one-document edits
are timed from write to searchable, in that process.

Baselines in the same run: the raw libraries alone on the same arrays (numpy matmul +
argpartition, bm25s.retrieve), with no access filter, fusion or chunk fetch.
With --backend milvus the index is held by a real Milvus 2.3 server (one is started on loopback
unless --milvus-uri names one): dense search runs in the engine (FLAT: exact; HNSW: approximate,
built by the server per sealed segment), BM25 in the process.
Targets (issue 15) at 1M chunks: hybrid p50 <= 20 ms, recall@10 >= 0.95, memory <= 3 GB,
open <= 15 s, a one-document edit searchable in <= 1 s.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import multiprocessing
import random
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from _common import current_rss_mb, percentiles, print_table, rss_parts_mb

from ragtune.config import BUILTIN_EMBEDDER, CONFIG_FILE, update_config
from ragtune.index.embedder import SentenceTransformerEmbedder
from ragtune.index.milvus_server import LocalMilvus
from ragtune.index.milvus_store import MilvusStore
from ragtune.index.segments import bm25_tokens
from ragtune.index.store import Access, DocumentUpdate, Store
from ragtune.types import Chunk, Document, Section
from ragtune.workspace import Workspace

HR = Path(__file__).resolve().parents[1] / "examples" / "hr"
ACCESS = Access.of(["g1", "g2"])
NOISE = 0.05


def sentences() -> list[str]:
    found: list[str] = []
    for line in (HR / "beir" / "corpus.jsonl").read_text().splitlines():
        text = json.loads(line)["text"]
        found.extend(s.strip() for s in text.replace("\n", " ").split(". ") if len(s.split()) > 4)
    return found


def corpus(n: int, sentence_vectors: np.ndarray, seed: int = 0) -> Iterator[DocumentUpdate]:
    """The same N chunks every call (seeded): 10 per document, 30% of documents in one of 10 groups."""
    rng = random.Random(seed)
    nprng = np.random.default_rng(seed)
    pool = sentences()
    per_doc = 10
    for d in range(n // per_doc):
        groups = [f"g{rng.randrange(10)}"] if rng.random() < 0.3 else []
        picks = [rng.sample(range(len(pool)), 3) for _ in range(per_doc)]
        texts = [". ".join(pool[i] for i in pick) for pick in picks]
        body = "\n\n".join(texts)
        doc = Document(f"doc-{d}.md", "bench", f"Doc {d}", body, [Section(body, 0)], groups, {}, str(d))
        chunks = [
            Chunk(f"{doc.doc_id}:{i}", doc.doc_id, doc.source, doc.title, t, 0, len(t), groups=groups)
            for i, t in enumerate(texts)
        ]
        vectors = sentence_vectors[np.array(picks)].sum(axis=1)
        vectors += NOISE * nprng.standard_normal(vectors.shape).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        yield DocumentUpdate(doc, chunks, vectors.astype(np.float32))


def build(store: Store, n: int, sentence_vectors: np.ndarray) -> None:
    """Write the corpus through the Store protocol, 1,000 documents per transaction."""
    updates = corpus(n, sentence_vectors)
    while batch := list(itertools.islice(updates, 1_000)):
        store.write(batch)


def search_in_fresh_process(root: str, questions: list[str]) -> dict[str, Any]:
    """Open the saved workspace, search it, edit it; the figures (run in a spawned process)."""
    ws = Workspace.open(Path(root))
    ws.embedder.embed(["warm up"])
    memory_model = current_rss_mb()
    started = time.perf_counter()
    ws.store.refresh()
    figures: dict[str, Any] = {"open_s": time.perf_counter() - started}
    figures["memory_index_mb"] = current_rss_mb() - memory_model
    for mode in ("dense", "bm25", "hybrid"):
        ws.retriever.retrieve(questions[0], k=10, mode=mode, access=ACCESS)
        samples = []
        for question in questions:
            started = time.perf_counter()
            ws.retriever.retrieve(question, k=10, mode=mode, access=ACCESS)
            samples.append(time.perf_counter() - started)
        figures[mode] = samples
    vectors = [ws.embedder.embed([q])[0] for q in questions]
    for mode in ("dense", "hybrid"):
        samples = []
        for question, vector in zip(questions, vectors, strict=True):
            started = time.perf_counter()
            ws.retriever.retrieve(question, k=10, mode=mode, access=ACCESS, query_vector=vector)
            samples.append(time.perf_counter() - started)
        figures[f"{mode}, query vector given"] = samples
    figures["dense_top10"] = [
        [c for c, _ in ws.store.search_dense(ws.embedder.embed([q])[0], 10, ACCESS)] for q in questions
    ]
    figures["memory_searching_mb"] = current_rss_mb() - memory_model
    figures["memory_process_mb"] = current_rss_mb()
    figures["memory_parts_mb"] = rss_parts_mb()
    figures["edit"] = [edit_until_searchable(ws, i) for i in range(5)]
    ws.close()
    return figures


def edit_until_searchable(ws: Workspace, i: int) -> float:
    """Seconds from writing a new version of one document to finding its new word in a search."""
    word = f"zebrafinch{i}"
    text = f"The {word} policy replaces the old one. Edits are searchable at once."
    doc = Document(f"doc-{i}.md", "bench", f"Doc {i}", text, [Section(text, 0)], [], {}, f"edit-{i}")
    chunk = Chunk(f"{doc.doc_id}:0", doc.doc_id, doc.source, doc.title, text, 0, len(text))
    started = time.perf_counter()
    ws.store.write([DocumentUpdate(doc, [chunk], ws.embedder.embed([chunk.index_text]))])
    hits = ws.retriever.retrieve(word, k=1, mode="hybrid", access=ACCESS)
    assert hits and word in hits[0].chunk.text, "the edited document was not found"
    return time.perf_counter() - started


def raw_baseline(
    n: int, sentence_vectors: np.ndarray
) -> tuple[list[str], np.ndarray, np.ndarray, Any, Any, float]:
    """The same chunks in the raw libraries alone: ids, readable mask, matrix, bm25s index, stemmer, build s."""
    import bm25s
    import Stemmer

    ids: list[str] = []
    readable: list[bool] = []
    vectors: list[np.ndarray] = []
    texts: list[str] = []
    for update in corpus(n, sentence_vectors):
        ids.extend(c.chunk_id for c in update.chunks)
        readable.extend(ACCESS.may_read(c.groups) for c in update.chunks)
        vectors.append(update.vectors)
        texts.extend(c.index_text for c in update.chunks)
    stemmer = Stemmer.Stemmer("english")
    started = time.perf_counter()
    bm25 = bm25s.BM25()
    bm25.index(bm25_tokens(texts, stemmer), show_progress=False)
    return ids, np.array(readable), np.concatenate(vectors), bm25, stemmer, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--ann-min-chunks", type=int, default=None, help="[index] ann_min_chunks (default 200k)"
    )
    parser.add_argument("--backend", choices=["local", "milvus"], default="local")
    parser.add_argument("--milvus-uri", default=None, help="a running Milvus (default: start one here)")
    parser.add_argument("--milvus-index", choices=["FLAT", "HNSW"], default="FLAT")
    parser.add_argument("--ef-search", type=int, default=None, help="[index] ef_search (default 128)")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        index: dict[str, Any] = {}
        if args.ann_min_chunks is not None:
            index["ann_min_chunks"] = args.ann_min_chunks
        if args.ef_search is not None:
            index["ef_search"] = args.ef_search
        if args.backend == "milvus":
            uri = args.milvus_uri or stack.enter_context(
                LocalMilvus(Path(stack.enter_context(tempfile.TemporaryDirectory())))
            )
            collection = f"bench_{int(time.time())}"
            index.update(backend="milvus", uri=uri, collection=collection, milvus_index=args.milvus_index)
        run(args, index)


def run(args: argparse.Namespace, index: dict[str, Any]) -> None:
    questions = [json.loads(line)["question"] for line in (HR / "questions.jsonl").read_text().splitlines()]
    questions = (questions * (args.queries // len(questions) + 1))[: args.queries]

    with tempfile.TemporaryDirectory() as tmp:
        if index:
            Workspace.init(tmp).close()
            update_config(Path(tmp) / CONFIG_FILE, "index", index)
        ws = Workspace.init(tmp)
        sentence_vectors = ws.embedder.embed(sentences()).astype(np.float32)
        started = time.perf_counter()
        build(ws.store, args.chunks, sentence_vectors)
        write_s = time.perf_counter() - started
        seal_s = 0.0
        if isinstance(ws.store, MilvusStore):  # searched next: the server's graph, not its interim index
            started = time.perf_counter()
            ws.store.seal()
            seal_s = time.perf_counter() - started
        started = time.perf_counter()
        ws.store.refresh()
        base_s = time.perf_counter() - started
        disk_mb = ws.stats().get("disk_bytes", float("nan")) / 1e6  # Milvus: on the server
        ws.close()
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            figures = pool.apply(search_in_fresh_process, (tmp, questions))
        if index.get("backend") == "milvus":
            Workspace.open(Path(tmp)).store.drop()

        ids, readable, matrix, bm25, stemmer, raw_build_s = raw_baseline(args.chunks, sentence_vectors)
        modes = ("dense", "bm25", "hybrid", "dense, query vector given", "hybrid, query vector given")
        rows: list[list[Any]] = [[f"ragtune {m} (ACL, k=10)", *percentiles(figures[m])] for m in modes]
        embedder = SentenceTransformerEmbedder(BUILTIN_EMBEDDER)
        recalls, embed_samples, raw_dense, raw_bm25 = [], [], [], []
        for question, found in zip(questions, figures["dense_top10"], strict=True):
            started = time.perf_counter()
            vector = embedder.embed([question])[0]
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
            scores[~readable] = -np.inf
            exact = {ids[i] for i in np.argpartition(-scores, 10)[:10]}
            recalls.append(len(exact & set(found)) / 10)
        rows += [
            ["one-document edit: write -> found by hybrid", *percentiles(figures["edit"])],
            ["baseline: query embedding only", *percentiles(embed_samples)],
            ["baseline: raw numpy top-10 (no ACL)", *percentiles(raw_dense)],
            ["baseline: raw bm25s top-10 (no ACL)", *percentiles(raw_bm25)],
        ]

    ann = args.chunks >= (args.ann_min_chunks if args.ann_min_chunks is not None else 200_000)
    dense = "HNSW" if ann else "exact"
    if index.get("backend") == "milvus":
        dense = f"Milvus {args.milvus_index}" + (" (exact)" if args.milvus_index == "FLAT" else "")
    sealed = f"server index {seal_s:.1f} s, " if seal_s else ""
    print_table(
        f"search: {args.chunks:,} chunks on {args.backend}, {len(questions)} queries, dense {dense} "
        f"(write {write_s:.1f} s, {sealed}base build {base_s:.1f} s vs raw bm25s index {raw_build_s:.1f} s, "
        f"disk {disk_mb:.0f} MB)",
        ["what", "p50 ms", "p95 ms"],
        rows,
    )
    print_table(
        "index in a fresh process",
        ["figure", "value"],
        [
            ["open (load the saved base) s", figures["open_s"]],
            ["recall@10 of dense vs exact (ACL on)", float(np.mean(recalls))],
            ["memory: index after open MB", figures["memory_index_mb"]],
            ["memory: index after searching MB", figures["memory_searching_mb"]],
            ["memory: whole process (embedder included) MB", figures["memory_process_mb"]],
            [
                "  of which anonymous / file-backed (mapped page cache) MB",
                "{RssAnon:.0f} / {RssFile:.0f}".format(**figures["memory_parts_mb"]),
            ],
        ],
    )


if __name__ == "__main__":
    main()
