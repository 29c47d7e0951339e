"""Citations: [n] markers parsed, each cited sentence checked against its passage, and inferred when missing.

A model that writes [n] can still cite the wrong passage, or write a claim no passage holds. Each
answer sentence is checked against the passages it was given, lexically (stemmed content words,
and every number in the claim must appear in the passage) and by embedding similarity to the
passage's closest sentence, so that an answer carries its own citation precision and the share of
its sentences that the passages support.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN

from ragtune.index.embedder import Embedder
from ragtune.types import Chunk, Citation, Hit

_CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_WORD = re.compile(r"\w+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_COMMON = frozenset(STOPWORDS_EN)
_STEMMER = Stemmer.Stemmer("english")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_PATH = re.compile(r"\S*/\S*|\S+\.(?:md|html?|pdf|docx|txt|csv|jsonl?)\b")
_LEADING_MARKERS = re.compile(r"^((?:\[\d+(?:\s*,\s*\d+)*\]\s*)+)")

# A claim is supported by a passage when all its numbers appear there and either most of its
# content words do, or its meaning is close to one of the passage's sentences.
LEXICAL_SUPPORT = 0.6
SEMANTIC_SUPPORT = 0.7
MIXED_SUPPORT = (0.3, 0.55)  # lexical, semantic: both moderately high


def parse_citations(text: str, passages: Sequence[Hit]) -> tuple[str, list[Citation], list[int]]:
    """[n] markers -> Citation objects; markers naming a passage that was not given are removed."""
    cited: list[int] = []
    dropped: list[int] = []

    def keep_valid(match: re.Match[str]) -> str:
        numbers = [int(n) for n in match.group(1).split(",")]
        valid = [n for n in numbers if 1 <= n <= len(passages)]
        dropped.extend(n for n in numbers if n not in valid)
        cited.extend(n for n in valid if n not in cited)
        return "".join(f"[{n}]" for n in valid)

    cleaned = _CITATION.sub(keep_valid, text)
    cleaned = re.sub(r"[ \t]+([.,;:])", r"\1", re.sub(r"[ \t]{2,}", " ", cleaned)).strip()
    return cleaned, [Citation(n, passages[n - 1].chunk) for n in cited], dropped


def content_words(text: str) -> set[str]:
    """Stemmed words that carry meaning (no stopwords, no citation numbers' brackets)."""
    words = [w for w in _WORD.findall(_CITATION.sub(" ", text).lower()) if w not in _COMMON and len(w) > 1]
    return set(_STEMMER.stemWords(words))


def infer_citations(text: str, passages: Sequence[Hit]) -> list[Citation]:
    """When the model cites nothing, attach the passage sharing the most content words with the answer."""
    words = content_words(text)
    best, best_overlap = 0, 1
    for n, hit in enumerate(passages, start=1):
        overlap = len(words & content_words(hit.chunk.text))
        if overlap > best_overlap:
            best, best_overlap = n, overlap
    return [Citation(best, passages[best - 1].chunk, inferred=True)] if best else []


@dataclass
class SentenceCheck:
    text: str
    cited: list[int]
    supported_by: list[int]  # passage numbers that support the sentence, cited or not

    @property
    def supported(self) -> bool:
        return bool(self.supported_by)

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "cited": self.cited,
            "supported_by": self.supported_by,
            "supported": self.supported,
        }


