"""A model-based property test of access: random sequences of ingests (with and without groups, on
folders, sub-folders and files), edits, front-matter edits, watch rounds, uploads and deletes, with the
invariant checked after every step against the real workspace (real embedder, real on-disk index):

- every file is one document;
- each document is readable by exactly the callers its rule (or front matter) allows, where a change
  that would let more callers read happened only with an explicit `widen`;
- a search by any caller, and the citations of a chat answer, hold only what that caller may read;
- a tuned model is offered to, and answers, only callers holding every group it learnt from.

Generation is scripted (it cites its first passage); retrieval, citations and access are the real ones.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from ragtune.access import Access
from ragtune.errors import AccessDeniedError, SourceDocumentError, WideningError
from ragtune.index.embedder import SentenceTransformerEmbedder
from ragtune.ingest.rules import widens
from ragtune.manifest import READERS, Manifest, readers_of
from ragtune.workspace import Workspace
from tests.conftest import ScriptedModel

FILES = ["kb/a.md", "kb/b.csv", "kb/sub/c.md", "kb/sub/d.txt"]
TARGETS = ["kb", "kb/sub", "kb/sub/c.md", "kb/b.csv"]
GROUPS = st.sampled_from([None, [], ["hr"], ["staff"], ["hr", "staff"]])
FRONT_MATTER = st.sampled_from([None, [], ["hr"], ["staff"]])
CALLERS = [[], ["hr"], ["staff"], ["hr", "staff"]]
UPLOADS = ["a.md", "bands.md"]


def _token(name: str) -> str:
    """A word only this file's text holds, so a BM25 search for it finds this file or nothing."""
    return "zq" + "".join(c for c in name if c.isalnum())


def _covers(rule_path: str, file: str) -> bool:
    return file == rule_path or file.startswith(rule_path + "/")


class CitingModel(ScriptedModel):
    """Answers every question by citing its first passage."""

    def __init__(self) -> None:
        super().__init__({})

    def stream(self, messages, params):  # type: ignore[no-untyped-def]
        yield "It says so [1]."


