"""Plain data that travels through the pipeline: sources -> documents -> chunks -> hits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Section:
    """A structural piece of a document (a heading's body, a page, a row) before token splitting.

    `start` is the character offset of `text` inside the document's full text, so that every
    chunk cut from this section can carry an exact character span for citations.
    """

    text: str
    start: int
    heading: tuple[str, ...] = ()
    page: int | None = None
    row: int | None = None


@dataclass
class Document:
    """One source item (a file, a SQL row, a BEIR record) parsed into text and sections."""

    source: str
    origin: str
    title: str
    text: str
    sections: list[Section]
    groups: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    content_hash: str = ""

    @property
    def doc_id(self) -> str:
        return document_id(self.origin, self.source)


def document_id(origin: str, source: str) -> str:
    """Stable id of a document: its source, qualified by where it was ingested from."""
    import hashlib

    return hashlib.sha1(f"{origin}\n{source}".encode()).hexdigest()[:16]


def index_text(title: str, heading: Sequence[str], text: str) -> str:
    """What the embedder and BM25 see: a chunk plus its title and heading path as context."""
    context = " > ".join(part for part in (title, *heading) if part)
    return f"{context}\n{text}" if context else text


@dataclass
class Chunk:
    """The unit that is embedded, indexed, retrieved and cited."""

    chunk_id: str
    doc_id: str
    source: str
    title: str
    text: str
    start: int
    end: int
    heading: tuple[str, ...] = ()
    page: int | None = None
    row: int | None = None
    groups: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def index_text(self) -> str:
        return index_text(self.title, self.heading, self.text)

    @property
    def location(self) -> str:
        """Human-readable place in the source, for tables and citations."""
        parts = []
        if self.page is not None:
            parts.append(f"page {self.page}")
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.heading:
            parts.append(" > ".join(self.heading))
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "chunk_id": self.chunk_id,
            "doc_id": self.doc_id,
            "source": self.source,
            "title": self.title,
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "heading": list(self.heading),
            "page": self.page,
            "row": self.row,
            "location": self.location,
            "groups": list(self.groups),
            "meta": dict(self.meta),
        }


@dataclass
class Hit:
    """A retrieved chunk with its fused score and, for debugging, the rank it had in each list."""

    chunk: Chunk
    score: float
    ranks: dict[str, int] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**self.chunk.to_dict(), "score": self.score, "ranks": self.ranks, "scores": self.scores}


@dataclass
class Citation:
    """A passage the answer relies on; `n` is its number in the prompt (and in the answer's [n])."""

    n: int
    chunk: Chunk
    inferred: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "source": self.chunk.source,
            "title": self.chunk.title,
            "text": self.chunk.text,
            "location": self.chunk.location,
            "page": self.chunk.page,
            "row": self.chunk.row,
            "heading": list(self.chunk.heading),
            "span": [self.chunk.start, self.chunk.end],
            "doc_id": self.chunk.doc_id,
            "inferred": self.inferred,
        }


@dataclass
class Answer:
    """What every strategy returns: the text, what it rests on, and what it cost."""

    answer: str
    strategy: str
    citations: list[Citation] = field(default_factory=list)
    passages: list[Hit] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    refused: bool = False
    debug: dict[str, Any] = field(default_factory=dict)
    verification: dict[str, Any] | None = None  # ragtune.citations.Verification.to_dict(); None if refused

    def meta(self) -> dict[str, Any]:
        """What the HTTP API returns beside the text (the `ragtune` field)."""
        return {
            "strategy": self.strategy,
            "refused": self.refused,
            "timings": self.timings,
            "verification": self.verification,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "strategy": self.strategy,
            "refused": self.refused,
            "citations": [c.to_dict() for c in self.citations],
            "passages": [
                {"n": n, "source": h.chunk.source, "location": h.chunk.location, "score": h.score}
                for n, h in enumerate(self.passages, start=1)
            ],
            "timings": self.timings,
            "verification": self.verification,
            "debug": self.debug,
        }
