"""Fine-tune the embedder on the domain, measure it, and switch the index to it without downtime.

pairs (given, or synthesised from the index) -> split by chunk -> hard negatives mined from the
current index -> sentence-transformers with MultipleNegativesRankingLoss -> dense nDCG@10 before and
after on the held-out pairs -> the whole index re-embedded into a new folder -> one atomic pointer
switch (.ragtune/active.json). Until that switch the old index answers every search.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from ragtune.config import RetrieverTuneConfig
from ragtune.errors import DataError, TuneError
from ragtune.evaluate.metrics import score_run
from ragtune.index.embedder import EmbeddingCache, SentenceTransformerEmbedder, embed_with_cache
from ragtune.index.retriever import Retriever
from ragtune.index.store import Access
from ragtune.jsonl import read_objects
from ragtune.manifest import READERS, Manifest, readers_of
from ragtune.progress import progress_callback
from ragtune.tune.data import file_hash
from ragtune.types import Chunk


@dataclass
class Pair:
    """A query and the text that answers it; `doc` is the relevance key used for evaluation."""

    query: str
    positive: str
    doc: str
    split: str = "train"
    negative: str | None = None
    groups: frozenset[str] = frozenset()  # of the index chunks behind the positive and the negative


@dataclass
class RetrieverTuneReport:
    model: str
    pairs: dict[str, int]
    before: dict[str, float]
    after: dict[str, float]
    steps: int
    seconds: float
    switched: bool
    reembedded_chunks: int = 0
    reembed_seconds: float = 0.0
    index: str = ""
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_pairs(
    path: Path,
    chunks_by_id: dict[str, Chunk],
    val_fraction: float,
    seed: int,
    *,
    allowed: Access | None = None,
) -> list[Pair]:
    """{"query", "positive"[, "negative"]} lines, or question-format lines with a chunk_id (synth output).

    Question lines keep their own split; plain pairs get a seeded validation share. A line naming a
    chunk `allowed` may not read is refused: its text would reach the weights of a model all may use.
    """
    pairs: list[Pair] = []
    for where, _, row in read_objects(path):
        if isinstance(row.get("query"), str) and isinstance(row.get("positive"), str):
            negative = row.get("negative")
            key = "text:" + hashlib.sha1(row["positive"].encode()).hexdigest()[:16]
            pairs.append(Pair(row["query"], row["positive"], key, "", negative))
        elif isinstance(row.get("question"), str) and row.get("chunk_id"):
            chunk = chunks_by_id.get(str(row["chunk_id"]))
            if chunk is None:
                raise DataError(f"{where}: chunk {row['chunk_id']!r} is not in the index (re-run synth)")
            if allowed is not None and not allowed.may_read(chunk.groups):
                raise DataError(
                    f"{where}: chunk {row['chunk_id']!r} has access groups ({', '.join(chunk.groups)}) that "
                    "training may not read (synth.include_restricted is false); re-run synth"
                )
            split = str(row.get("split", ""))
            pairs.append(
                Pair(row["question"], chunk.index_text, chunk.doc_id, split, None, frozenset(chunk.groups))
            )
        else:
            raise DataError(f'{where}: expected {{"query", "positive"}} or a question line with a chunk_id')
    if not pairs:
        raise DataError(f"{path}: no pairs")
    unsplit = [p for p in pairs if p.split not in ("train", "val")]
    random.Random(seed).shuffle(unsplit)
    held_out = round(len(unsplit) * val_fraction) if len(unsplit) >= 5 else 0
    for n, pair in enumerate(unsplit):
        pair.split = "val" if n < held_out else "train"
    return pairs


def dense_metrics(
    embedder: SentenceTransformerEmbedder,
    cache: EmbeddingCache,
    corpus: list[tuple[str, str]],
    pairs: list[Pair],
) -> dict[str, float]:
    """Document-level nDCG@10 / Recall@10 / MRR@10 of dense search over `corpus` [(doc key, text)]."""
    if not pairs:
        return {}
    vectors, _ = embed_with_cache(embedder, cache, [text for _, text in corpus])
    queries = embedder.embed([p.query for p in pairs])
    scores = queries @ vectors.T
    ranked: dict[str, list[str]] = {}
    for n, row in enumerate(scores):
        docs: list[str] = []
        for i in np.argsort(-row, kind="stable"):
            if corpus[i][0] not in docs:
                docs.append(corpus[i][0])
            if len(docs) == 100:
                break
        ranked[str(n)] = docs
    qrels = {str(n): {p.doc: 1} for n, p in enumerate(pairs)}
    found = score_run(qrels, ranked)
    return {key: found[key] for key in ("ndcg@10", "recall@10", "mrr@10")}


def mine_hard_negatives(
    retriever: Retriever, pairs: list[Pair], allowed: Access, pool: list[Chunk], seed: int
) -> int:
    """The best-ranked passage of another document, from the current index, for each training pair.

    A pair whose top hits all come from its own document gets a random passage of the pool (chunks
    `allowed` may read) instead, so every row has a negative (the loss needs the same columns in
    every row). The negative's groups join the pair's.
    """
    mined = 0
    rng = random.Random(seed)
    for pair in pairs:
        if pair.negative is not None:
            continue
        for hit in retriever.retrieve(pair.query, k=20, access=allowed):
            if hit.chunk.doc_id != pair.doc and hit.chunk.index_text != pair.positive:
                pair.negative = hit.chunk.index_text
                pair.groups |= frozenset(hit.chunk.groups)
                mined += 1
                break
        others = [chunk for chunk in pool if chunk.doc_id != pair.doc]
        if pair.negative is None and others:
            chosen = rng.choice(others)
            pair.negative = chosen.index_text
            pair.groups |= frozenset(chosen.groups)
    return mined


def train_retriever(
    retriever: Retriever,
    embedder: SentenceTransformerEmbedder,
    cache: EmbeddingCache,
    cfg: RetrieverTuneConfig,
    data: Path,
    target: Path,
    *,
    allowed: Access,
    data_readers: Sequence[str],
    epochs: float | None = None,
    show_progress: bool = True,
    console: Console | None = None,
) -> tuple[RetrieverTuneReport, SentenceTransformerEmbedder]:
    """Train `embedder` into `target` on the pairs in `data`; report before/after on held-out pairs.

    Positives and negatives come only from chunks `allowed` may read; `retriever` (over the current
    index) mines the negatives. The manifest's readers are `data_readers` (who may read `data`) and the
    groups of those chunks. Switching the index to the tuned embedder is the caller's step
    (Workspace.switch_embedder).
    """
    console = console or Console(stderr=True)
    everything = retriever.store.all_chunks(None)
    chunks = [c for c in everything if allowed.may_read(c.groups)]
    if not chunks:
        raise DataError(
            "no chunk that training may read: ingest documents (or set synth.include_restricted = true "
            "for restricted ones) before `ragtune tune retriever`"
        )
    by_id = {c.chunk_id: c for c in everything}
    pairs = load_pairs(data, by_id, cfg.val_fraction, cfg.seed, allowed=allowed)
    train = [p for p in pairs if p.split == "train"]
    val = [p for p in pairs if p.split == "val"]
    if len(train) < 2:
        raise DataError(f"{data}: {len(train)} training pairs; at least 2 are needed")
    if Manifest.exists(target):
        raise TuneError(f"embedder {target.name!r} already exists; choose another --name")

    corpus = [(c.doc_id, c.index_text) for c in chunks]
    corpus += [(p.doc, p.positive) for p in pairs if p.doc.startswith("text:")]
    corpus = list(dict.fromkeys(corpus))
    notes: list[str] = []
    before = dense_metrics(embedder, cache, corpus, val)
    if cfg.hard_negatives:
        mined = mine_hard_negatives(retriever, train, allowed, chunks, cfg.seed)
        if mined < len(train):
            notes.append(
                f"{len(train) - mined} of {len(train)} negatives were random passages, not mined ones"
            )
    with_negatives = cfg.hard_negatives and all(p.negative for p in train)
    records = [
        {"anchor": p.query, "positive": p.positive, **({"negative": p.negative} if with_negatives else {})}
        for p in train
    ]
    fit = _fit(embedder, records, cfg, target, epochs, console, show_progress)
    tuned = SentenceTransformerEmbedder(str(target), batch_size=embedder.batch_size, loaded=fit.model)
    after = dense_metrics(tuned, cache, corpus, val)
    manifest = {
        "name": target.name,
        "kind": "retriever",
        "base_model": embedder.name,
        "data": str(data),
        "data_sha256": file_hash(data),
        READERS: readers_of([data_readers, *(p.groups for p in train)]),
        "pairs": {"train": len(train), "val": len(val)},
        "hyperparameters": {**cfg.model_dump(), "epochs": fit.epochs},
        "metrics": {"before": before, "after": after},
        "steps": fit.steps,
        "seconds": fit.seconds,
        "device": fit.device,
    }
    Manifest(target, manifest).write()
    if not val:
        notes.append("no held-out pairs: before/after could not be measured")
    report = RetrieverTuneReport(
        model=str(target),
        pairs={"train": len(train), "val": len(val)},
        before=before,
        after=after,
        steps=fit.steps,
        seconds=fit.seconds,
        switched=False,
        notes=notes,
    )
    return report, tuned


@dataclass
class _Fit:
    model: Any
    steps: int
    seconds: float
    epochs: float
    device: str


def _fit(
    embedder: SentenceTransformerEmbedder,
    records: list[dict[str, str | None]],
    cfg: RetrieverTuneConfig,
    target: Path,
    epochs: float | None,
    console: Console,
    show_progress: bool,
) -> _Fit:
    """sentence-transformers training with in-batch (and hard) negatives, saved into `target`."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import datasets
    import torch
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers
    from transformers import PrinterCallback
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    datasets.disable_progress_bars()
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    on_gpu = torch.cuda.is_available()
    model = SentenceTransformer(str(embedder.path), device="cuda" if on_gpu else "cpu", local_files_only=True)
    temp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(temp, ignore_errors=True)
    shutil.rmtree(target, ignore_errors=True)  # an interrupted run of this name (it has no manifest)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(temp / "checkpoints"),
        num_train_epochs=epochs if epochs is not None else cfg.epochs,
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        warmup_steps=0.1,  # a float is a share of the steps
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        seed=cfg.seed,
        data_seed=cfg.seed,
        save_strategy="no",
        logging_steps=1,
        report_to="none",
        disable_tqdm=True,
        use_cpu=not on_gpu,
        bf16=on_gpu,
        dataloader_num_workers=0,
    )
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(records),
        loss=MultipleNegativesRankingLoss(model),
        callbacks=[progress_callback(console, show_progress, "tuning retriever")],
    )
    trainer.remove_callback(PrinterCallback)
    started = time.perf_counter()
    trainer.train()
    seconds = round(time.perf_counter() - started, 1)
    shutil.rmtree(temp / "checkpoints", ignore_errors=True)
    model.save_pretrained(str(temp), create_model_card=False)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(temp, target)  # complete only once manifest.json is written (the caller does)
    return _Fit(
        model, int(trainer.state.global_step), seconds, args.num_train_epochs, "cuda" if on_gpu else "cpu"
    )
