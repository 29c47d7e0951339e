"""The seam between retrieval and whatever holds the index: embedded files (local_store.py) or a
Milvus server or cluster (milvus_store.py); tests/index/test_stores.py holds both to one contract.

A Store must push the access filter down into its searches: a hit the caller may not read must
never be a candidate, so that top-k is always filled with readable chunks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ragtune.access import Access
from ragtune.errors import StoreError
from ragtune.types import Chunk, Document

if TYPE_CHECKING:
    from ragtune.index.embedder import EmbeddingCache, SentenceTransformerEmbedder

__all__ = ["Access", "DocumentUpdate", "Store", "StoredDocument", "check_embedder", "check_vectors"]


@dataclass
class DocumentUpdate:
    """A document with its chunks and their vectors, written atomically in place of its old version."""

    document: Document
    chunks: list[Chunk]
    vectors: np.ndarray


@dataclass
class StoredDocument:
    doc_id: str
    source: str
    origin: str
    title: str
    content_hash: str
    groups: list[str]
    chunks: int
    meta: dict[str, Any] = field(default_factory=dict)


def check_vectors(update: DocumentUpdate, dim: int) -> None:
    """Refuse a write whose vectors do not match its chunks one to one at the index's dimension."""
    if update.vectors.shape != (len(update.chunks), dim):
        raise StoreError(
            f"{update.document.source}: {update.vectors.shape} vectors for {len(update.chunks)} chunks"
        )


def check_embedder(stored: dict[str, str], model: str, dim: int) -> None:
    """Refuse an index built by another embedder: its vectors and the queries' would not compare."""
    if stored["model"] != model or int(stored["dim"]) != dim:
        raise StoreError(
            f"the index was built with embedder {stored['model']!r} ({stored['dim']}-d) but the workspace "
            f"is configured for {model!r} ({dim}-d); re-embed or restore embedder.model"
        )


class Store(Protocol):
    """What retrieval and sync need from an index; batched, by id, with access pushed down."""

    def document_hashes(self, origin: str) -> dict[str, str]:
        """source -> content hash of every document ingested from `origin`."""
        ...

    def refusal(self, document: Document, chunks: Sequence[Chunk]) -> str | None:
        """Why this index cannot hold the document (a field over the engine's limits), or None.

        Sync asks per file before embedding, so such a file is skipped with the reason and the rest of
        its batch is written; `write` refuses it too, as a last guard.
        """
        ...

    def write(
        self, updates: Sequence[DocumentUpdate], delete_sources: Sequence[tuple[str, str]] = ()
    ) -> None:
        """Replace documents and delete (origin, source) pairs in one atomic step."""
        ...

    def refresh(self) -> None:
        """Make every committed write visible to searches (rebuild derived structures if needed)."""
        ...

    def search_dense(self, vector: np.ndarray, k: int, access: Access) -> list[tuple[str, float]]: ...

    def search_bm25(self, query: str, k: int, access: Access) -> list[tuple[str, float]]: ...

    def chunks(self, chunk_ids: Sequence[str]) -> list[Chunk]: ...

    def all_chunks(self, access: Access | None) -> list[Chunk]: ...

    def documents(self, access: Access) -> list[StoredDocument]: ...

    def document(self, doc_id: str, access: Access) -> StoredDocument | None:
        """One document the caller may read, or None (missing and forbidden look the same)."""
        ...

    def document_text(self, doc_id: str) -> str | None: ...

    def groups(self) -> set[str]:
        """Every access group in the index (for internal jobs that must see everything)."""
        ...

    def group_counts(self) -> dict[str, int]:
        """Documents per access group; "" counts the public ones."""
        ...

    def stats(self) -> dict[str, Any]: ...

    def copy_to(self, target: Path) -> None:
        """A consistent copy of the whole index at `target`, for a scratch workspace; this one unchanged."""
        ...

    def reembed_copy(self, target: Path, embedder: SentenceTransformerEmbedder, cache: EmbeddingCache) -> int:
        """Copy the index to `target` with every vector from `embedder`, ready to search; the chunk count."""
        ...

    def drop(self) -> None:
        """Close this index and delete it for good (a scratch copy); its folder goes too."""
        ...

    def close(self) -> None: ...
