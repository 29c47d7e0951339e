"""RAFT data: teach the generator to answer from the passages it is given, and to refuse without them.

Each example is the exact prompt the hybrid strategy sends (numbered passages, inline citations):
the oracle passage hidden among distractors that retrieval really returns for the question. The
target quotes the sentence it relies on and cites its number, or (target "self") is the model's
own answer in that prompt, kept only when right and grounded (ragtune.tune.distil). In a share of
examples (1 - oracle_share) the oracle is left out; there, unlike the RAFT paper (which still
answers, to force memorisation), the target is the refusal: an assistant must not answer from thin air.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, cast

from rich.console import Console

from ragtune.config import RaftConfig, RaftRefusals
from ragtune.evaluate.metrics import contains_answer
from ragtune.generate.base import GenerationParams, Generator, Message
from ragtune.generate.prompts import REFUSAL, format_passage, rag_messages
from ragtune.index.embedder import Embedder
from ragtune.index.retriever import Retriever
from ragtune.index.store import Access
from ragtune.manifest import readers_of
from ragtune.tune.data import Example
from ragtune.tune.distil import Candidate, distil, grounded
from ragtune.tune.synth import split_sentences
from ragtune.types import Chunk, Hit


@dataclass
class RaftBuild:
    examples: list[dict[str, Any]]
    with_oracle: int
    without_oracle: int
    skipped: dict[str, int]
    # per example, what checks a model's own answer in its place (no answers: it should refuse)
    candidates: list[Candidate] = field(default_factory=list)
    readers: list[str] = field(default_factory=list)  # the groups of every passage in the examples


def evidence_sentence(chunk: Chunk, answers: list[str]) -> str | None:
    """The first sentence of the chunk containing an accepted answer."""
    for sentence in split_sentences(chunk.text):
        if any(a.lower() in sentence.lower() for a in answers):
            return sentence
    return None


def raft_quote(oracle: Chunk, evidence: str | None, answers: list[str]) -> str | None:
    """The sentence a RAFT target quotes: text of the oracle passage, byte for byte.

    The given evidence is used when the passage holds it verbatim; otherwise the passage's own first
    sentence with an answer. Never a normalised copy: a quote the passage does not contain teaches
    the model to misquote (padded table cells collapsed to single spaces did exactly that).
    """
    if evidence and evidence.strip() and evidence.strip() in oracle.text:
        return evidence.strip()
    return evidence_sentence(oracle, answers)


def _oracle(retriever: Retriever, row: dict[str, Any], allowed: Access) -> Chunk | None:
    if row.get("chunk_id"):
        found = retriever.store.chunks([str(row["chunk_id"])])
        if found and allowed.may_read(found[0].groups):
            return found[0]
    if row.get("gold_doc"):
        scoped = Access(allowed.groups, (("source", str(row["gold_doc"])),))
        for hit in retriever.retrieve(row["question"], k=5, access=scoped):
            if evidence_sentence(hit.chunk, row.get("answers", [])):
                return hit.chunk
    return None


def build_raft(
    retriever: Retriever,
    questions: list[dict[str, Any]],
    cfg: RaftConfig,
    *,
    allowed: Access,
    persona: str,
) -> RaftBuild:
    """Chat examples in the hybrid strategy's own prompt format, from what `allowed` may read."""
    rng = random.Random(cfg.seed)
    examples: list[dict[str, Any]] = []
    candidates: list[Candidate] = []
    skipped: Counter[str] = Counter()
    with_oracle = without_oracle = 0
    for row in questions:
        question, answers = row["question"], [a for a in row.get("answers", []) if a.strip()]
        oracle = _oracle(retriever, row, allowed) if answers else None
        if answers and oracle is None:
            skipped["no passage holds the answer"] += 1
            continue
        quote = raft_quote(oracle, row.get("evidence"), answers) if oracle else None
        if oracle is not None and quote is None:
            skipped["no sentence of the passage holds the answer"] += 1
            continue
        gold_doc = oracle.doc_id if oracle else None
        distractors: list[Chunk] = []
        for hit in retriever.retrieve(question, k=50, access=allowed):  # the best of other documents
            if hit.chunk.doc_id != gold_doc and all(hit.chunk.doc_id != d.doc_id for d in distractors):
                distractors.append(hit.chunk)
        distractors = distractors[: cfg.distractors]
        keep_oracle = oracle is not None and rng.random() < cfg.oracle_share
        passages = distractors + ([oracle] if keep_oracle and oracle is not None else [])
        rng.shuffle(passages)
        if not passages:
            skipped["nothing retrieved"] += 1
            continue
        if not keep_oracle and answers and any(contains_answer(c.text, answers) for c in passages):
            skipped["a distractor holds the answer"] += 1  # refusing there would be a false refusal
            continue
        texts = [format_passage(n, Hit(c, 0.0), "inline") for n, c in enumerate(passages, start=1)]
        if keep_oracle and oracle is not None:
            n = passages.index(oracle) + 1
            target = f'"{quote}" [{n}]'
            if cfg.target == "answer_quote":  # decide the answer, then show where it stands
                target = f"{answers[0].strip()}: {target}"
            with_oracle += 1
        else:
            target = REFUSAL
            without_oracle += 1
        prompt = rag_messages(question, texts, style="inline", persona=persona)
        examples.append({"messages": [*prompt, {"role": "assistant", "content": target}]})
        candidates.append(Candidate(prompt, passages, answers if target != REFUSAL else []))
    readers = readers_of(chunk.groups for candidate in candidates for chunk in candidate.passages)
    return RaftBuild(examples, with_oracle, without_oracle, dict(skipped), candidates, readers)


