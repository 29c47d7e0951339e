"""Structure first, then tokens: sections are cut into windows of the embedder's own tokens.

Counting with the embedder's tokenizer (not words or characters) is what guarantees that a chunk
is never silently truncated by the embedding model.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ragtune.types import Chunk, Document

if TYPE_CHECKING:
    from tokenizers import Tokenizer


def load_tokenizer(model_dir: Path) -> Tokenizer:
    """The fast tokenizer of a sentence-transformers folder, with truncation and padding off."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def _snap_start(text: str, position: int) -> int:
    """Move a window start back to the beginning of the word it falls in."""
    while position > 0 and not text[position - 1].isspace():
        position -= 1
    return position


def _snap_end(text: str, position: int) -> int:
    """Move a window end forward to the end of the word it falls in."""
    while position < len(text) and not text[position].isspace():
        position += 1
    return position


def split_by_tokens(
    text: str, tokenizer: Tokenizer, max_tokens: int, overlap_tokens: int
) -> list[tuple[int, int]]:
    """Character spans of windows of at most ~max_tokens tokens, overlapping by overlap_tokens."""
    offsets = tokenizer.encode(text, add_special_tokens=False).offsets
    if len(offsets) <= max_tokens:
        return [(0, len(text))]
    spans: list[tuple[int, int]] = []
    step = max_tokens - overlap_tokens
    for first in range(0, len(offsets), step):
        last = min(first + max_tokens, len(offsets)) - 1
        spans.append((_snap_start(text, offsets[first][0]), _snap_end(text, offsets[last][1])))
        if last == len(offsets) - 1:
            break
    return spans


def chunk_document(
    document: Document, tokenizer: Tokenizer, max_tokens: int = 200, overlap_tokens: int = 40
) -> list[Chunk]:
    """Cut a document's sections into chunks; each keeps its section's structure and exact span."""
    chunks: list[Chunk] = []
    doc_id = document.doc_id
    for section in document.sections:
        for start, end in split_by_tokens(section.text, tokenizer, max_tokens, overlap_tokens):
            text = section.text[start:end].strip()
            if not text:
                continue
            leading = len(section.text[start:end]) - len(section.text[start:end].lstrip())
            absolute = section.start + start + leading
            chunks.append(
                Chunk(
                    chunk_id=f"{doc_id}:{len(chunks)}",
                    doc_id=doc_id,
                    source=document.source,
                    title=document.title,
                    text=text,
                    start=absolute,
                    end=absolute + len(text),
                    heading=section.heading,
                    page=section.page,
                    row=section.row,
                    groups=list(document.groups),
                    meta=dict(document.meta),
                )
            )
    return chunks