@dataclass
class Verification:
    """Per answer: which sentences the passages support, and how many of its citations are right."""

    sentences: list[SentenceCheck] = field(default_factory=list)

    @property
    def citation_precision(self) -> float | None:
        """Cited (sentence, passage) pairs where the passage supports the sentence; None without citations."""
        pairs = [(s, n) for s in self.sentences for n in s.cited]
        return sum(n in s.supported_by for s, n in pairs) / len(pairs) if pairs else None

    @property
    def supported_share(self) -> float | None:
        """Claim sentences some given passage supports; None when the answer makes no claim."""
        return sum(s.supported for s in self.sentences) / len(self.sentences) if self.sentences else None

    @property
    def unsupported(self) -> list[str]:
        return [s.text for s in self.sentences if not s.supported]

    def to_dict(self) -> dict[str, Any]:
        return {
            "citation_precision": _round(self.citation_precision),
            "supported_share": _round(self.supported_share),
            "unsupported": self.unsupported,
            "sentences": [s.to_dict() for s in self.sentences],
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


# Words of a sentence that only says where the answer came from ("This is stated in passage [2].").
_REFERENCE_WORDS = frozenset(
    content_words(
        "passage passages found find stated states mentioned mention information info according source "
        "sources document documents text context provided given specified outlined described see refer can "
        "listed shown section file answer"
    )
)


def split_sentences(text: str) -> list[tuple[str, list[int]]]:
    """(sentence without markers, the passage numbers it cites).

    Markers after a full stop, and sentences that only point at a passage ("This is found in [2]."),
    give their citations to the sentence before: that is the claim they cite.
    """
    pieces: list[tuple[str, list[int]]] = []
    for raw in _SENTENCE_END.split(text):
        raw = raw.strip().lstrip("-*• ").strip()
        leading = _LEADING_MARKERS.match(raw)
        if leading and pieces:  # "… 25 days. [1] Next sentence": [1] belongs to the sentence before
            before, cited = pieces[-1]
            pieces[-1] = (before, cited + _numbers(leading.group(1)))
            raw = raw[leading.end() :]
        if not raw:
            continue
        sentence = re.sub(r"\s+([.,;:!?])", r"\1", _CITATION.sub("", raw)).strip()
        if pieces and content_words(_PATH.sub(" ", sentence)) <= _REFERENCE_WORDS:
            before, cited = pieces[-1]
            pieces[-1] = (before, cited + _numbers(raw))
            continue
        pieces.append((sentence, _numbers(raw)))
    return [(sentence, list(dict.fromkeys(cited))) for sentence, cited in pieces if sentence]


def _numbers(text: str) -> list[int]:
    return [int(n) for group in _CITATION.findall(text) for n in group.split(",")]


def verify_citations(text: str, passages: Sequence[Chunk], embedder: Embedder | None = None) -> Verification:
    """Check every claim sentence of an answer against each given passage (1-based, as cited)."""
    claims = [(s, cited) for s, cited in split_sentences(text) if len(content_words(s)) >= 2]
    if not claims or not passages:
        return Verification([SentenceCheck(s, cited, []) for s, cited in claims])
    passage_sentences = [[s for s, _ in split_sentences(p.text)] or [p.text] for p in passages]
    semantic = np.zeros((len(claims), len(passages)), dtype=np.float32)
    if embedder is not None:
        flat = [s for sentences in passage_sentences for s in sentences]
        vectors = embedder.embed([s for s, _ in claims] + flat)
        claim_vectors, sentence_vectors = vectors[: len(claims)], vectors[len(claims) :]
        similarity = claim_vectors @ sentence_vectors.T
        start = 0
        for j, sentences in enumerate(passage_sentences):
            semantic[:, j] = similarity[:, start : start + len(sentences)].max(axis=1)
            start += len(sentences)
    passage_words = [content_words(p.text) for p in passages]
    passage_numbers = [set(_NUMBER.findall(p.text)) for p in passages]
    checks = []
    for i, (sentence, cited) in enumerate(claims):
        words, numbers = content_words(sentence), set(_NUMBER.findall(sentence))
        supported_by = []
        for j in range(len(passages)):
            if not numbers <= passage_numbers[j]:
                continue
            lexical = len(words & passage_words[j]) / len(words)
            close = float(semantic[i, j])
            if (
                lexical >= LEXICAL_SUPPORT
                or close >= SEMANTIC_SUPPORT
                or (lexical >= MIXED_SUPPORT[0] and close >= MIXED_SUPPORT[1])
            ):
                supported_by.append(j + 1)
        checks.append(SentenceCheck(sentence, [n for n in cited if 1 <= n <= len(passages)], supported_by))
    return Verification(checks)
