"""Bring the index in line with a source: add new, replace changed, delete vanished, skip unchanged.

Documents are embedded and written in batches, each batch one atomic store write. A crash loses at
most the batch in flight; the next sync sees those items as still changed and completes the work,
so an interrupted ingest resumes by running it again. Files are parsed and chunked on a thread a
few batches ahead of the embedder: parsing is Python, embedding is torch (which leaves the GIL), so
the two overlap on two cores.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ragtune.access import Access
from ragtune.errors import IngestError
from ragtune.index.embedder import Embedder, EmbeddingCache, embed_with_cache
from ragtune.index.store import DocumentUpdate, Store, StoredDocument
from ragtune.ingest.rules import widens
from ragtune.ingest.sources import Failure, Source, SourceItem
from ragtune.types import Chunk, Document

Chunker = Callable[[Document], list[Chunk]]
Item = SourceItem | Failure


@dataclass
class Loaded:
    """One item read and chunked, or why not: unchanged (nothing to do) or an error to report."""

    document: Document | None = None
    chunks: list[Chunk] = field(default_factory=list)
    error: str = ""


@dataclass
class IngestReport:
    added: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    restricted: dict[str, list[str]] = field(default_factory=dict)  # group -> sources written with it
    # Access changes: kept restricted without --widen (held), or widened because it was given.
    held: list[dict[str, Any]] = field(default_factory=list)
    widened: list[dict[str, Any]] = field(default_factory=list)
    notices: list[dict[str, str]] = field(default_factory=list)
    chunks_embedded: int = 0
    chunks_written: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def add(self, other: IngestReport) -> None:
        """Fold another source's report into this one (one ingest run over several paths)."""
        self.added += other.added
        self.updated += other.updated
        self.deleted += other.deleted
        self.unchanged += other.unchanged
        self.failed.extend(other.failed)
        self.held.extend(other.held)
        self.widened.extend(other.widened)
        self.notices.extend(other.notices)
        for group, sources in other.restricted.items():
            self.restricted.setdefault(group, []).extend(sources)
        self.chunks_embedded += other.chunks_embedded
        self.chunks_written += other.chunks_written
        self.seconds = round(self.seconds + other.seconds, 3)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.deleted)


def sync_source(
    source: Source,
    store: Store,
    embedder: Embedder,
    cache: EmbeddingCache,
    chunker: Chunker,
    *,
    prune: bool = True,
    widen: bool = False,
    batch_documents: int = 64,
    console: Console | None = None,
    show_progress: bool = True,
) -> IngestReport:
    """Sync one source into the store; every skipped item is reported, nothing else is lost.

    A changed document never becomes readable by more callers than before unless `widen`: without
    it the document is written with its previous groups and reported as held (see `hold_access`).
    """
    started = time.perf_counter()
    report = IngestReport()
    known = store.document_hashes(source.origin)
    everyone = Access(frozenset(store.groups()))
    seen: set[str] = set()
    pending: list[tuple[Document, list[Chunk]]] = []
    console = console or Console(stderr=True)

    def fail(name: str, error: str) -> None:
        report.failed.append({"path": name, "error": error})
        console.print(f"[yellow]skipped[/] {name}: {error}", highlight=False, markup=True)

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not show_progress,
        transient=True,
    )
    with progress:
        items = list(source.items())
        files_task = progress.add_task("reading", total=len(items))
        embed_task = progress.add_task("embedding", total=None, visible=False)

        def flush() -> None:
            if not pending:
                return
            texts = [chunk.index_text for _, chunks in pending for chunk in chunks]
            progress.update(embed_task, total=len(texts), completed=0, visible=True)
            vectors, embedded = embed_with_cache(
                embedder, cache, texts, progress=lambda n: progress.advance(embed_task, n)
            )
            updates, offset = [], 0
            for document, chunks in pending:
                updates.append(DocumentUpdate(document, chunks, vectors[offset : offset + len(chunks)]))
                offset += len(chunks)
            store.write(updates)
            report.chunks_embedded += embedded
            report.chunks_written += len(texts)
            for document, _ in pending:
                for group in document.groups:
                    report.restricted.setdefault(group, []).append(document.source)
                if document.source in known:
                    report.updated += 1
                else:
                    report.added += 1
            pending.clear()
            progress.update(embed_task, visible=False)

        def load(item: Item) -> Loaded:
            return _load(item, known, chunker)

        for item, loaded in read_ahead(items, load, depth=2 * batch_documents):
            progress.advance(files_task)
            seen.add(item.source)  # a failed item is seen too: its previous version is kept, not pruned
            if loaded.error:
                fail(item.source, loaded.error)
            elif loaded.document is None:
                report.unchanged += 1
            elif reason := store.refusal(loaded.document, loaded.chunks):
                fail(item.source, reason)
            else:
                if item.source in known:
                    hold_access(loaded, store.document(loaded.document.doc_id, everyone), widen, report)
                pending.append((loaded.document, loaded.chunks))
                if len(pending) >= batch_documents:
                    flush()
        flush()

    if prune:
        vanished = sorted(name for name in set(known) - seen if in_scope(name, source.scope))
        if vanished:
            store.write([], [(source.origin, name) for name in vanished])
            report.deleted = len(vanished)
    if report.changed:
        store.refresh()
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def in_scope(source: str, scope: str) -> bool:
    """Whether a document name lies inside a source's scope (a folder prefix; "" is everything)."""
    return not scope or source == scope or source.startswith(scope + "/")


