"""Citation verification: real MiniLM for the semantic side, hand-made passages with known support."""

from __future__ import annotations

from ragtune.citations import split_sentences, verify_citations
from ragtune.index.embedder import SentenceTransformerEmbedder
from ragtune.types import Chunk

LEAVE = Chunk(
    chunk_id="a",
    doc_id="d1",
    source="leave.md",
    title="Leave",
    text="Full-time employees receive 25 days of paid annual leave per year. Up to 5 days carry over.",
    start=0,
    end=92,
)
PARKING = Chunk(
    chunk_id="b",
    doc_id="d2",
    source="parking.md",
    title="Parking",
    text="The Dublin office has 40 parking spaces, booked through the facilities desk.",
    start=0,
    end=76,
)


def test_markers_after_the_full_stop_stay_with_their_sentence() -> None:
    pieces = split_sentences(
        "You get 25 days of leave. [1] Parking is booked at the desk [2].\n- Bring a badge [1, 2]."
    )
    assert pieces == [
        ("You get 25 days of leave.", [1]),
        ("Parking is booked at the desk.", [2]),
        ("Bring a badge.", [1, 2]),
    ]


def test_right_citations_score_full_precision(embedder: SentenceTransformerEmbedder) -> None:
    check = verify_citations(
        "Employees get 25 days of paid annual leave each year [1]. Parking spaces are booked through the "
        "facilities desk [2].",
        [LEAVE, PARKING],
        embedder,
    )
    assert check.citation_precision == 1.0
    assert check.supported_share == 1.0
    assert [s.supported_by for s in check.sentences] == [[1], [2]]


def test_a_wrong_passage_number_and_an_invented_number_are_caught(
    embedder: SentenceTransformerEmbedder,
) -> None:
    check = verify_citations(
        "Employees get 25 days of paid annual leave each year [2]. Up to 12 days carry over [1].",
        [LEAVE, PARKING],
        embedder,
    )
    first, second = check.sentences
    assert first.cited == [2] and first.supported_by == [1], "supported, but by the passage it did not cite"
    assert second.supported_by == [], "12 appears in no passage"
    assert check.citation_precision == 0.0
    assert check.supported_share == 0.5
    assert check.unsupported == ["Up to 12 days carry over."]


def test_paraphrase_is_supported_through_embeddings_only(embedder: SentenceTransformerEmbedder) -> None:
    claim = "Staff working full time are entitled to 25 vacation days annually [1]."
    assert verify_citations(claim, [LEAVE], embedder).supported_share == 1.0
    unrelated = "The cafeteria serves vegetarian lunches on weekdays [1]."
    assert verify_citations(unrelated, [LEAVE], embedder).supported_share == 0.0


def test_an_answer_without_claims_has_no_scores() -> None:
    check = verify_citations("Yes.", [LEAVE])
    assert check.sentences == [] and check.citation_precision is None and check.supported_share is None