class AccessModel(RuleBasedStateMachine):
    embedder: SentenceTransformerEmbedder

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        self.base = Path(self.tmp.name)
        self.ws = Workspace.init(self.base / "ws", embedder=self.embedder)
        self.front: dict[str, list[str] | None] = dict.fromkeys(FILES)
        self.edits: dict[str, int] = dict.fromkeys(FILES, 0)
        self.rules: dict[str, list[str]] = {}
        self.indexed: dict[str, list[str]] = {}  # file (or upload:NAME) -> groups it must have
        self.readers: list[str] | None = None  # of the tuned adapter, once there is one
        self.ws.__dict__["generator"] = CitingModel()
        for file in FILES:
            self._write(file)

    def teardown(self) -> None:
        self.ws.close()
        self.tmp.cleanup()

    def _write(self, file: str) -> None:
        path = self.base / file
        path.parent.mkdir(parents=True, exist_ok=True)
        body = f"{_token(file)} version {self.edits[file]}"
        if file.endswith(".csv"):
            path.write_text(f"name,value\n{body},1\n")
        elif file.endswith(".md") and self.front[file] is not None:
            path.write_text(f"---\ngroups: {self.front[file]}\n---\n# {file}\n\n{body}\n")
        else:
            path.write_text(f"# {file}\n\n{body}\n")

    def _rule_for(self, file: str) -> tuple[str, list[str]] | None:
        covering = [path for path in self.rules if _covers(path, file)]
        if not covering:
            return None
        path = max(covering, key=len)
        return path, self.rules[path]

    def _effective(self, file: str) -> list[str]:
        found = self._rule_for(file)
        ruled = found[1] if found else []
        declared = self.front[file] if file.endswith(".md") else None
        if declared is None or (ruled and not declared):
            return ruled
        return sorted(set(declared))

    @rule(path=st.sampled_from(TARGETS), groups=GROUPS, widen=st.booleans())
    def ingest(self, path: str, groups: list[str] | None, widen: bool) -> None:
        target = path
        current = self._rule_for(target)
        expect_refusal = False
        if groups is None:
            if current is None:
                self.rules[target] = []
        elif not (current and current[0] == target and current[1] == sorted(groups)):
            if widens(current[1] if current else [], groups) and not widen:
                expect_refusal = True
            else:
                self.rules[target] = sorted(groups)
        try:
            self.ws.ingest([self.base / target], groups=groups, widen=widen, show_progress=False)
        except WideningError:
            assert expect_refusal, "refused a change that widens nothing"
            return
        assert not expect_refusal, f"ingest {target} --groups {groups} widened without --widen"
        for file in FILES:
            if _covers(target, file):
                self._settle(file, self._effective(file), widen)

    def _settle(self, key: str, groups: list[str], widen: bool) -> None:
        stored = self.indexed.get(key)
        if stored is None or widen or not widens(stored, groups):
            self.indexed[key] = groups

    @rule(file=st.sampled_from(FILES))
    def edit(self, file: str) -> None:
        self.edits[file] += 1
        self._write(file)

    @rule(file=st.sampled_from([f for f in FILES if f.endswith(".md")]), groups=FRONT_MATTER)
    def edit_front_matter(self, file: str, groups: list[str] | None) -> None:
        self.front[file] = groups
        self._write(file)

    @rule()
    def watch_round(self) -> None:
        """What `ingest --watch` and the server's watcher run on every change: a sync without groups."""
        self.ingest("kb", None, False)

    @rule(name=st.sampled_from(UPLOADS), groups=st.sampled_from([[], ["hr"], ["staff"]]), widen=st.booleans())
    def upload(self, name: str, groups: list[str], widen: bool) -> None:
        staged = self.ws.uploads.new_staging_dir() / name
        staged.write_text(f"# {name}\n\n{_token('upload' + name)}\n")
        document, _ = self.ws.upload(staged, groups, widen=widen)
        assert document is not None and document.source == name and self.ws.is_upload(document)
        self._settle(f"upload:{name}", sorted(groups), widen)

    @rule(name=st.sampled_from(UPLOADS))
    def delete_upload(self, name: str) -> None:
        found = [
            d
            for d in self.ws.store.documents(self.ws.everyone())
            if self.ws.is_upload(d) and d.source == name
        ]
        assert bool(found) == (f"upload:{name}" in self.indexed)
        if found:
            self.ws.delete(found[0].doc_id)
            del self.indexed[f"upload:{name}"]

    @rule()
    def delete_a_source_document_is_refused(self) -> None:
        found = [d for d in self.ws.store.documents(self.ws.everyone()) if not self.ws.is_upload(d)]
        if found:
            try:
                self.ws.delete(found[0].doc_id)
            except SourceDocumentError:
                return
            raise AssertionError("a document from a source folder was deleted through the API")

    @rule(picks=st.sets(st.integers(0, 5), max_size=3))
    def tune(self, picks: set[int]) -> None:
        """A (re-)tune on some indexed chunks, as `synth.include_restricted = true` would allow: its
        manifest records their groups, as the tune jobs do."""
        documents = self.ws.store.documents(self.ws.everyone())
        chosen = [documents[i % len(documents)] for i in picks] if documents else []
        self.readers = readers_of(d.groups for d in chosen)
        folder = self.ws.layout.adapter("tuned")
        Manifest(
            folder, {"name": "tuned", "kind": "generator-lora", "base_model": "none", READERS: self.readers}
        ).write()

    @rule(caller=st.sampled_from(CALLERS), file=st.sampled_from(FILES))
    def chat(self, caller: list[str], file: str) -> None:
        answer = self.ws.ask(f"{_token(file)} version {self.edits[file]}", strategy="rag", groups=caller)
        key_of = {
            d.doc_id: self._key(d.origin, d.source) for d in self.ws.store.documents(self.ws.everyone())
        }
        for citation in answer.citations:
            groups = self.indexed[key_of[citation.chunk.doc_id]]
            assert not groups or set(groups) & set(caller), (
                f"caller {caller} was cited {citation.chunk.source}"
            )

    @invariant()
    def tuned_models_answer_only_their_readers(self) -> None:
        for caller in CALLERS:
            allowed = self.readers is not None and set(self.readers) <= set(caller)
            assert ("finetuned" in self.ws.strategies(Access.of(caller))) == allowed, (caller, self.readers)
            if self.readers is not None and not allowed:
                try:
                    self.ws.check_model_access("finetuned", Access.of(caller))
                except AccessDeniedError:
                    continue
                raise AssertionError(f"caller {caller} may use a model that learnt from {self.readers}")

    def _key(self, origin: str, source: str) -> str:
        if origin == ".ragtune/uploads":
            return f"upload:{source}"
        return (self.ws.root / origin / source).resolve().relative_to(self.base.resolve()).as_posix()

    @invariant()
    def one_document_per_file_with_its_groups(self) -> None:
        documents = self.ws.store.documents(self.ws.everyone())
        keys = [self._key(d.origin, d.source) for d in documents]
        assert len(keys) == len(set(keys)), f"a file is indexed twice: {sorted(keys)}"
        assert {self._key(d.origin, d.source): d.groups for d in documents} == self.indexed

    @invariant()
    def every_caller_reads_exactly_what_it_may(self) -> None:
        key_of = {
            d.doc_id: self._key(d.origin, d.source) for d in self.ws.store.documents(self.ws.everyone())
        }
        for caller in CALLERS:
            expected = {
                key for key, groups in self.indexed.items() if not groups or set(groups) & set(caller)
            }
            listed = {self._key(d.origin, d.source) for d in self.ws.store.documents(self.ws.caller(caller))}
            assert listed == expected, f"caller {caller}"
            for key in self.indexed:
                word = _token("upload" + key.split(":", 1)[1]) if key.startswith("upload:") else _token(key)
                hits = self.ws.search(word, k=5, mode="bm25", groups=caller)
                found = {key_of[h.chunk.doc_id] for h in hits}
                assert found <= expected, f"caller {caller} found {found - expected} searching {word}"


def test_access_holds_under_any_sequence_of_commands(embedder: SentenceTransformerEmbedder) -> None:
    AccessModel.embedder = embedder
    run_state_machine_as_test(
        AccessModel,
        settings=settings(
            max_examples=6,
            stateful_step_count=10,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