def hold_access(loaded: Loaded, stored: StoredDocument | None, widen: bool, report: IngestReport) -> None:
    """Keep a changed document's previous groups when its new ones would widen access, unless `widen`.

    A held document is written with a hash no file can have, so every later sync looks at it again
    (and says so) until the change is confirmed with --widen or the rule is put back.
    """
    document = loaded.document
    if document is None or stored is None or not widens(stored.groups, document.groups):
        return
    change = {"path": document.source, "from": stored.groups, "to": document.groups}
    if widen:
        report.widened.append(change)
        return
    report.held.append(change)
    document.groups = list(stored.groups)
    document.content_hash = "held:" + document.content_hash
    for chunk in loaded.chunks:
        chunk.groups = list(stored.groups)


def _load(item: Item, known: dict[str, str], chunker: Chunker) -> Loaded:
    """Parse and chunk one item; never raises: one bad file must not abort the ingest."""
    if isinstance(item, Failure):
        return Loaded(error=item.error)
    if known.get(item.source) == item.content_hash:
        return Loaded()
    try:
        document = item.load()
        document.content_hash = item.content_hash
        chunks = chunker(document)
        if not chunks:
            raise IngestError(f"{item.source}: no text to index")
    except IngestError as exc:
        return Loaded(error=_strip_name(str(exc), item.source))
    except Exception as exc:  # skip it and say why
        return Loaded(error=f"could not be read ({type(exc).__name__}: {str(exc)[:200]})")
    return Loaded(document, chunks)


def read_ahead(
    items: list[Item], load: Callable[[Item], Loaded], depth: int
) -> Iterator[tuple[Item, Loaded]]:
    """`load` every item on a thread, in order, at most `depth` items ahead of the consumer.

    Bounded, so a folder larger than memory is never parsed whole before it is embedded; the thread
    stops when the consumer does (an error in a store write, an interrupt).
    """
    ready: queue.Queue[tuple[Item, Loaded]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        for item in items:
            loaded = load(item)
            while not stop.is_set():
                try:
                    ready.put((item, loaded), timeout=0.1)
                    break
                except queue.Full:
                    continue
            if stop.is_set():
                return

    reader = threading.Thread(target=produce, name="ragtune-read-ahead", daemon=True)
    reader.start()
    try:
        for _ in items:
            yield ready.get()
    finally:
        stop.set()
        reader.join()


def _strip_name(message: str, source: str) -> str:
    """Parsers prefix errors with the file name; the report line names the path already."""
    name = source.rsplit("/", 1)[-1]
    return message[len(name) + 2 :] if message.startswith(f"{name}: ") else message
