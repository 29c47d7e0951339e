"""A long-running process (a server) follows what another process changed in the same workspace."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ragtune.config import update_config
from ragtune.index.embedder import SentenceTransformerEmbedder
from ragtune.workspace import Workspace
from tests.conftest import HR_DOCS


def test_a_switched_index_is_followed_and_never_written_to_again(
    make_workspace: Callable[..., Workspace], embedder: SentenceTransformerEmbedder
) -> None:
    server = make_workspace()
    server.ingest([HR_DOCS / "policies"], show_progress=False)
    old_index = server.store
    cli = Workspace.open(server.root, embedder=embedder)
    # What `tune retriever` does from another process (a tuned embedder is named by its folder).
    tuned = SentenceTransformerEmbedder(str(Path(embedder.path).resolve()))
    folder, _ = cli.switch_embedder(tuned, "switched")

    staged = server.uploads.new_staging_dir() / "notice.md"
    staged.write_text("# Notice\n\nThe zqcanteen closes early on Fridays.\n")
    server.upload(staged)
    assert server.store is not old_index
    assert Path(server.layout.active_index()).name == folder
    reopened = Workspace.open(server.root)  # a restart: the embedder the workspace points at
    assert "notice.md" in {d.source for d in reopened.store.documents(reopened.everyone())}, (
        "the upload went to the index the workspace points at, so it survives a restart"
    )
    # An embedder with no manifest counts as learnt from every group (fail closed): ask as hr.
    assert [h.chunk.source for h in server.search("zqcanteen", mode="bm25", k=1, groups=["hr"])] == ["notice.md"]


def test_config_changes_are_taken_up_without_a_restart(make_workspace: Callable[..., Workspace]) -> None:
    server = make_workspace()
    assert server.config.retrieval.k == 5
    update_config(server.layout.config_file, "retrieval", {"k": 2})
    update_config(server.layout.config_file, "users", {"erin": {"groups": ["hr"]}})
    server.follow()
    assert server.config.retrieval.k == 2 and server.retriever.config.k == 2
    assert server.caller(user="erin").groups == frozenset({"hr"})
