"""kill -9 in the middle of a real `ragtune ingest`: the previous index must still answer."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import HR_DOCS, init_workspace, run_cli

TOPICS = ["leave", "expenses", "travel", "pension", "laptops", "training", "parking", "onboarding"]


def _write_notes(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        topic = TOPICS[i % len(TOPICS)]
        (folder / f"note-{i:03d}.md").write_text(
            f"# Note {i} on {topic}\n\nMemo number {i} about {topic}: the reference code is REF{i:04d}. "
            + " ".join(f"{topic} detail {j} for memo {i}." for j in range(40))
        )


def _generation(index: Path) -> int:
    with sqlite3.connect(index) as db:
        return int(db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])


def test_killed_ingest_leaves_previous_index_usable_and_next_ingest_completes(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    init_workspace(ws)
    (ws / "ragtune.toml").write_text("[ingest]\nbatch_documents = 4\n")
    docs = tmp_path / "docs"
    (docs / "policies").mkdir(parents=True)
    (docs / "policies" / "annual-leave.md").write_bytes(
        (HR_DOCS / "policies" / "annual-leave.md").read_bytes()
    )
    run_cli("ingest", str(docs), cwd=ws)
    index = ws / ".ragtune" / "index" / "index.sqlite"
    before = _generation(index)

    _write_notes(docs / "notes", 120)
    process = subprocess.Popen(
        [sys.executable, "-m", "ragtune.cli", "ingest", str(docs), "--json"],
        cwd=ws,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 240
    while _generation(index) < before + 2 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert process.poll() is None, "ingest finished before it could be killed; give it more work"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()

    status = run_cli("status", "--json", cwd=ws)
    documents = int(json.loads(status.stdout)["documents"])
    assert 1 < documents < 121, "some batches were committed, not all"
    result = run_cli("search", "How many days of paid annual leave?", "-k", "1", "--json", cwd=ws)
    assert "policies/annual-leave.md" in result.stdout

    final = json.loads(run_cli("ingest", str(docs), "--json", cwd=ws).stdout)
    assert final["added"] == 121 - documents
    assert final["unchanged"] == documents
    assert final["failed"] == []
    hit = json.loads(run_cli("search", "REF0119", "--mode", "bm25", "-k", "1", "--json", cwd=ws).stdout)
    assert hit["hits"][0]["source"] == "notes/note-119.md"
