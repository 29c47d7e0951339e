"""A workspace is a folder with ragtune.toml and .ragtune/: the entry point of the Python API.

ws = Workspace.open("path/to/workspace")
ws.ingest(["docs/"])
for hit in ws.search("how do I rotate an API key?", groups=["staff"]):
    print(hit.chunk.source, hit.chunk.text)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from rich.console import Console

from ragtune.config import CONFIG_FILE, DEFAULT_TOML, Config, GeneratorConfig, load_config, update_config
from ragtune.errors import ConfigError, DataError, IngestBusyError, RagtuneError, WorkspaceError
from ragtune.evaluate.questions import read_questions
from ragtune.generate import GenerationParams, Generator, Message, load_generator, params_from
from ragtune.index.embedder import EmbeddingCache, SentenceTransformerEmbedder
from ragtune.index.local_store import LocalStore
from ragtune.index.rerank import CrossEncoderReranker
from ragtune.index.retriever import Retriever
from ragtune.index.store import Access
from ragtune.ingest.chunking import chunk_document, load_tokenizer
from ragtune.ingest.sources import FileSource, Source, SqlSource, options_fingerprint
from ragtune.ingest.sync import IngestReport, sync_source
from ragtune.ingest.uploads import UploadFolder
from ragtune.serve.users import UserStore
from ragtune.strategies import answer_question, get_strategy
from ragtune.tune.export import ExportReport, export_adapter
from ragtune.tune.fusion import FusionFit, fit_fusion
from ragtune.tune.generator import TuneReport, train_generator
from ragtune.tune.raft import RaftBuild, build_raft
from ragtune.tune.retriever import ACTIVE_FILE, RetrieverTuneReport, reembed_index, train_retriever
from ragtune.tune.synth import SynthReport, synthesize
from ragtune.types import Answer, Chunk, Document, Hit

STATE_DIR = ".ragtune"


def _manifest(folder: Path) -> dict[str, Any]:
    return dict(json.loads((folder / "manifest.json").read_text()))


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
        self._tuned: dict[Path, Generator] = {}
        self._writer = threading.Lock()  # see _ingest_lock

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

    def active(self) -> dict[str, str]:
        """The tuned embedder and its index, once `tune retriever` has switched to them (else {})."""
        path = self.state_dir / ACTIVE_FILE
        if not path.is_file():
            return {}
        try:
            active = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise WorkspaceError(
                f"{path}: damaged ({exc.msg}); delete it to return to the base embedder"
            ) from exc
        return {"embedder": str(active["embedder"]), "index": str(active["index"])}

    @cached_property
    def embedder(self) -> SentenceTransformerEmbedder:
        cfg = self.config.embedder
        model = self.active().get("embedder", cfg.model)
        return SentenceTransformerEmbedder(model, batch_size=cfg.batch_size, device=cfg.device)

    @cached_property
    def store(self) -> LocalStore:
        folder = self.state_dir / self.active().get("index", "index")
        return LocalStore(folder, dim=self.embedder.dim, model=self.embedder.name)

    def training_access(self) -> Access:
        """What training data may be built from: public chunks only, unless synth.include_restricted.

        A tuned model answers everyone, so text from a restricted document must not reach its weights.
        """
        return self.everyone() if self.config.synth.include_restricted else Access()

    def group_holders(self) -> dict[str, list[str]]:
        """group -> who holds it: API users, [users] in config, and the anonymous caller."""
        held = self.users.holders()
        for name, user in self.config.users.items():
            for group in user.groups:
                held.setdefault(group, []).append(name)
        if self.config.serve.anonymous:
            for group in self.config.serve.anonymous_groups:
                held.setdefault(group, []).append("(anonymous)")
        return held

    def access_overview(self) -> list[dict[str, Any]]:
        """Every access group in the index with its document count and holders, public first.

        Groups are plain names (none is magic): a document marked `groups: [all]` is readable only by
        callers in a group called "all", so a group nobody holds is flagged here and at ingest.
        """
        counts = self.store.group_counts()
        held = self.group_holders()
        rows = [
            {"group": "(public)", "documents": counts.pop("", 0), "holders": ["everyone"], "unheld": False}
        ]
        for group in sorted(counts):
            holders = sorted(set(held.get(group, [])))
            rows.append(
                {"group": group, "documents": counts[group], "holders": holders, "unheld": not holders}
            )
        return rows

    def everyone(self) -> Access:
        """An access reading every group in the index: for internal jobs (synth, mining), never callers."""
        return Access(frozenset(self.store.groups()))

    def switch_embedder(self, embedder: SentenceTransformerEmbedder, name: str) -> tuple[str, int]:
        """Re-embed the whole index into a new folder, then point the workspace at it in one rename.

        Searches keep using the old index until the pointer file is replaced; ingests wait (lock).
        """
        with self._ingest_lock():
            folder = f"index-{name}"
            temp = self.state_dir / f".{folder}.tmp"
            count = reembed_index(self.store.directory / "index.sqlite", temp, embedder, self.embedding_cache)
            LocalStore(temp, dim=embedder.dim, model=embedder.name).refresh()
            shutil.rmtree(self.state_dir / folder, ignore_errors=True)
            os.replace(temp, self.state_dir / folder)
            pointer = self.state_dir / f".{ACTIVE_FILE}.tmp"
            pointer.write_text(json.dumps({"embedder": str(Path(embedder.path).resolve()), "index": folder}))
            os.replace(pointer, self.state_dir / ACTIVE_FILE)
        if "store" in self.__dict__:
            self.store.close()
        for cached in ("embedder", "store", "retriever", "_tokenizer"):
            self.__dict__.pop(cached, None)
        return folder, count

    def tune_retriever(
        self,
        data: Path | None = None,
        *,
        name: str | None = None,
        switch: bool = True,
        epochs: float | None = None,
        show_progress: bool = True,
    ) -> RetrieverTuneReport:
        """Fine-tune the embedder on (query, passage) pairs; synthesises them when none are given."""
        if data is None:
            data = self.root / "synth" / "questions.jsonl"
            if not data.is_file():
                self.synth(out=data, show_progress=show_progress)
        return train_retriever(
            self,
            data,
            name=name,
            switch=switch,
            epochs=epochs,
            show_progress=show_progress,
            console=self.console,
        )

    def tune_fusion(self, questions: Path, *, write: bool = True) -> FusionFit:
        """Fit hybrid fusion on labelled questions and, unless told not to, save it in ragtune.toml."""
        fit = fit_fusion(self.retriever, read_questions(questions), self.everyone())
        if write:
            update_config(self.root / CONFIG_FILE, "retrieval", {"fusion": fit.fusion, "alpha": fit.alpha})
            self.config = load_config(self.root / CONFIG_FILE)
            self.__dict__.pop("retriever", None)
        return fit

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
        """One writer at a time; readers (search, serve) are never blocked.

        Writers in this process (a server's uploads and deletes) wait their turn; a writer in another
        process (a CLI ingest beside the server) makes this one fail at once with IngestBusyError.
        """
        with self._writer, open(self.state_dir / "ingest.lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise IngestBusyError(
                    "another ingest is running in this workspace; wait for it to finish"
                ) from exc
            yield

    @cached_property
    def uploads(self) -> UploadFolder:
        return UploadFolder(self.state_dir / "uploads", self.state_dir / "uploads-staging")

    def add_upload(self, staged: Path, groups: Sequence[str] = ()) -> IngestReport:
        """Index a staged file as an upload; the earlier upload of that name is kept if this one fails."""
        return self.uploads.add(
            staged, groups, lambda path, g: self.ingest([path], groups=g, show_progress=False)
        )

    def origin_of(self, path: Path) -> str:
        """Where files came from, relative to the workspace when possible so the workspace can move."""
        root = path.resolve() if path.is_dir() else path.resolve().parent
        return os.path.relpath(root, self.root)

    def sync(self, source: Source, *, prune: bool = True, show_progress: bool = True) -> IngestReport:
        """Sync any Source (files, SQL rows, records) into the index."""
        with self._ingest_lock():
            report = sync_source(
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
            if report.changed:  # what building and keeping the index has cost, for compare's cost column
                entry = {"at": time.time(), "origin": source.origin, **report.to_dict()}
                with (self.state_dir / "ingest-log.jsonl").open("a") as log:
                    log.write(json.dumps(entry) + "\n")
            return report

    def delete_document(self, origin: str, source: str) -> None:
        """Remove one document from the index now (searches stop seeing it at once)."""
        with self._ingest_lock():
            self.store.write([], delete_sources=[(origin, source)])
            self.store.refresh()

    def ingest_seconds(self) -> float:
        """Total seconds spent building and updating the index (from the ingest log)."""
        log = self.state_dir / "ingest-log.jsonl"
        if not log.is_file():
            return 0.0
        return round(sum(json.loads(line)["seconds"] for line in log.read_text().splitlines() if line), 2)

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
        """The access of a caller named by groups, or by a user (`ragtune users add`, or [users] in config)."""
        if groups and user:
            raise RagtuneError("give either groups or a user, not both")
        if user is not None:
            stored = self.users.get(user)
            if stored is not None:
                groups = stored.groups
            elif user in self.config.users:
                groups = self.config.users[user].groups
            else:
                known = sorted(
                    {str(u["name"]) for u in self.users.list() if not u["revoked"]} | set(self.config.users)
                )
                raise ConfigError(
                    f"unknown user {user!r} (known: {', '.join(known) or 'none'}); "
                    f"add one with `ragtune users add {user} --groups ...` or [users.{user}] in {CONFIG_FILE}"
                )
        return Access.of(groups or (), filters)

    @cached_property
    def users(self) -> UserStore:
        return UserStore(self.state_dir / "users.sqlite")

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

    def adapter_dir(self, strategy: str = "finetuned") -> Path | None:
        """The adapter a tuned strategy uses: the one named in config, else the newest fitting one.

        `hybrid` prefers a RAFT adapter (trained on its prompt format); `finetuned` prefers one that is not.
        """
        named = self.config.tune.hybrid_adapter if strategy == "hybrid" else self.config.tune.adapter
        if named:
            chosen = self.adapters_dir / named
            if not (chosen / "manifest.json").is_file():
                raise ConfigError(
                    f"adapter {named!r} (from ragtune.toml [tune]): no trained adapter of that name"
                )
            return chosen
        trained = sorted(
            (p.parent for p in self.adapters_dir.glob("*/manifest.json")),
            key=lambda p: (p / "manifest.json").stat().st_mtime,
        )
        raft = [p for p in trained if _manifest(p).get("kind") == "raft"]
        preferred = raft if strategy == "hybrid" else [p for p in trained if p not in raft]
        candidates = preferred or trained
        return candidates[-1] if candidates else None

    def tuned_generator(self, strategy: str = "finetuned") -> tuple[Generator, dict[str, Any]]:
        """The tuned model for a strategy and its manifest: llama.cpp when exported to GGUF, else PEFT."""
        adapter = self.adapter_dir(strategy)
        if adapter is None:
            raise RagtuneError(
                "no tuned generator in this workspace yet: run `ragtune tune generator --data TRAIN.jsonl` "
                "or `ragtune tune raft` (or use --strategy rag or base)"
            )
        manifest = _manifest(adapter)
        if adapter not in self._tuned:
            gguf = manifest.get("exports", {}).get("gguf")
            if gguf and Path(gguf).is_file():
                config = self.config.generator.model_copy(update={"backend": "llama_cpp", "model": gguf})
                self._tuned[adapter] = load_generator(config, adapter="")
            else:
                config = GeneratorConfig(
                    backend="transformers",
                    model=manifest["base_model"],
                    context_window=self.config.generator.context_window,
                )
                self._tuned[adapter] = load_generator(config, adapter=str(adapter / "adapter"))
        return self._tuned[adapter], manifest

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
        self._tuned.clear()
        return report

    def tune_raft(
        self,
        data: Path | None = None,
        *,
        epochs: float | None = None,
        max_steps: int | None = None,
        name: str | None = None,
        resume: bool = False,
        show_progress: bool = True,
    ) -> tuple[TuneReport, RaftBuild]:
        """Build RAFT examples from a question file (default: synthesise one) and LoRA-tune on them."""
        if data is None:
            data = self.root / "synth" / "questions.jsonl"
            if not data.is_file():
                self.synth(out=data, show_progress=show_progress)
        name = name or time.strftime("raft-%Y%m%d-%H%M%S")
        run_dir = self.adapters_dir / name
        built = build_raft(self, read_questions(data), self.config.tune.raft)
        if not built.examples:
            raise DataError(f"{data}: no usable RAFT examples ({built.skipped})")
        run_dir.mkdir(parents=True, exist_ok=True)
        examples = run_dir / "raft.jsonl"
        if not resume:
            examples.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in built.examples))
        config = self.config.tune.generator
        config = config.model_copy(update={"max_length": max(config.max_length, 1024)})  # passages are long
        report = train_generator(
            examples,
            run_dir,
            config,
            epochs=epochs if epochs is not None else self.config.tune.raft.epochs,
            max_steps=max_steps,
            resume=resume,
            console=self.console,
            show_progress=show_progress,
            manifest_extra={"kind": "raft", "citations": "inline", "questions": str(data)},
        )
        self._tuned.clear()
        return report, built

    def export(
        self, adapter: str, fmt: str = "gguf", out: Path | None = None, quant: str = "q8_0"
    ) -> ExportReport:
        """Merge an adapter into its base (safetensors) and convert it to GGUF for llama.cpp."""
        run_dir = self.adapters_dir / adapter
        if not (run_dir / "manifest.json").is_file():
            known = sorted(p.parent.name for p in self.adapters_dir.glob("*/manifest.json"))
            raise ConfigError(f"no adapter {adapter!r}; trained adapters: {', '.join(known) or 'none'}")
        report = export_adapter(run_dir, fmt, out, quant)
        self._tuned.pop(run_dir, None)  # the next tuned answer uses the export
        return report

    def compare(
        self,
        questions: Path,
        strategies: Sequence[str] = ("base", "rag", "finetuned", "hybrid"),
        *,
        report_dir: Path | None = None,
        freshness: Path | None = None,
        retrain: bool = False,
        style: Path | None = None,
        show_progress: bool = True,
    ) -> dict[str, Any]:
        """The same questions through each strategy, a report and a recommendation (see evaluate.compare)."""
        from ragtune.evaluate.compare import (
            check_questions_file,
            default_report_dir,
            parse_strategies,
            run_compare,
        )

        check_questions_file(questions)
        chosen = parse_strategies(list(strategies))
        if style is None and self.config.compare.style:
            style = self.root / self.config.compare.style
        return run_compare(
            self,
            questions,
            chosen,
            report_dir or default_report_dir(self),
            freshness=freshness,
            retrain=retrain,
            style=style,
            show_progress=show_progress,
            console=self.console,
        )

    def advise(self, needs: dict[str, Any], report: Path | None = None) -> tuple[dict[str, Any], Path]:
        """A recommendation from needs and a compare report (default: the latest one)."""
        from pydantic import ValidationError

        from ragtune.config import NeedsConfig
        from ragtune.evaluate.advise import recommend
        from ragtune.evaluate.compare import latest_report

        try:
            checked = NeedsConfig.model_validate(needs)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ConfigError(f"needs: {problems}") from exc
        folder = report or latest_report(self)
        if folder is None or not (folder / "report.json").is_file():
            raise RagtuneError(
                "no finished compare report to advise from: run `ragtune compare --questions Q.jsonl` first"
                + (f" ({folder} has no report.json)" if folder else "")
            )
        return recommend(json.loads((folder / "report.json").read_text()), checked), folder

    def synth(
        self, *, n: int | None = None, out: Path | None = None, show_progress: bool = True
    ) -> SynthReport:
        """Question-answer pairs from the indexed chunks (see ragtune.tune.synth)."""
        return synthesize(self, n=n, out=out, show_progress=show_progress, console=self.console)

    def ask(
        self,
        question: str,
        *,
        strategy: str = "rag",
        groups: Sequence[str] | None = None,
        user: str | None = None,
        history: Sequence[Message] = (),
        on_token: Callable[[str], None] | None = None,
        params: GenerationParams | None = None,
    ) -> Answer:
        """Answer a question with a strategy; the caller's groups bound what retrieval may use."""
        chosen = get_strategy(strategy)
        generator, citation_style = self.generator, self.config.answer.citations
        if chosen.tuned:
            generator, manifest = self.tuned_generator(chosen.name)
            citation_style = manifest.get("citations", citation_style)
        access = self.caller(groups, user)
        if chosen.retrieves:
            self.embedder.load()  # now, so that retrieve_ms measures retrieval, not start-up
        return answer_question(
            question,
            chosen,
            generator,
            params or params_from(self.config.generator),
            retriever=self.retriever if chosen.retrieves else None,
            access=access,
            passages=self.config.answer.passages,
            min_relevance=self.config.answer.min_relevance,
            history=history,
            on_token=on_token,
            citation_style=citation_style,
            persona=self.config.answer.persona,
        )

    def stats(self) -> dict[str, Any]:
        return self.store.stats()

    def close(self) -> None:
        for name in ("store", "embedding_cache", "users"):
            if name in self.__dict__:
                self.__dict__[name].close()
