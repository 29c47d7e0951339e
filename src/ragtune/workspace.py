"""A workspace is a folder with ragtune.toml and .ragtune/: the entry point of the Python API.

ws = Workspace.open("path/to/workspace")
ws.ingest(["docs/"])
for hit in ws.search("how many days of annual leave?", groups=["staff"]):
    print(hit.chunk.source, hit.chunk.text)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from rich.console import Console

from ragtune.config import CONFIG_FILE, DEFAULT_TOML, Config, GeneratorConfig, load_config
from ragtune.errors import ConfigError, RagtuneError, WorkspaceError
from ragtune.generate import Generator, Message, load_generator, params_from
from ragtune.index.embedder import EmbeddingCache, SentenceTransformerEmbedder
from ragtune.index.local_store import LocalStore
from ragtune.index.rerank import CrossEncoderReranker
from ragtune.index.retriever import Retriever
from ragtune.index.store import Access
from ragtune.ingest.chunking import chunk_document, load_tokenizer
from ragtune.ingest.sources import FileSource, Source, SqlSource, options_fingerprint
from ragtune.ingest.sync import IngestReport, sync_source
from ragtune.strategies import answer_question, get_strategy
from ragtune.tune.generator import TuneReport, train_generator
from ragtune.types import Answer, Chunk, Document, Hit

STATE_DIR = ".ragtune"


def find_workspace(start: Path) -> Path | None:
    """The nearest folder holding ragtune.toml, from `start` upward (like git finds a repo)."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    return None


