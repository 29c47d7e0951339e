from __future__ import annotations

import itertools

from ragtune.index.embedder import SentenceTransformerEmbedder
from ragtune.ingest.chunking import chunk_document, load_tokenizer
from ragtune.ingest.parsers import Block, ParsedFile, parse_file
from ragtune.types import Document
from tests.conftest import HR_DOCS


def _document(parsed: ParsedFile, source: str = "doc.md") -> Document:
    text, sections = parsed.assemble()
    return Document(source, "origin", parsed.title, text, sections)


def test_chunk_spans_point_at_the_exact_text_in_the_document() -> None:
    tokenizer = load_tokenizer(SentenceTransformerEmbedder().path)
    for name in ("policies/annual-leave.md", "handbook/onboarding.pdf", "intranet/wellbeing.html"):
        path = HR_DOCS / name
        document = _document(parse_file(path, path.read_bytes()), name)
        chunks = chunk_document(document, tokenizer, max_tokens=64, overlap_tokens=16)
        assert len(chunks) > len(document.sections) / 2
        for chunk in chunks:
            assert document.text[chunk.start : chunk.end] == chunk.text


def test_long_sections_split_by_tokens_with_overlap() -> None:
    tokenizer = load_tokenizer(SentenceTransformerEmbedder().path)
    words = " ".join(f"word{i}" for i in range(400))
    document = _document(ParsedFile("Long", [Block(words)]))
    chunks = chunk_document(document, tokenizer, max_tokens=50, overlap_tokens=10)
    assert len(chunks) > 5
    for chunk in chunks:
        count = len(tokenizer.encode(chunk.text, add_special_tokens=False).ids)
        assert count <= 50 + 4, "a window may only grow to finish the word it ends in"
    for first, second in itertools.pairwise(chunks):
        assert second.start < first.end, "consecutive windows overlap"
        assert first.text.split()[-1] in second.text, "the overlap repeats the end of the previous window"


def test_chunks_carry_structure_and_groups() -> None:
    tokenizer = load_tokenizer(SentenceTransformerEmbedder().path)
    path = HR_DOCS / "policies" / "salary-bands.md"
    parsed = parse_file(path, path.read_bytes())
    text, sections = parsed.assemble()
    document = Document("policies/salary-bands.md", "o", parsed.title, text, sections, groups=["hr"])
    chunks = chunk_document(document, tokenizer)
    assert all(c.groups == ["hr"] and c.source == "policies/salary-bands.md" for c in chunks)
    assert any(c.heading for c in chunks)
    assert chunks[0].index_text.startswith(parsed.title)
