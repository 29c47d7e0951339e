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
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from rich.console import Console

from ragtune.access import Access, UserStore, access_for
from ragtune.config import (
    CONFIG_FILE,
    DEFAULT_TOML,
    Config,
    GeneratorConfig,
    SourceRule,
    load_config,
    write_source_rule,
)
from ragtune.errors import (
    AccessDeniedError,
    ConfigError,
    IngestBusyError,
    RagtuneError,
    SourceDocumentError,
    UploadError,
    WideningError,
    WorkspaceError,
)
from ragtune.generate import GenerationParams, Generator, Message, load_generator, params_from
from ragtune.groups import check_groups
from ragtune.index.embedder import BatchingEmbedder, EmbeddingCache, SentenceTransformerEmbedder
from ragtune.index.local_store import LocalStore
from ragtune.index.milvus_store import MilvusStore, drop_index_folder
from ragtune.index.rerank import CrossEncoderReranker
from ragtune.index.retriever import Retriever
from ragtune.index.store import Store, StoredDocument
from ragtune.ingest.chunking import chunk_document, load_tokenizer
from ragtune.ingest.rules import AccessRules, relative_path, widens
from ragtune.ingest.sources import (
    FileSource,
    Source,
    SqlSource,
    check_source_path,
    options_fingerprint,
    table_name,
)
from ragtune.ingest.sync import IngestReport, sync_source
from ragtune.ingest.uploads import UploadFolder
from ragtune.layout import Layout, find_workspace
from ragtune.manifest import MANIFEST, Manifest
from ragtune.strategies import STRATEGIES, answer_question, get_strategy
from ragtune.types import Answer, Chunk, Document, Hit, document_id