class Workspace:
    def __init__(self, root: Path, config: Config) -> None:
        self.root = root
        self.config = config
        self.state_dir = root / STATE_DIR
        self.state_dir.mkdir(exist_ok=True)
        self.console = Console(stderr=True)

    @classmethod
    def init(cls, directory: Path | str = ".") -> Workspace:
        """Create ragtune.toml (unless present) and the state folder; returns the opened workspace."""
        root = Path(directory).resolve()
        try:
            root.mkdir(parents=True, exist_ok=True)
            config_path = root / CONFIG_FILE
            if not config_path.exists():
                config_path.write_text(DEFAULT_TOML, encoding="utf-8")
            state = root / STATE_DIR
            state.mkdir(exist_ok=True)
            (state / ".gitignore").write_text("*\n")
        except OSError as exc:
            raise WorkspaceError(f"cannot create a workspace in {root}: {exc.strerror or exc}") from exc
        return cls.open(root)

    @classmethod
    def open(cls, directory: Path | str | None = None) -> Workspace:
        """Open the workspace at `directory`, or the nearest one above the current folder."""
        start = Path(directory) if directory is not None else Path.cwd()
        if directory is not None and (start / CONFIG_FILE).is_file():
            root: Path | None = start.resolve()
        else:
            root = find_workspace(start)
        if root is None:
            raise WorkspaceError(
                f"no ragtune.toml in {start.resolve()} or any folder above it; run `ragtune init` there first"
            )
        return cls(root, load_config(root / CONFIG_FILE))

    @cached_property
    def embedder(self) -> SentenceTransformerEmbedder:
        cfg = self.config.embedder
        return SentenceTransformerEmbedder(cfg.model, batch_size=cfg.batch_size, device=cfg.device)

    @cached_property
    def store(self) -> LocalStore:
        return LocalStore(self.state_dir / "index", dim=self.embedder.dim, model=self.embedder.name)

    @cached_property
    def embedding_cache(self) -> EmbeddingCache:
        return EmbeddingCache(self.state_dir / "embeddings.sqlite")

    @cached_property
    def retriever(self) -> Retriever:
        reranker = None
        if self.config.rerank.model:
            reranker = CrossEncoderReranker(
                self.config.rerank.model, top_n=self.config.rerank.top_n, device=self.config.embedder.device
            )
        return Retriever(self.store, self.embedder, self.config.retrieval, reranker)

    @cached_property
    def _tokenizer(self) -> Any:
        return load_tokenizer(self.embedder.path)

    def chunk(self, document: Document) -> list[Chunk]:
        cfg = self.config.chunking
        return chunk_document(document, self._tokenizer, cfg.max_tokens, cfg.overlap_tokens)

    def _fingerprint(self, groups: Sequence[str], meta: dict[str, Any]) -> str:
        return options_fingerprint(groups, meta, self.config.chunking.model_dump())

    @contextlib.contextmanager
    def _ingest_lock(self) -> Iterator[None]:
        """One writer at a time; readers (search, serve) are never blocked."""
        with open(self.state_dir / "ingest.lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise WorkspaceError(
                    "another ingest is running in this workspace; wait for it to finish"
                ) from exc
            yield

    def origin_of(self, path: Path) -> str:
        """Where files came from, relative to the workspace when possible so the workspace can move."""
        root = path.resolve() if path.is_dir() else path.resolve().parent
        return os.path.relpath(root, self.root)

    def sync(self, source: Source, *, prune: bool = True, show_progress: bool = True) -> IngestReport:
        """Sync any Source (files, SQL rows, records) into the index."""
        with self._ingest_lock():
            return sync_source(
                source,
                self.store,
                self.embedder,
                self.embedding_cache,
                self.chunk,
                prune=prune,
                batch_documents=self.config.ingest.batch_documents,
                console=self.console,
                show_progress=show_progress,
            )

    def ingest(
        self,
        paths: Sequence[Path | str],
        *,
        groups: Sequence[str] = (),
        meta: dict[str, Any] | None = None,
        prune: bool = True,
        show_progress: bool = True,
    ) -> IngestReport:
        """Ingest files and folders; re-running it syncs (see ragtune.ingest.sync)."""
        if not paths:
            raise RagtuneError("give at least one file or folder to ingest")
        meta = dict(meta or {})
        total = IngestReport()
        for raw in paths:
            path = Path(raw)
            source = FileSource(
                path,
                origin=self.origin_of(path),
                groups=groups,
                meta=meta,
                exclude=self.config.ingest.exclude,
                max_bytes=int(self.config.ingest.max_file_mb * 1024 * 1024),
                rows_per_chunk=self.config.chunking.rows_per_chunk,
                fingerprint=self._fingerprint(groups, meta),
            )
            report = self.sync(source, prune=prune and path.is_dir(), show_progress=show_progress)
            total.add(report)
        return total

    def ingest_sql(
        self,
        url: str,
        query: str,
        id_column: str,
        *,
        text_template: str | None = None,
        name: str | None = None,
        groups: Sequence[str] = (),
        prune: bool = True,
        show_progress: bool = True,
    ) -> IngestReport:
        """Each row of the query becomes a document `sql:<name>:<id>`; re-sync works by row id."""
        source = SqlSource(
            url,
            query,
            id_column,
            name=name,
            text_template=text_template,
            groups=groups,
            fingerprint=self._fingerprint(groups, {"template": text_template or ""}),
        )
        return self.sync(source, prune=prune, show_progress=show_progress)

    def caller(
        self,
        groups: Sequence[str] | None = None,
        user: str | None = None,
        filters: dict[str, str] | None = None,
    ) -> Access:
        """The access of a caller named by groups or by a user from config."""
        if groups and user:
            raise RagtuneError("give either groups or a user, not both")
        if user is not None:
            if user not in self.config.users:
                known = ", ".join(sorted(self.config.users)) or "none configured"
                raise ConfigError(
                    f"unknown user {user!r} (known: {known}); add [users.{user}] to {CONFIG_FILE}"
                )
            groups = self.config.users[user].groups
        return Access.of(groups or (), filters)

    def search(
        self,
        query: str,
        *,
        k: int | None = None,
        mode: str | None = None,
        groups: Sequence[str] | None = None,
        user: str | None = None,
        filters: dict[str, str] | None = None,
    ) -> list[Hit]:
        """Chunks for a query; only those the caller may read are ever candidates."""
        return self.retriever.retrieve(query, k=k, mode=mode, access=self.caller(groups, user, filters))

    @cached_property
    def generator(self) -> Generator:
        """The configured chat model, loaded on first use (it is the slow part of start-up)."""
        return load_generator(self.config.generator)

    @property
    def adapters_dir(self) -> Path:
        return self.state_dir / "adapters"

    def adapter_dir(self) -> Path | None:
        """The adapter finetuned/hybrid use: tune.adapter from config, else the newest trained one."""
        if self.config.tune.adapter:
            chosen = self.adapters_dir / self.config.tune.adapter
            if not (chosen / "manifest.json").is_file():
                raise ConfigError(
                    f"tune.adapter {self.config.tune.adapter!r}: no trained adapter of that name"
                )
            return chosen
        trained = [p.parent for p in self.adapters_dir.glob("*/manifest.json")]
        return max(trained, key=lambda p: (p / "manifest.json").stat().st_mtime, default=None)

    @cached_property
    def tuned_generator(self) -> Generator:
        """The base model with the LoRA adapter, through the transformers backend."""
        adapter = self.adapter_dir()
        if adapter is None:
            raise RagtuneError(
                "no tuned generator in this workspace yet: run `ragtune tune generator --data TRAIN.jsonl` "
                "(or use --strategy rag or base)"
            )
        manifest = json.loads((adapter / "manifest.json").read_text())
        config = GeneratorConfig(
            backend="transformers",
            model=manifest["base_model"],
            context_window=self.config.generator.context_window,
        )
        return load_generator(config, adapter=str(adapter / "adapter"))

    def tune_generator(
        self,
        data: Path,
        *,
        val: Path | None = None,
        epochs: float | None = None,
        max_steps: int | None = None,
        name: str | None = None,
        resume: bool = False,
        show_progress: bool = True,
    ) -> TuneReport:
        """LoRA-tune the generator on chat/alpaca/prompt-completion JSONL (see ragtune.tune.generator)."""
        if name is None:
            newest = self.adapter_dir() if resume else None
            name = newest.name if newest is not None else time.strftime("generator-%Y%m%d-%H%M%S")
        run_dir = self.adapters_dir / name
        run_dir.mkdir(parents=True, exist_ok=True)
        report = train_generator(
            data,
            run_dir,
            self.config.tune.generator,
            val=val,
            epochs=epochs,
            max_steps=max_steps,
            resume=resume,
            console=self.console,
            show_progress=show_progress,
        )
        self.__dict__.pop("tuned_generator", None)
        return report

    def ask(
        self,
        question: str,
        *,
        strategy: str = "rag",
        groups: Sequence[str] | None = None,
        user: str | None = None,
        history: Sequence[Message] = (),
        on_token: Callable[[str], None] | None = None,
    ) -> Answer:
        """Answer a question with a strategy; the caller's groups bound what retrieval may use."""
        chosen = get_strategy(strategy)
        generator = self.tuned_generator if chosen.tuned else self.generator
        access = self.caller(groups, user)
        if chosen.retrieves:
            self.embedder.load()  # now, so that retrieve_ms measures retrieval, not start-up
        return answer_question(
            question,
            chosen,
            generator,
            params_from(self.config.generator),
            retriever=self.retriever if chosen.retrieves else None,
            access=access,
            passages=self.config.answer.passages,
            min_relevance=self.config.answer.min_relevance,
            history=history,
            on_token=on_token,
            citation_style=self.config.answer.citations,
        )

    def stats(self) -> dict[str, Any]:
        return self.store.stats()

    def close(self) -> None:
        for name in ("store", "embedding_cache"):
            if name in self.__dict__:
                self.__dict__[name].close()