def with_own_answers(
    built: RaftBuild,
    model: Generator,
    params: GenerationParams,
    *,
    embedder: Embedder | None,
    console: Console,
    refusals: RaftRefusals = "own",
    seed: int = 0,
    show_progress: bool = True,
) -> RaftBuild:
    """Every target replaced by the model's own answer where it is right: where the oracle is in
    the prompt, an answer that holds it and is grounded; where it is not, a refusal. The rest is dropped.

    Quote targets taught a way of answering the model did not have; the fixed refusal taught it
    to refuse where retrieval did hold the answer (examples/hr: 2 of 31 answerable questions). Its
    own refusals come where it found nothing, but a 0.5B model rarely refuses (examples/support: 0 of
    25). `refusals="unsupported"` also teaches the refusal where it answered a prompt without the
    oracle with a claim no passage supports: where it made something up, not where it read.
    Refusals are thinned to keep their configured share, the model's own first.
    """
    answerable = [c for c in built.candidates if c.answers]
    own = distil(
        model,
        answerable,
        params,
        embedder=embedder,
        console=console,
        label="answer",
        show_progress=show_progress,
    )
    unanswerable = [c for c in built.candidates if not c.answers]
    refused = distil(
        model,
        unanswerable,
        params,
        embedder=embedder,
        console=console,
        label="refuse",
        show_progress=show_progress,
    )
    taught = [
        (candidate, {"messages": [*candidate.prompt, {"role": "assistant", "content": REFUSAL}]})
        for candidate, text, _ in refused.discarded
        if refusals == "unsupported" and not grounded(text, candidate.passages, embedder)
    ]
    share = built.without_oracle / max(1, built.with_oracle + built.without_oracle)
    keep = (
        round(len(own.examples) * share / (1 - share)) if share < 1 else len(refused.examples) + len(taught)
    )
    rng = random.Random(seed)
    own_refusals = list(zip(refused.kept, refused.examples, strict=True))
    refusals_kept = rng.sample(own_refusals, min(keep, len(own_refusals)))
    refusals_kept += rng.sample(taught, min(keep - len(refusals_kept), len(taught)))
    skipped = Counter(built.skipped)
    for reason, n in (own.rejected + refused.rejected).items():
        skipped[f"own answer {reason}"] += n
    skipped["refusals thinned"] += len(refused.examples) + len(taught) - len(refusals_kept)
    examples = own.examples + [example for _, example in refusals_kept]
    random.Random(seed).shuffle(examples)
    used = own.kept + [candidate for candidate, _ in refusals_kept]
    readers = readers_of(chunk.groups for candidate in used for chunk in candidate.passages)
    return RaftBuild(examples, len(own.examples), len(refusals_kept), dict(+skipped), readers=readers)


def in_rag_prompt(
    retriever: Retriever, examples: list[Example], *, passages: int, allowed: Access, persona: str
) -> tuple[list[dict[str, Any]], list[str]]:
    """Chat examples re-set in the prompt rag and hybrid send: the passages retrieval returns for the
    question, then the question; the target answer is kept as written. Also returns the passages'
    groups (see manifest.readers_of).

    Tone learnt on bare questions teaches answering from memory, and hybrid with such an adapter lost
    facts rag had (demo: 85% of rag's accuracy). Learnt beside the passages, the style comes with
    reading them. The example's own system message gives way to the rag system prompt.
    """
    wrapped: list[dict[str, Any]] = []
    used: list[Chunk] = []
    for example in examples:
        turns = [m for m in example.prompt if m["role"] != "system"]
        question, history = turns[-1]["content"], cast(list[Message], turns[:-1])
        hits = retriever.retrieve(question, k=passages, access=allowed)
        used += [hit.chunk for hit in hits]
        texts = [format_passage(n, hit, "inline") for n, hit in enumerate(hits, start=1)]
        prompt = rag_messages(question, texts, history, style="inline", persona=persona)
        wrapped.append({"messages": [*prompt, {"role": "assistant", "content": example.completion}]})
    return wrapped, readers_of(chunk.groups for chunk in used)