class Workspace:
    def __init__(self, root: Path, config: Config, *, batch_embeddings: bool = False) -> None:
        self.root = root
        self.batch_embeddings = batch_embeddings  # a server: concurrent searches share encode calls
        self.layout = Layout(root)
        self.config = config
        self.layout.create()  # private (0700), also for a workspace made before that was so
        self.console = Console(stderr=True)
        self._tuned: dict[Path, tuple[tuple[int, int], Generator]] = {}
        self._writer = threading.Lock()  # see _ingest_lock
        self._config_stamp = _stamp(self.layout.config_file)
        self._active_seen = self.active()

    @classmethod
    def init(
        cls, directory: Path | str = ".", *, embedder: SentenceTransformerEmbedder | None = None
    ) -> Workspace:
        """Create ragtune.toml (unless present) and the state folder; returns the opened workspace."""
        root = Path(directory).resolve()
        try:
            root.mkdir(parents=True, exist_ok=True)
            config_path = root / CONFIG_FILE
            if not config_path.exists():
                config_path.write_text(DEFAULT_TOML, encoding="utf-8")
            Layout(root).create()
        except OSError as exc:
            raise WorkspaceError(f"cannot create a workspace in {root}: {exc.strerror or exc}") from exc
        return cls.open(root, embedder=embedder)

    @classmethod
    def open(
        cls,
        directory: Path | str | None = None,
        *,
        batch_embeddings: bool = False,
        embedder: SentenceTransformerEmbedder | None = None,
    ) -> Workspace:
        """Open the workspace at `directory`, or the nearest one above the current folder.

        `embedder`: an already loaded embedder of the configured model, shared instead of loading another.
        """
        start = Path(directory) if directory is not None else Path.cwd()
        if directory is not None and (start / CONFIG_FILE).is_file():
            root: Path | None = start.resolve()
        else:
            root = find_workspace(start)
        if root is None:
            raise WorkspaceError(
                f"no ragtune.toml in {start.resolve()} or any folder above it; run `ragtune init` there first"
            )
        ws = cls(root, load_config(root / CONFIG_FILE), batch_embeddings=batch_embeddings)
        if embedder is not None:
            ws.__dict__["embedder"] = embedder  # what the cached property would have loaded
        return ws

    def active(self) -> dict[str, str]:
        """The tuned embedder and its index, once `tune retriever` has switched to them (else {})."""
        return self.layout.read_active()

    @cached_property
    def embedder(self) -> SentenceTransformerEmbedder:
        cfg = self.config.embedder
        model = self.active().get("embedder", cfg.model)
        return SentenceTransformerEmbedder(model, batch_size=cfg.batch_size, device=cfg.device)

    @cached_property
    def store(self) -> Store:
        cfg = self.config.index
        if cfg.backend == "milvus":
            return MilvusStore(
                self.layout.active_index(),
                dim=self.embedder.dim,
                model=self.embedder.name,
                uri=cfg.uri,
                token=self._milvus_token(),
                collection=cfg.collection,
                vector_index=cfg.milvus_index,
                ef_search=cfg.ef_search,
            )
        return LocalStore(
            self.layout.active_index(),
            dim=self.embedder.dim,
            model=self.embedder.name,
            ann_min_chunks=cfg.ann_min_chunks,
            ef_search=cfg.ef_search,
        )

    def _milvus_token(self) -> str:
        """Credentials come from the environment, never from ragtune.toml."""
        return os.environ.get(self.config.index.token_env, "")

    def training_access(self) -> Access:
        """What training data may be built from: public chunks only, unless synth.include_restricted.

        A tuned model answers everyone, so text from a restricted document must not reach its weights.
        """
        return self.everyone() if self.config.synth.include_restricted else Access()

    def group_holders(self) -> dict[str, list[str]]:
        """group -> who holds it: API users, [users] in config, and the anonymous caller."""
        held = self.users.holders()
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

    def rules_overview(self) -> list[dict[str, Any]]:
        """Every `[[sources]]` rule with the number of indexed documents it decides the groups of."""
        rules = self.access_rules()
        counts = {rule.path: 0 for rule in rules.rules}
        for document in self.store.documents(self.everyone()):
            if document.origin.startswith("sql:"):
                rule = rules.rule_named(document.origin)
            else:
                rule = rules.rule_for(self.root / document.origin / document.source)
            if rule is not None:
                counts[rule.path] += 1
        return [{"path": r.path, "groups": list(r.groups), "documents": counts[r.path]} for r in rules.rules]

    def everyone(self) -> Access:
        """An access reading every group in the index: for internal jobs (synth, mining), never callers."""
        return Access(frozenset(self.store.groups()))

    def switch_embedder(self, embedder: SentenceTransformerEmbedder, name: str) -> tuple[str, int]:
        """Re-embed the whole index into a new folder, then point the workspace at it in one rename.

        Searches keep using the old index until the pointer file is replaced; ingests wait (lock).
        """
        with self._ingest_lock():
            folder = f"index-{name}"
            temp = self.layout.index(f".{folder}.tmp")
            count = self.store.reembed_copy(temp, embedder, self.embedding_cache)
            if self.config.index.backend == "milvus":  # its collections go with the folder
                drop_index_folder(self.layout.index(folder), self.config.index.uri, self._milvus_token())
            shutil.rmtree(self.layout.index(folder), ignore_errors=True)
            os.replace(temp, self.layout.index(folder))
            self.layout.write_active(Path(embedder.path), folder)
            self._active_seen = self.active()
        if "store" in self.__dict__:
            self.store.close()
        for cached in ("embedder", "store", "retriever", "_tokenizer"):
            self.__dict__.pop(cached, None)
        return folder, count

    @cached_property
    def embedding_cache(self) -> EmbeddingCache:
        return EmbeddingCache(self.layout.embedding_cache)

    @cached_property
    def retriever(self) -> Retriever:
        reranker = None
        if self.config.rerank.model:
            reranker = CrossEncoderReranker(
                self.config.rerank.model, top_n=self.config.rerank.top_n, device=self.config.embedder.device
            )
        embedder = BatchingEmbedder(self.embedder) if self.batch_embeddings else self.embedder
        return Retriever(self.store, embedder, self.config.retrieval, reranker)

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
        with self._writer, open(self.layout.ingest_lock, "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise IngestBusyError(
                    "another ingest is running in this workspace; wait for it to finish"
                ) from exc
            self.follow()  # another process may have switched the index: never write to the old one
            yield

    @cached_property
    def uploads(self) -> UploadFolder:
        return UploadFolder(self.layout.uploads, self.layout.uploads_staging)

    def add_upload(self, staged: Path, groups: Sequence[str] = (), *, widen: bool = False) -> IngestReport:
        """Index a staged file as an upload; the earlier upload of that name is kept if this one fails."""
        groups = check_groups(groups)
        return self.uploads.add(
            staged,
            groups,
            lambda path, g: self._sync_files(
                path, self.uploads.folder, lambda _: g, widen=widen, show_progress=False
            ),
        )

    def upload(
        self, staged: Path, groups: Sequence[str] = (), *, widen: bool = False
    ) -> tuple[StoredDocument | None, IngestReport]:
        """Index a staged file as an upload and return that very document; a file that fails is an UploadError.

        The document is looked up by its id in the uploads folder, never by file name: an ingested
        file of the same name is another document.
        """
        report = self.add_upload(staged, groups, widen=widen)
        if report.failed:
            raise UploadError(f"{staged.name} was not indexed: {report.failed[0]['error']}")
        return self.store.document(document_id(self._uploads_origin, staged.name), self.everyone()), report

    @cached_property
    def _uploads_origin(self) -> str:
        return relative_path(self.root, self.uploads.folder)

    def is_upload(self, document: StoredDocument) -> bool:
        return document.origin == self._uploads_origin

    def delete(self, doc_id: str) -> StoredDocument | None:
        """Remove an uploaded document and its file (whatever its groups: this is an admin's act).

        A document from a source folder is refused: the next sync would bring it back from its file,
        so the file is what to remove.
        """
        document = self.store.document(doc_id, self.everyone())
        if document is None:
            return None
        if not self.is_upload(document):
            where = (
                document.source
                if document.origin.startswith("sql:")
                else f"{document.origin}/{document.source}"
            )
            raise SourceDocumentError(
                f"{document.source} comes from a source ({where}), not an upload: remove it there "
                "and re-sync (`ragtune ingest`), or the next sync brings it back"
            )
        self.delete_document(document.origin, document.source)
        (self.uploads.folder / document.source).unlink(missing_ok=True)
        return document

    def strategies(self, access: Access | None = None) -> list[str]:
        """The strategies that can answer `access` (default: the public caller) now: tuned ones once an
        adapter exists, and only those whose models learnt from groups the caller holds all of."""
        caller = access if access is not None else Access()
        ready = [name for name, s in STRATEGIES.items() if not s.tuned or self.adapter_dir(name) is not None]
        return [name for name in ready if self._model_denial(name, caller) is None]

    def model_readers(self, folder: Path) -> list[str]:
        """The groups a caller must hold all of to use a trained model (manifest "readers").

        A model trained before readers were recorded counts as learnt from every group in the index:
        nothing says it learnt from public text only, so it fails closed.
        """
        recorded = Manifest.read(folder).readers if Manifest.exists(folder) else None
        return recorded if recorded is not None else sorted(self.store.groups())

    def check_model_access(self, strategy: str, access: Access) -> None:
        """Refuse (AccessDeniedError, HTTP 403) a caller lacking a group the models behind `strategy`
        learnt from: the tuned adapter, and the tuned embedder when the strategy retrieves.

        Retrieval applies access per chunk; weights cannot, so whoever uses them must hold it all.
        """
        denial = self._model_denial(strategy, access)
        if denial is not None:
            raise denial

    def check_index_access(self, access: Access, use: str = "search") -> None:
        """Refuse a caller lacking a group the tuned embedder serving the index learnt from (if any)."""
        denial = self._index_denial(use, access)
        if denial is not None:
            raise denial

    def _model_denial(self, strategy: str, access: Access) -> AccessDeniedError | None:
        chosen = get_strategy(strategy)
        denial = self._index_denial(chosen.name, access) if chosen.retrieves else None
        adapter = self.adapter_dir(chosen.name) if chosen.tuned and denial is None else None
        return self._folder_denial(chosen.name, adapter, access) if adapter is not None else denial

    def _index_denial(self, use: str, access: Access) -> AccessDeniedError | None:
        active = self.active()
        return self._folder_denial(use, Path(active["embedder"]), access) if active else None

    def _folder_denial(self, use: str, folder: Path, access: Access) -> AccessDeniedError | None:
        """The refusal for one trained model (adapter or embedder folder), if the caller lacks a group."""
        readers = self.model_readers(folder)
        missing = sorted(set(readers) - access.groups)
        if not missing:
            return None
        what = f"adapter {folder.name!r}" if folder.parent == self.layout.adapters else "the tuned embedder"
        lacking = f"the caller lacks {', '.join(missing)}"
        if Manifest.exists(folder) and Manifest.read(folder).readers is not None:
            return AccessDeniedError(
                f"{use} refused: {what} learnt from text of groups {', '.join(readers)} and answers only "
                f"callers holding all of them; {lacking}",
                missing,
            )
        return AccessDeniedError(
            f"{use} refused: {what} was trained before ragtune recorded what a model learnt from, so it "
            f"counts as learnt from every group in the index; {lacking}. Retrain it, or, if it learnt only "
            f'from public text, add "readers": [] to {folder / MANIFEST}',
            missing,
        )

    def access_rules(self) -> AccessRules:
        """The `[[sources]]` rules as ragtune.toml says now (read afresh: another process may have
        changed them while this one, a server, runs)."""
        return AccessRules(self.root, tuple(load_config(self.layout.config_file).sources))

    def sync(
        self, source: Source, *, prune: bool = True, widen: bool = False, show_progress: bool = True
    ) -> IngestReport:
        """Sync any Source (files, SQL rows, records) into the index."""
        with self._ingest_lock():
            report = sync_source(
                source,
                self.store,
                self.embedder,
                self.embedding_cache,
                self.chunk,
                prune=prune,
                widen=widen,
                batch_documents=self.config.ingest.batch_documents,
                console=self.console,
                show_progress=show_progress,
            )
            if report.changed:  # what building and keeping the index has cost, for compare's cost column
                entry = {"at": time.time(), "origin": source.origin, **report.to_dict()}
                with self.layout.ingest_log.open("a") as log:
                    log.write(json.dumps(entry) + "\n")
            return report

    def delete_document(self, origin: str, source: str) -> None:
        """Remove one document from the index now (searches stop seeing it at once)."""
        with self._ingest_lock():
            self.store.write([], delete_sources=[(origin, source)])
            self.store.refresh()

    def ingest_seconds(self) -> float:
        """Total seconds spent building and updating the index (from the ingest log)."""
        log = self.layout.ingest_log
        if not log.is_file():
            return 0.0
        return round(sum(json.loads(line)["seconds"] for line in log.read_text().splitlines() if line), 2)

    def ingest(
        self,
        paths: Sequence[Path | str],
        *,
        groups: Sequence[str] | None = None,
        meta: dict[str, Any] | None = None,
        prune: bool = True,
        widen: bool = False,
        show_progress: bool = True,
    ) -> IngestReport:
        """Ingest files and folders; re-running it syncs (see ragtune.ingest.sync).

        `groups` (None: keep the rules as they are) records the access rule of each path in
        ragtune.toml; every file then gets the groups of the most specific rule covering it, in this
        and every later sync. A change that lets more callers read is refused unless `widen`.
        """
        if not paths:
            raise RagtuneError("give at least one file or folder to ingest")
        total = IngestReport()
        for raw in paths:
            path = check_source_path(Path(raw))
            key, rules = relative_path(self.root, path), self.access_rules()
            # Folders inside it that were ingested on their own before: their files come under this one.
            nested = self._nested_documents(path) if rules.rule_named(key) is None and path.is_dir() else {}
            rules = self._adopt_rules(rules, nested)  # judged by the rules that covered them until now
            rules = rules.with_rule(self._record_rule(key, rules.rule_for(path), groups, widen))
            root = rules.identity_root(path)
            report = self._sync_files(
                path, root, rules.groups_for, meta=meta, prune=prune, widen=widen, show_progress=show_progress
            )
            if path == root:
                report.deleted += self._rehome(nested)
            total.add(report)
        return total

    def _record_rule(
        self, key: str, current: SourceRule | None, groups: Sequence[str] | None, widen: bool
    ) -> SourceRule:
        """The rule for `key` (a path as rules spell it, or `sql:NAME`) after this command, written
        to ragtune.toml when groups are given or nothing covers it yet (then public).

        `current`: the rule that covers it now (its own or a folder's). Refuses a change that would
        let more callers read, unless `widen`.
        """
        if groups is None:
            if current is not None:
                return current
            # Ingested before rules existed: keep the groups it was given then, else public.
            indexed = [d for d in self.store.documents(self.everyone()) if d.origin == key]
            groups = _usual_groups(self._unruled(indexed, self.access_rules()))
        rule = SourceRule(path=key, groups=check_groups(groups))
        if current is not None and current.path == rule.path and current.groups == rule.groups:
            return rule
        old = list(current.groups) if current else []
        if widens(old, rule.groups) and not widen:
            raise WideningError(
                f"{key} is readable by groups {', '.join(old)} now; --groups {', '.join(rule.groups) or '(public)'} "
                "would let more callers read it. Run again with --widen to confirm (nothing was changed)"
            )
        write_source_rule(self.layout.config_file, rule)
        return rule

    def _sync_files(
        self,
        path: Path,
        root: Path,
        groups_for: Callable[[Path], Sequence[str]],
        *,
        meta: dict[str, Any] | None = None,
        prune: bool = True,
        widen: bool = False,
        show_progress: bool = True,
    ) -> IngestReport:
        """Sync the files under `path`, named relative to `root`, with the groups `groups_for` gives."""
        meta = dict(meta or {})
        source = FileSource(
            path,
            root=root,
            origin=relative_path(self.root, root),
            groups_for=groups_for,
            meta=meta,
            exclude=self.config.ingest.exclude,
            max_bytes=int(self.config.ingest.max_file_mb * 1024 * 1024),
            rows_per_chunk=self.config.chunking.rows_per_chunk,
            fingerprint=self._fingerprint((), meta),
            parse_timeout_s=self.config.ingest.parse_timeout_s,
            parse_memory_mb=self.config.ingest.parse_memory_mb,
        )
        report = self.sync(source, prune=prune and path.is_dir(), widen=widen, show_progress=show_progress)
        report.notices.extend({"path": name, "message": message} for name, message in source.notices)
        return report

    def _nested_documents(self, root: Path) -> dict[str, list[StoredDocument]]:
        """origin -> documents, for the folders inside `root` that were once ingested on their own."""
        nested: dict[str, list[StoredDocument]] = {}
        for document in self.store.documents(self.everyone()):
            folder = (self.root / document.origin).resolve()
            inside = folder != root and folder.is_relative_to(root) and folder.is_dir()
            if inside and not any(part.startswith(".") for part in folder.relative_to(root).parts):
                nested.setdefault(document.origin, []).append(document)
        return nested

    def _adopt_rules(self, rules: AccessRules, nested: dict[str, list[StoredDocument]]) -> AccessRules:
        """Write down, as rules, the groups that folders ingested before rules existed were given
        (their documents' most common groups), so that re-homing them does not make them public."""
        for origin, documents in nested.items():
            groups = _usual_groups(self._unruled(documents, rules))
            if groups and rules.rule_named(origin) is None:
                rule = SourceRule(path=origin, groups=groups)
                write_source_rule(self.layout.config_file, rule)
                rules = rules.with_rule(rule)
        return rules

    def _unruled(self, documents: Sequence[StoredDocument], rules: AccessRules) -> list[StoredDocument]:
        """The documents no rule covers: indexed before rules existed, so their groups say what was meant."""
        return [d for d in documents if rules.rule_for(self.root / d.origin / d.source) is None]

    def _rehome(self, nested: dict[str, list[StoredDocument]]) -> int:
        """Remove the documents of nested folders once their files belong to the folder above (just
        synced): one file must be one document."""
        doomed = sorted((d.origin, d.source) for documents in nested.values() for d in documents)
        if doomed:
            with self._ingest_lock():
                self.store.write([], delete_sources=doomed)
                self.store.refresh()
        return len(doomed)

    def ingest_sql(
        self,
        url: str,
        query: str,
        id_column: str,
        *,
        text_template: str | None = None,
        name: str | None = None,
        groups: Sequence[str] | None = None,
        prune: bool = True,
        widen: bool = False,
        show_progress: bool = True,
    ) -> IngestReport:
        """Each row of the query becomes a document `sql:<name>:<id>`; re-sync works by row id.

        Its groups are a rule like a folder's (`[[sources]] path = "sql:<name>"`), kept by every re-sync.
        """
        key = f"sql:{name or table_name(query)}"
        rules = self.access_rules()
        groups = self._record_rule(key, rules.rule_named(key), groups, widen).groups
        source = SqlSource(
            url,
            query,
            id_column,
            name=name,
            text_template=text_template,
            groups=groups,
            fingerprint=self._fingerprint(groups, {"template": text_template or ""}),
        )
        return self.sync(source, prune=prune, widen=widen, show_progress=show_progress)

    def caller(
        self,
        groups: Sequence[str] | None = None,
        user: str | None = None,
        filters: dict[str, str] | None = None,
    ) -> Access:
        """The access of a caller named by groups, or by a user (`ragtune users add`, or [users] in config)."""
        return access_for(self.users, groups=groups, user=user, filters=filters)

    @cached_property
    def users(self) -> UserStore:
        return UserStore(self.layout.users_db, {name: u.groups for name, u in self.config.users.items()})

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
        """Chunks for a query; only those the caller may read are ever candidates, and only for a caller
        who may use the tuned embedder serving the index (if any)."""
        access = self.caller(groups, user, filters)
        self.check_index_access(access)
        return self.retriever.retrieve(query, k=k, mode=mode, access=access)

    @cached_property
    def generator(self) -> Generator:
        """The configured chat model, loaded on first use (it is the slow part of start-up)."""
        return load_generator(self.config.generator)

    def adapter_dir(self, strategy: str = "finetuned") -> Path | None:
        """The adapter a tuned strategy uses: the one named in config, else the newest fitting one.

        `hybrid` prefers one trained in its prompt (RAFT, tone, --with-passages); `finetuned` one that is not.
        """
        named = self.config.tune.hybrid_adapter if strategy == "hybrid" else self.config.tune.adapter
        if named:
            chosen = self.layout.adapter(named)
            if not Manifest.exists(chosen):
                raise ConfigError(
                    f"adapter {named!r} (from ragtune.toml [tune]): no trained adapter of that name"
                )
            return chosen
        trained = Manifest.newest_first(self.layout.adapters)
        reads = [m.folder for m in trained if m.get("prompt_layout")]
        others = [m.folder for m in trained if not m.get("prompt_layout")]
        candidates = (reads if strategy == "hybrid" else others) or [m.folder for m in trained]
        return candidates[0] if candidates else None

    def reload_config(self) -> None:
        """Read ragtune.toml again (after a job wrote to it); the retriever and users follow on next use.

        The old user store is left to the garbage collector rather than closed: a request on another
        thread may be reading it right now.
        """
        self._config_stamp = _stamp(self.layout.config_file)
        self.config = load_config(self.layout.config_file)
        self.__dict__.pop("retriever", None)
        self.__dict__.pop("users", None)

    def follow(self) -> None:
        """Take up what another process changed since: ragtune.toml (rules, [retrieval], [answer],
        [users]) and the active index of `tune retriever`, so that a long-running server neither
        answers from nor writes to a superseded index. Two stats when nothing changed."""
        if _stamp(self.layout.config_file) != self._config_stamp:
            self.reload_config()
        active = self.active()
        if active != self._active_seen:
            self._active_seen = active
            for cached in ("embedder", "store", "retriever", "_tokenizer"):
                self.__dict__.pop(cached, None)  # a search in flight keeps the old objects it holds

    def forget_tuned(self) -> None:
        """Drop loaded tuned models, so that the next tuned answer loads the newest adapter or export."""
        self._tuned.clear()

    def tuned_generator(
        self, strategy: str = "finetuned", access: Access | None = None
    ) -> tuple[Generator, dict[str, Any]]:
        """The tuned model for a strategy and its manifest: llama.cpp when exported to GGUF, else PEFT.

        With `access`, a caller lacking a group the adapter learnt from is refused before it loads.
        """
        adapter = self.adapter_dir(strategy)
        if adapter is None:
            raise RagtuneError(
                "no tuned generator in this workspace yet: run `ragtune tune generator --data TRAIN.jsonl` "
                "or `ragtune tune raft` (or use --strategy rag or base)"
            )
        denial = self._folder_denial(strategy, adapter, access) if access is not None else None
        if denial is not None:
            raise denial
        return self.adapter_generator(adapter)

    def adapter_generator(self, adapter: Path) -> tuple[Generator, dict[str, Any]]:
        """One trained adapter as a generator, loaded once per version of its manifest (a re-tune or
        an export under the same name replaces it in a running server), and its manifest."""
        manifest = Manifest.read(adapter).data
        version = _stamp(adapter / MANIFEST)
        loaded = self._tuned.get(adapter)
        if loaded is None or loaded[0] != version:
            gguf = manifest.get("exports", {}).get("gguf")
            if gguf and Path(gguf).is_file():
                config = self.config.generator.model_copy(update={"backend": "llama_cpp", "model": gguf})
                self._tuned[adapter] = (version, load_generator(config, adapter=""))
            else:
                config = GeneratorConfig(
                    backend="transformers",
                    model=manifest["base_model"],
                    context_window=self.config.generator.context_window,
                )
                self._tuned[adapter] = (version, load_generator(config, adapter=str(adapter / "adapter")))
        return self._tuned[adapter][1], manifest

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
        """Answer a question with a strategy; the caller's groups bound what retrieval may use, and a
        tuned model answers only a caller holding every group it learnt from (check_model_access)."""
        chosen = get_strategy(strategy)
        access = self.caller(groups, user)
        if chosen.retrieves:
            self.check_index_access(access, chosen.name)  # the adapter: by tuned_generator, before it loads
        generator, citation_style, adapter = self.generator, self.config.answer.citations, None
        if chosen.tuned:
            generator, manifest = self.tuned_generator(chosen.name, access)
            citation_style, adapter = manifest.get("citations", citation_style), manifest["name"]
        if chosen.retrieves:
            self.embedder.load()  # now, so that retrieve_ms measures retrieval, not start-up
        answer = answer_question(
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
        if adapter is not None:
            answer.debug["adapter"] = adapter
        return answer

    def stats(self) -> dict[str, Any]:
        return self.store.stats()

    def close(self) -> None:
        for name in ("store", "embedding_cache", "users"):
            if name in self.__dict__:
                self.__dict__[name].close()


def _usual_groups(documents: Sequence[StoredDocument]) -> list[str]:
    """The groups most documents of a folder carry ([] when none, or when most are public)."""
    counts = Counter(tuple(d.groups) for d in documents)
    return list(counts.most_common(1)[0][0]) if counts else []


def _stamp(path: Path) -> tuple[int, int]:
    """A file's modification time and size: a change another process made, seen without reading it."""
    try:
        info = path.stat()
    except OSError:
        return (0, 0)
    return (info.st_mtime_ns, info.st_size)
