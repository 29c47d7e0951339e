"""Access belongs to the source, not to one ingest command: the hostile and careless sequences of issue 29,
against the real embedder and a real on-disk index."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from ragtune.errors import ConfigError, IngestError, SourceDocumentError, WideningError
from ragtune.ingest.sources import FileSource
from ragtune.workspace import Workspace
from tests.conftest import HR

BONUS = "bonus scheme payout"
BANDS_QUERY = "salary band midpoint for a senior engineer"


def _files(folder: Path) -> int:
    return len([p for p in folder.rglob("*") if p.is_file()])


def _groups(ws: Workspace) -> dict[str, list[str]]:
    """source -> groups of every indexed document (read as an internal job: every group)."""
    return {d.source: d.groups for d in ws.store.documents(ws.everyone())}


def _readable(ws: Workspace, groups: list[str] | None = None) -> set[str]:
    return {d.source for d in ws.store.documents(ws.caller(groups))}


def test_readme_sequence_keeps_policies_restricted_and_one_document_per_file(
    make_workspace: Callable[..., Workspace], hr_copy: Path
) -> None:
    ws = make_workspace()
    ws.ingest([hr_copy], show_progress=False)
    ws.ingest([hr_copy / "policies"], groups=["staff"], show_progress=False)
    again = ws.ingest([hr_copy], show_progress=False)  # "re-run any time"
    assert again.added == 0 and again.deleted == 0
    assert ws.stats()["documents"] == _files(hr_copy), "every file is one document"
    groups = _groups(ws)
    assert groups["policies/annual-leave.md"] == ["staff"]
    assert groups["policies/salary-bands.md"] == ["hr"], "front matter names its own readers"
    anonymous = _readable(ws)
    assert not any(source.startswith("policies/") for source in anonymous)
    assert all(h.chunk.source != "policies/salary-bands.md" for h in ws.search(BANDS_QUERY, k=10))
    assert "policies/annual-leave.md" in _readable(ws, ["staff"])


def test_the_sequence_in_the_other_order_rehomes_the_subfolder(
    make_workspace: Callable[..., Workspace], hr_copy: Path
) -> None:
    ws = make_workspace()
    ws.ingest([hr_copy / "policies"], groups=["staff"], show_progress=False)
    ws.ingest([hr_copy], show_progress=False)
    assert ws.stats()["documents"] == _files(hr_copy)
    assert _groups(ws)["policies/annual-leave.md"] == ["staff"]
    assert not any(s.startswith("policies/") for s in _readable(ws))


def test_a_rule_outlives_an_ingest_without_groups(make_workspace: Callable[..., Workspace], tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "salaries.csv").write_text("level,midpoint\nL3,69000\nL4,82000\n")
    ws = make_workspace()
    ws.ingest([kb], groups=["hr"], show_progress=False)
    report = ws.ingest([kb], show_progress=False)
    assert report.updated == 0
    assert _groups(ws) == {"salaries.csv": ["hr"]}
    (kb / "salaries.csv").write_text("level,midpoint\nL3,70000\nL4,82000\n")  # a CSV has no front matter
    (kb / "new.csv").write_text("level,midpoint\nL5,99000\n")
    ws.ingest([kb], show_progress=False)
    assert _groups(ws) == {"salaries.csv": ["hr"], "new.csv": ["hr"]}, "the rule covers new files too"
    rules = tomllib.loads((ws.root / "ragtune.toml").read_text())["sources"]
    assert rules == [{"path": os.path.relpath(kb, ws.root), "groups": ["hr"]}]


def test_widening_needs_widen_and_names_what_widened(
    make_workspace: Callable[..., Workspace], tmp_path: Path
) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "salaries.csv").write_text("level,midpoint\nL3,69000\n")
    ws = make_workspace()
    ws.ingest([kb], groups=["hr"], show_progress=False)
    config = (ws.root / "ragtune.toml").read_text()
    for groups in ([], ["hr", "engineering"], ["engineering"]):
        with pytest.raises(WideningError, match="--widen"):
            ws.ingest([kb], groups=groups, show_progress=False)
    assert (ws.root / "ragtune.toml").read_text() == config, "a refused change writes nothing"
    assert _groups(ws) == {"salaries.csv": ["hr"]}
    narrowed = ws.ingest([kb], groups=["hr"], show_progress=False)
    assert narrowed.widened == []
    widened = ws.ingest([kb], groups=[], widen=True, show_progress=False)
    assert widened.widened == [{"path": "salaries.csv", "from": ["hr"], "to": []}]
    assert _readable(ws) == {"salaries.csv"}


def test_front_matter_edits_cannot_widen_without_widen(
    make_workspace: Callable[..., Workspace], tmp_path: Path
) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    bands = kb / "bands.md"
    bands.write_text("---\ngroups: [hr]\n---\n# Salary bands\n\nL3 midpoint is 69,000.\n")
    ws = make_workspace()
    ws.ingest([kb], show_progress=False)
    bands.write_text("# Salary bands\n\nL3 midpoint is 70,000.\n")  # someone drops the front matter
    held = ws.ingest([kb], show_progress=False)
    assert held.held == [{"path": "bands.md", "from": ["hr"], "to": []}]
    assert _readable(ws) == set() and _groups(ws) == {"bands.md": ["hr"]}
    hits = ws.search("L3 midpoint", groups=["hr"], k=1)
    assert "70,000" in hits[0].chunk.text, "the content is fresh, the access is the old one"
    assert ws.ingest([kb], show_progress=False).held, "a held document is reported on every sync"
    widened = ws.ingest([kb], widen=True, show_progress=False)
    assert widened.widened == [{"path": "bands.md", "from": ["hr"], "to": []}]
    assert _readable(ws) == {"bands.md"}


def test_front_matter_cannot_make_a_ruled_file_public(
    make_workspace: Callable[..., Workspace], tmp_path: Path
) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "memo.md").write_text("---\ngroups: []\n---\n# Memo\n\nThe reorganisation starts in May.\n")
    ws = make_workspace()
    report = ws.ingest([kb], groups=["board"], show_progress=False)
    assert _groups(ws) == {"memo.md": ["board"]}
    assert report.notices and "kept ['board']" in report.notices[0]["message"]


def test_sql_rows_keep_their_rule(make_workspace: Callable[..., Workspace], tmp_path: Path) -> None:
    database = tmp_path / "offices.sqlite"
    database.write_bytes((HR / "offices.sqlite").read_bytes())
    url = f"sqlite:///{database}"
    ws = make_workspace()
    ws.ingest_sql(url, "SELECT * FROM offices", "id", groups=["facilities"], show_progress=False)
    with sqlite3.connect(database) as db:
        db.execute("UPDATE offices SET office_manager = 'Rita Moreira' WHERE id = 3")
    report = ws.ingest_sql(url, "SELECT * FROM offices", "id", show_progress=False)
    assert report.updated == 1
    assert all(groups == ["facilities"] for groups in _groups(ws).values())
    assert _readable(ws) == set()
    with pytest.raises(WideningError):
        ws.ingest_sql(url, "SELECT * FROM offices", "id", groups=[], show_progress=False)


def test_links_devices_and_fifos_are_skipped_with_a_reason(
    make_workspace: Callable[..., Workspace], tmp_path: Path
) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "policy.md").write_text("# Policy\n\nDesks are cleared every Friday.\n")
    outside = tmp_path / "secret.txt"
    outside.write_text("the root password is hunter2")
    (kb / "env.txt").symlink_to("/proc/self/environ")
    (kb / "zero.txt").symlink_to("/dev/zero")
    (kb / "secret.txt").symlink_to(outside)
    (kb / "again.md").symlink_to(kb / "policy.md")
    (kb / "up").symlink_to(tmp_path, target_is_directory=True)
    os.mkfifo(kb / "pipe.txt")
    ws = make_workspace()
    done: list[object] = []
    worker = threading.Thread(target=lambda: done.append(ws.ingest([kb], show_progress=False)), daemon=True)
    started = time.monotonic()
    worker.start()
    worker.join(timeout=60)
    assert done, f"the ingest hung ({time.monotonic() - started:.0f}s): a FIFO or device was read"
    report = done[0]
    failed = {f["path"]: f["error"] for f in report.failed}  # type: ignore[attr-defined]
    assert set(failed) == {"env.txt", "zero.txt", "secret.txt", "again.md", "up", "pipe.txt"}
    assert "leaves the source folder" in failed["env.txt"] and "leaves" in failed["secret.txt"]
    assert "indexed under its own name" in failed["again.md"]
    assert "not a regular file" in failed["pipe.txt"]
    assert _groups(ws) == {"policy.md": []}
    assert all("hunter2" not in h.chunk.text for h in ws.search("hunter2 root password", k=5))


@pytest.mark.parametrize("path", ["/proc/self", "/dev/zero", "/sys/kernel"])
def test_system_paths_are_never_sources(make_workspace: Callable[..., Workspace], path: str) -> None:
    ws = make_workspace()
    with pytest.raises(IngestError):
        ws.ingest([path], show_progress=False)


@pytest.mark.parametrize("name", ["public", "Everyone", "", "-x", "a b", "hr,staff", "x" * 65])
def test_bad_or_reserved_group_names_are_refused(make_workspace: Callable[..., Workspace], name: str) -> None:
    ws = make_workspace()
    with pytest.raises(ConfigError, match="group name"):
        ws.ingest([HR / "docs" / "txt"], groups=[name], show_progress=False)
    with pytest.raises(ConfigError, match="group name"):
        ws.users.add("erin", [name])


def test_front_matter_with_a_reserved_group_is_skipped(
    make_workspace: Callable[..., Workspace], tmp_path: Path
) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "a.md").write_text("---\ngroups: [public]\n---\n# A\n\nText.\n")
    (kb / "b.md").write_text("# B\n\nOther text.\n")
    report = make_workspace().ingest([kb], show_progress=False)
    assert [f["path"] for f in report.failed] == ["a.md"] and "reserved" in report.failed[0]["error"]
    assert report.added == 1


def test_an_upload_named_like_an_ingested_file_is_its_own_document(
    make_workspace: Callable[..., Workspace], hr_copy: Path, tmp_path: Path
) -> None:
    ws = make_workspace()
    ws.ingest([hr_copy / "policies"], show_progress=False)
    ingested = {d.source: d.doc_id for d in ws.store.documents(ws.everyone())}["annual-leave.md"]
    staged = ws.uploads.new_staging_dir() / "annual-leave.md"
    staged.write_text("# Annual leave (draft)\n\nA draft says 30 days.\n")
    uploaded, _ = ws.upload(staged)
    assert uploaded is not None and uploaded.doc_id != ingested and ws.is_upload(uploaded)
    with pytest.raises(SourceDocumentError, match="remove it there"):
        ws.delete(ingested)
    assert ws.delete(uploaded.doc_id) is not None
    remaining = {d.doc_id for d in ws.store.documents(ws.everyone())}
    assert ingested in remaining and uploaded.doc_id not in remaining
    assert (hr_copy / "policies" / "annual-leave.md").exists()


def test_a_reupload_without_groups_keeps_the_restriction(make_workspace: Callable[..., Workspace]) -> None:
    ws = make_workspace()
    first = ws.uploads.new_staging_dir() / "bands.md"
    first.write_text("# Bands\n\nL3 midpoint is 69,000.\n")
    ws.upload(first, ["hr"])
    second = ws.uploads.new_staging_dir() / "bands.md"
    second.write_text("# Bands\n\nL3 midpoint is 70,000.\n")
    document, report = ws.upload(second)
    assert report.held and document is not None and document.groups == ["hr"]
    assert _readable(ws) == set()


def test_a_workspace_indexed_before_rules_keeps_its_restrictions(
    make_workspace: Callable[..., Workspace], hr_copy: Path
) -> None:
    """The README sequence as the old version left it: the policies twice, once for staff (their own
    folder), once public (the parent folder), and no rules in ragtune.toml."""
    ws = make_workspace()
    for folder, groups in ((hr_copy, []), (hr_copy / "policies", ["staff"])):
        origin = os.path.relpath(folder, ws.root)
        legacy = FileSource(folder, origin=origin, groups_for=lambda _, g=groups: g)  # type: ignore[misc]
        ws.sync(legacy, show_progress=False)
    assert ws.stats()["documents"] > _files(hr_copy), "the old duplicates are there"
    ws.ingest([hr_copy], show_progress=False)
    assert ws.stats()["documents"] == _files(hr_copy)
    assert _groups(ws)["policies/annual-leave.md"] == ["staff"]
    assert not any(s.startswith("policies/") for s in _readable(ws))
    rules = tomllib.loads((ws.root / "ragtune.toml").read_text())["sources"]
    assert {"path": os.path.relpath(hr_copy / "policies", ws.root), "groups": ["staff"]} in rules
