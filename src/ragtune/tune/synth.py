"""Question-answer pairs from the indexed chunks, usable even when the only LLM is a 135M CPU model.

The answer is never generated: it is a span cut from a chunk sentence (a number with its unit, an
amount, a date, a time). The LLM only writes the question that the sentence answers with that span,
from a few worked examples. Every question is then checked and dropped if it fails:
it must be a question, must not give its answer away, must be about the chunk (its content words
come from the chunk), must find its own document again through retrieval, and must not repeat an
earlier one. A capable OpenAI-compatible generator writes better questions through the same path.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from bm25s.stopwords import STOPWORDS_EN
from rich.console import Console

from ragtune.config import SynthConfig
from ragtune.errors import DataError
from ragtune.generate import GenerationParams, Generator, Message, run_generation
from ragtune.generate.prompts import base_messages
from ragtune.index.retriever import Retriever
from ragtune.index.store import Access
from ragtune.manifest import readers_of
from ragtune.progress import progress_bar
from ragtune.types import Chunk

_NUMBER_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|fifty|hundred"
)
_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_NUMBER = r"\d{1,3}(?:,\d{3})*(?:\.\d+)?|\d+(?:\.\d+)?"
# Words between a count and the thing counted: "10 working days", "3 paid learning days".
_MODIFIERS = (
    r"working|paid|unpaid|unused|trained|calendar|consecutive|business|full|extra|additional|learning"
)
_SPAN = re.compile(
    rf"[£€$]\s?(?:{_NUMBER})(?:\s?(?:k|m|bn|million|billion)\b)?"  # money
    rf"|\b\d{{1,2}}\s(?:{_MONTHS})(?:\s\d{{4}})?"  # date
    r"|\b\d{1,2}:\d{2}(?:\s?[ap]m)?"  # time of day
    rf"|\b(?:{_NUMBER})\s?%"  # percentage
    rf"|(?<!-)\b(?:{_NUMBER}|{_NUMBER_WORDS})(?:\s(?:{_MODIFIERS}))*\s[a-z]+(?:-[a-z]+)?",  # a count and its unit
    re.IGNORECASE,
)
_NOT_A_UNIT = frozenset(STOPWORDS_EN) | {"per", "each", "every", "available", "plus"}
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"“(£€$])")
_WORD = re.compile(r"\w+")
_COMMON = frozenset(STOPWORDS_EN) | {"many", "much", "long", "often", "get", "does", "can", "kind"}

SYNTH_SYSTEM = (
    "Write one question that the sentence answers, with the given answer. Reply with the question only."
)
# Worked examples, deliberately from other domains so that no wording of one domain leaks into the questions.
_SHOTS = (
    (
        "The museum opens at 9:30 on weekdays and closes at 17:00.",
        "9:30",
        "What time does the museum open on weekdays?",
    ),
    (
        "Members may borrow up to 12 books at a time from the city library.",
        "12 books",
        "How many books can members borrow at a time from the city library?",
    ),
    (
        "The warranty covers parts and labour for two years from the date of purchase.",
        "two years",
        "How long does the warranty cover parts and labour?",
    ),
)


@dataclass
class SynthPair:
    question: str
    answer: str
    evidence: str
    chunk: Chunk
    split: str = "train"

    @property
    def id(self) -> str:
        import hashlib

        return "synth-" + hashlib.sha1(f"{self.chunk.chunk_id}\n{self.question}".encode()).hexdigest()[:10]

    def to_question(self) -> dict[str, Any]:
        """The INTERFACE.md question format, plus where the answer came from."""
        return {
            "id": self.id,
            "question": self.question,
            "answers": [self.answer],
            "gold_doc": self.chunk.source,
            "category": "synthetic",
            "chunk_id": self.chunk.chunk_id,
            "evidence": self.evidence,
            "split": self.split,
        }

    def to_chat(self, persona: str) -> dict[str, Any]:
        """Closed-book training data: the prompt the finetuned strategy sends, the evidence as answer."""
        messages: list[Message] = [
            *base_messages(self.question, persona=persona),
            {"role": "assistant", "content": self.evidence},
        ]
        return {"messages": messages}


@dataclass
class SynthReport:
    questions: int
    train: int
    val: int
    candidates: int
    rejected: dict[str, int]
    chunks_used: int
    seconds: float
    out: str
    train_chat: str
    val_chat: str
    skipped_restricted_chunks: int = 0
    notes: list[str] = field(default_factory=list)
    readers: list[str] = field(default_factory=list)  # the groups of the chunks the pairs came from

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def split_sentences(text: str) -> list[str]:
    """Sentences of a chunk, one per line or per full stop; headings and table rules dropped."""
    found: list[str] = []
    for line in text.splitlines():
        line = line.strip().lstrip("-*•>").strip()
        if not line or line.startswith(("#", "|-", "---")):
            continue
        found.extend(s.strip() for s in _SENTENCE_END.split(line) if s.strip())
    return found


def answer_spans(sentence: str) -> list[str]:
    """Short factual answers in a sentence: amounts, dates, times, percentages, counted things."""
    spans: list[str] = []
    for match in _SPAN.finditer(sentence):
        span = match.group(0).strip().rstrip(".,;:")
        last = span.split()[-1].lower()
        if len(span.split()) > 1 and last in _NOT_A_UNIT:  # "25 of", "2026 we": not a counted thing
            span = " ".join(span.split()[:-1])
            if not any(ch.isdigit() for ch in span) and span.lower() not in _NUMBER_WORDS.split("|"):
                continue
            if span.isdigit() and len(span) <= 2:  # a bare small number answers nothing on its own
                continue
        if span and span not in spans:
            spans.append(span)
    return spans


def content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _COMMON and len(w) > 2}


def check_question(question: str, answer: str, chunk: Chunk) -> str | None:
    """Why a generated question is unusable, or None when it passes."""
    words = question.split()
    if not question.endswith("?") or not 4 <= len(words) <= 30:
        return "not a question"
    lowered = question.lower()
    if answer.lower() in lowered or answer.split()[0].lower() in _WORD.findall(lowered):
        return "gives the answer away"
    if any(question == shot[2] for shot in _SHOTS):
        return "copied an example"
    asked = content_words(question)
    source = content_words(f"{chunk.title} {' '.join(chunk.heading)} {chunk.text}")
    if not asked or len(asked & source) < 0.6 * len(asked):
        return "not about the chunk"
    return None


def _question_messages(sentence: str, answer: str) -> list[Message]:
    messages: list[Message] = [{"role": "system", "content": SYNTH_SYSTEM}]
    for shot_sentence, shot_answer, shot_question in _SHOTS:
        messages.append({"role": "user", "content": f"Sentence: {shot_sentence}\nAnswer: {shot_answer}"})
        messages.append({"role": "assistant", "content": shot_question})
    messages.append({"role": "user", "content": f"Sentence: {sentence}\nAnswer: {answer}"})
    return messages


def _ask_for_question(
    retriever: Retriever,
    generator: Generator,
    chunk: Chunk,
    sentence: str,
    span: str,
    params: GenerationParams,
    seen: set[str],
) -> tuple[str, str | None]:
    """A question that passes every check, or the last reason for failing; a second, sampled try
    rescues about a third of the sentences the greedy question fails on."""
    question, reason = "", None
    for attempt in range(2):
        tried = replace(params, temperature=0.8, seed=params.seed + 1) if attempt else params
        text = run_generation(generator, _question_messages(sentence, span), tried).text
        question = text.strip().strip('"').strip()
        reason = check_question(question, span, chunk)
        if reason is None and " ".join(_WORD.findall(question.lower())) in seen:
            reason = "duplicate"
        if reason is None:
            hits = retriever.retrieve(question, k=5, access=Access.of(chunk.groups))
            if chunk.doc_id not in {h.chunk.doc_id for h in hits}:
                reason = "does not retrieve its document"
        if reason is None:
            break
    return question, reason


def _candidates(chunks: list[Chunk], seed: int) -> list[tuple[Chunk, str, str]]:
    """(chunk, sentence, span), interleaved across chunks so a short run still covers many documents."""
    per_chunk: list[list[tuple[Chunk, str, str]]] = []
    rng = random.Random(seed)
    seen: set[tuple[str, str]] = set()  # overlapping chunks repeat sentences
    for chunk in chunks:
        found = []
        for sentence in split_sentences(chunk.text):
            for span in answer_spans(sentence):
                if (sentence, span) not in seen:
                    seen.add((sentence, span))
                    found.append((chunk, sentence, span))
        rng.shuffle(found)
        if found:
            per_chunk.append(found)
    rng.shuffle(per_chunk)
    ordered: list[tuple[Chunk, str, str]] = []
    for depth in range(max((len(c) for c in per_chunk), default=0)):
        ordered.extend(c[depth] for c in per_chunk if depth < len(c))
    return ordered


def synthesize(
    retriever: Retriever,
    generator: Generator,
    cfg: SynthConfig,
    *,
    out: Path,
    persona: str,
    n: int | None = None,
    show_progress: bool = True,
    console: Console | None = None,
) -> SynthReport:
    """Write OUT (question format, with a train/val split by chunk) and OUT's .train/.val chat files.

    Questions come from `generator`; each must retrieve its own document through `retriever`.
    """
    n = n or cfg.n
    console = console or Console(stderr=True)
    started = time.perf_counter()
    everything = retriever.store.all_chunks(None)
    public = [c for c in everything if not c.groups]
    chunks = everything if cfg.include_restricted else public
    if not chunks:
        raise DataError("the index has no usable chunks: ingest documents before `ragtune synth`")
    candidates = _candidates(chunks, cfg.seed)
    params = GenerationParams(max_tokens=48, temperature=0.0, seed=cfg.seed, stop=("\n",))
    rejected: Counter[str] = Counter()
    kept: list[SynthPair] = []
    seen: set[str] = set()
    kept_vectors: list[np.ndarray] = []
    progress = progress_bar("synth", console, show_progress)
    with progress:
        task = progress.add_task("synth", total=n, info="")
        for tried, (chunk, sentence, span) in enumerate(candidates, start=1):
            if len(kept) >= n:
                break
            question, reason = _ask_for_question(retriever, generator, chunk, sentence, span, params, seen)
            vector = None
            if reason is None:
                vector = retriever.embedder.embed([question])[0]
                if kept_vectors and float(np.max(np.stack(kept_vectors) @ vector)) > 0.95:
                    reason = "duplicate"
            if reason is not None:
                rejected[reason] += 1
            else:
                assert vector is not None
                seen.add(" ".join(_WORD.findall(question.lower())))
                kept_vectors.append(vector)
                kept.append(SynthPair(question, span, sentence, chunk))
            progress.update(
                task, completed=len(kept), info=f"{tried} tried · {sum(rejected.values())} dropped"
            )
    notes = []
    if len(kept) < n:
        notes.append(f"kept {len(kept)} of the {n} asked for: the index ran out of usable sentences")
    _split_by_chunk(kept, cfg.val_fraction, cfg.seed)
    paths = _write(kept, out, persona)
    return SynthReport(
        questions=len(kept),
        train=sum(p.split == "train" for p in kept),
        val=sum(p.split == "val" for p in kept),
        candidates=min(len(candidates), sum(rejected.values()) + len(kept)),
        rejected=dict(rejected),
        chunks_used=len({p.chunk.chunk_id for p in kept}),
        seconds=round(time.perf_counter() - started, 1),
        out=str(paths[0]),
        train_chat=str(paths[1]),
        val_chat=str(paths[2]),
        skipped_restricted_chunks=len(everything) - len(chunks),
        notes=notes,
        readers=readers_of(p.chunk.groups for p in kept),
    )


def _split_by_chunk(pairs: list[SynthPair], fraction: float, seed: int) -> None:
    """Hold out whole chunks, so validation questions ask about text training never saw."""
    chunk_ids = sorted({p.chunk.chunk_id for p in pairs})
    random.Random(seed).shuffle(chunk_ids)
    count = round(len(chunk_ids) * fraction) if len(chunk_ids) >= 2 else 0
    held_out = set(chunk_ids[:count])
    for pair in pairs:
        pair.split = "val" if pair.chunk.chunk_id in held_out else "train"


def chat_paths(out: Path) -> tuple[Path, Path]:
    stem = out.name.removesuffix(".jsonl")
    return out.with_name(f"{stem}.train.chat.jsonl"), out.with_name(f"{stem}.val.chat.jsonl")


def _write(pairs: list[SynthPair], out: Path, persona: str) -> tuple[Path, Path, Path]:
    out.parent.mkdir(parents=True, exist_ok=True)
    train_chat, val_chat = chat_paths(out)
    for path, rows in (
        (out, [p.to_question() for p in pairs]),
        (train_chat, [p.to_chat(persona) for p in pairs if p.split == "train"]),
        (val_chat, [p.to_chat(persona) for p in pairs if p.split == "val"]),
    ):
        temp = path.with_name(path.name + ".tmp")
        temp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        temp.replace(path)
    return out, train_chat, val_chat
