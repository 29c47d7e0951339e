"""Incremental sync against a real on-disk index and the real embedder."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ragtune.errors import IngestError
from ragtune.ingest.sources import Failure
from ragtune.ingest.sync import Loaded, read_ahead
from ragtune.workspace import Workspace
from tests.conftest import HR


def sources(ws: Workspace, query: str, **kwargs: object) -> list[str]:
    return [hit.chunk.source for hit in ws.search(query, **kwargs)]  # type: ignore[arg-type]


def test_first_ingest_indexes_every_format(make_workspace: Callable[..., Workspace], hr_copy: Path) -> None:
    ws = make_workspace(warm=False)
    report = ws.ingest([hr_copy], show_progress=False)
    assert report.failed == []
    assert report.added == len([p for p in hr_copy.rglob("*") if p.is_file()])
    assert report.chunks_embedded == report.chunks_written > report.added
    indexed = {d.source.rsplit(".", 1)[-1] for d in ws.store.documents(ws.caller(["hr"]))}
    assert {"md", "html", "pdf", "docx", "csv", "json", "jsonl", "txt"} <= indexed


def test_unchanged_reingest_embeds_nothing(make_workspace: Callable[..., Workspace], hr_copy: Path) -> None:
    ws = make_workspace()
    first = ws.ingest([hr_copy], show_progress=False)
    generation = ws.store.generation
    again = ws.ingest([hr_copy], show_progress=False)
    assert (again.added, again.updated, again.deleted, again.chunks_embedded) == (0, 0, 0, 0)
    assert again.unchanged == first.added
    assert ws.store.generation == generation, "a no-op sync writes nothing"


def test_changed_file_reembeds_only_changed_chunks(
    make_workspace: Callable[..., Workspace], hr_copy: Path
) -> None:
    ws = make_workspace()
    ws.ingest([hr_copy], show_progress=False)
    policy = hr_copy / "policies" / "annual-leave.md"
    policy.write_text(
        policy.read_text().replace("25 days of paid annual leave", "27 days of paid annual leave")
    )
    report = ws.ingest([hr_copy], show_progress=False)
    assert (report.updated, report.added, report.unchanged) == (1, 0, report.unchanged)
    assert report.chunks_embedded == 1, "only the chunk whose text changed is embedded again"
    assert report.chunks_written > 1
    hit = ws.search("How many days of paid annual leave per calendar year?", k=1)[0]
    assert "27 days" in hit.chunk.text and "25 days" not in hit.chunk.text


def test_deleted_file_disappears_from_search(make_workspace: Callable[..., Workspace], hr_copy: Path) -> None:
    ws = make_workspace()
    ws.ingest([hr_copy], show_progress=False)
    assert "txt/pension-provider-memo.txt" in sources(ws, "Northstar Pensions provider switch memo", k=3)
    (hr_copy / "txt" / "pension-provider-memo.txt").unlink()
    kept = ws.ingest([hr_copy], prune=False, show_progress=False)
    assert kept.deleted == 0
    assert "txt/pension-provider-memo.txt" in sources(ws, "Northstar Pensions provider switch memo", k=3)
    pruned = ws.ingest([hr_copy], show_progress=False)
    assert pruned.deleted == 1
    assert "txt/pension-provider-memo.txt" not in sources(ws, "Northstar Pensions provider switch memo", k=10)


def test_bad_files_are_skipped_and_everything_else_indexed(
    make_workspace: Callable[..., Workspace], hr_copy: Path
) -> None:
    ws = make_workspace(config="[ingest]\nmax_file_mb = 0.5\n")
    bad = hr_copy / "bad"
    bad.mkdir()
    (bad / "corrupt.pdf").write_bytes(b"%PDF-1.7\n garbage")
    (bad / "fake.docx").write_text("not a zip")
    (bad / "binary.txt").write_bytes(b"\x00\x01\x02" * 10)
    (bad / "empty.md").write_text("")
    (bad / "slides.pptx").write_bytes(b"PK")
    (bad / "huge.txt").write_text("word " * 200_000)
    (bad / "dangling.md").symlink_to(bad / "missing-target.md")
    report = ws.ingest([hr_copy], show_progress=False)
    failed = {f["path"]: f["error"] for f in report.failed}
    assert set(failed) == {
        f"bad/{n}"
        for n in (
            "corrupt.pdf",
            "fake.docx",
            "binary.txt",
            "empty.md",
            "slides.pptx",
            "huge.txt",
            "dangling.md",
        )
    }
    assert "over the 0.5 MB limit" in failed["bad/huge.txt"]
    assert "cannot read" in failed["bad/dangling.md"]
    assert report.added == len([p for p in hr_copy.rglob("*") if p.is_file()]) - 6


def test_a_file_that_turns_bad_keeps_its_previous_version(
    make_workspace: Callable[..., Workspace], hr_copy: Path
) -> None:
    ws = make_workspace()
    ws.ingest([hr_copy], show_progress=False)
    (hr_copy / "handbook" / "onboarding.pdf").write_bytes(b"%PDF-1.4 truncated")
    report = ws.ingest([hr_copy], show_progress=False)
    assert [f["path"] for f in report.failed] == ["handbook/onboarding.pdf"]
    assert report.deleted == 0
    assert "handbook/onboarding.pdf" in sources(ws, "buddy programme first day onboarding", k=5)


def test_groups_restrict_visibility_inside_retrieval(
    make_workspace: Callable[..., Workspace], hr_copy: Path
) -> None:
    ws = make_workspace(config='[users.dana]\ngroups = ["hr"]\n[users.sam]\ngroups = ["engineering"]\n')
    ws.ingest([hr_copy], show_progress=False)
    query = "salary band midpoint for a senior engineer"
    for kwargs in ({}, {"groups": ["engineering"]}, {"user": "sam"}):
        hits = ws.search(query, k=10, **kwargs)  # type: ignore[arg-type]
        assert len(hits) == 10, "top-k is filled with readable chunks (filter before top-k)"
        assert all(h.chunk.source != "policies/salary-bands.md" for h in hits)
    for kwargs in ({"groups": ["hr"]}, {"user": "dana"}):
        assert sources(ws, query, k=3, **kwargs)[0] == "policies/salary-bands.md"


def test_ingest_groups_flag_applies_unless_front_matter_says_otherwise(
    make_workspace: Callable[..., Workspace], hr_copy: Path
) -> None:
    ws = make_workspace()
    ws.ingest([hr_copy / "policies"], groups=["staff"], meta={"kind": "policy"}, show_progress=False)
    documents = {d.source: d for d in ws.store.documents(ws.caller(["staff", "hr"]))}
    assert documents["annual-leave.md"].groups == ["staff"]
    assert documents["salary-bands.md"].groups == ["hr"]
    assert documents["annual-leave.md"].meta["kind"] == "policy"
    assert ws.search("annual leave", k=3) == [], "a caller without groups sees none of these"
    hits = ws.search("annual leave", k=3, groups=["staff"], filters={"source": "annual-*"})
    assert hits and all(h.chunk.source == "annual-leave.md" for h in hits)


def test_sql_rows_sync_by_id(make_workspace: Callable[..., Workspace], tmp_path: Path) -> None:
    database = tmp_path / "offices.sqlite"
    database.write_bytes((HR / "offices.sqlite").read_bytes())
    url = f"sqlite:///{database}"
    ws = make_workspace()
    first = ws.ingest_sql(url, "SELECT * FROM offices", "id", show_progress=False)
    assert first.added == 6
    assert ws.search("Who is the office manager in Lisbon?", k=1)[0].chunk.source == "sql:offices:3"
    with sqlite3.connect(database) as db:
        db.execute("UPDATE offices SET office_manager = 'Rita Moreira' WHERE id = 3")
        db.execute("DELETE FROM offices WHERE id = 6")
    second = ws.ingest_sql(url, "SELECT * FROM offices", "id", show_progress=False)
    assert (second.added, second.updated, second.deleted, second.unchanged, second.chunks_embedded) == (
        0,
        1,
        1,
        4,
        1,
    )
    assert "Rita Moreira" in ws.search("Lisbon office manager", k=1)[0].chunk.text


def test_bad_sql_changes_nothing(make_workspace: Callable[..., Workspace]) -> None:
    ws = make_workspace()
    url = f"sqlite:///{HR / 'offices.sqlite'}"
    ws.ingest_sql(url, "SELECT * FROM offices", "id", show_progress=False)
    generation = ws.store.generation
    with pytest.raises(IngestError, match="no such table"):
        ws.ingest_sql(url, "SELECT * FROM nowhere", "id", show_progress=False)
    with pytest.raises(IngestError, match="bad SQL URL"):
        ws.ingest_sql("notadb://x", "SELECT 1", "id", show_progress=False)
    with pytest.raises(IngestError, match="--id-column 'nope'"):
        ws.ingest_sql(url, "SELECT * FROM offices", "nope", show_progress=False)
    assert ws.store.generation == generation
    assert ws.stats()["documents"] == 6


def test_read_ahead_keeps_order_stays_bounded_and_stops_with_its_consumer() -> None:
    items: list[Any] = [Failure(f"f{i}", "x") for i in range(100)]
    loaded: list[int] = []

    def load(item: Any) -> Loaded:
        loaded.append(int(item.source[1:]))
        return Loaded(error=item.source)

    reader = read_ahead(items, load, depth=4)
    first = [next(reader)[1].error for _ in range(10)]
    assert first == [f"f{i}" for i in range(10)]
    time.sleep(0.3)
    assert len(loaded) <= 10 + 4 + 1, "the reader ran more than `depth` items ahead"
    reader.close()  # the consumer stops early (as when a store write fails): the thread must end
    assert not any(t.name == "ragtune-read-ahead" for t in threading.enumerate())
    assert len(loaded) < 100
