"""`ragtune ingest --watch`: a saved edit, a new file and a deleted file reach search with no command."""

from __future__ import annotations

import json
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ragtune.errors import IngestError
from ragtune.ingest.sync import IngestReport
from ragtune.ingest.watch import SyncRound, watch_paths
from tests.conftest import init_workspace, run_cli


class Watcher:
    """The real CLI in a subprocess; its --json lines (one per sync round) read on a thread."""

    def __init__(self, ws: Path, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ragtune.cli", "ingest", *args, "--watch", "--json"],
            cwd=ws,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "NO_COLOR": "1"},
        )
        self.rounds: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.rounds.put(json.loads(line))

    def next_round(self, timeout: float = 120) -> dict[str, Any]:
        try:
            return self.rounds.get(timeout=timeout)
        except queue.Empty:
            exited = self.process.poll()
            stderr = self.process.stderr.read() if exited is not None and self.process.stderr else ""
            raise AssertionError(f"no sync round within {timeout} s (exit {exited}): {stderr}") from None

    def next_change(self) -> dict[str, Any]:
        """The next round that changed something (an editor's save may also set off a no-op round)."""
        while True:
            sync_round = self.next_round()
            assert sync_round["error"] is None, sync_round
            if sync_round["added"] or sync_round["updated"] or sync_round["deleted"] or sync_round["failed"]:
                return sync_round

    def stop(self, signum: int = signal.SIGTERM) -> int:
        self.process.send_signal(signum)
        return self.process.wait(timeout=30)


@pytest.fixture
def watcher_factory() -> Iterator[list[Watcher]]:
    started: list[Watcher] = []
    yield started
    for watcher in started:
        if watcher.process.poll() is None:
            watcher.process.kill()


def _top_source(ws: Path, query: str) -> tuple[str, str]:
    hit = json.loads(run_cli("search", query, "-k", "1", "--json", cwd=ws).stdout)["hits"][0]
    return hit["source"], hit["text"]


def test_watch_syncs_a_saved_edit_a_new_file_and_a_deleted_file(
    tmp_path: Path, watcher_factory: list[Watcher]
) -> None:
    ws = init_workspace(tmp_path / "ws")
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "leave.md").write_text("# Annual leave\n\nFull-time employees get 25 days of paid annual leave.\n")
    (kb / "parking.md").write_text("# Parking\n\nThe car park opens at 7:00 and badges open the gate.\n")
    watcher = Watcher(ws, str(kb))
    watcher_factory.append(watcher)
    assert watcher.next_change()["added"] == 2

    (kb / "leave.md").write_text("# Annual leave\n\nFull-time employees get 27 days of paid annual leave.\n")
    edited = watcher.next_change()
    assert (edited["updated"], edited["added"], edited["deleted"]) == (1, 0, 0), edited
    assert "27 days" in _top_source(ws, "How many days of paid annual leave?")[1]

    (kb / "bikes.md").write_text("# Bicycles\n\nBike racks are behind building B, next to the showers.\n")
    assert watcher.next_change()["added"] == 1
    assert _top_source(ws, "Where can I leave my bike?")[0] == "bikes.md"

    (kb / "parking.md").unlink()
    assert watcher.next_change()["deleted"] == 1
    status = json.loads(run_cli("status", "--json", cwd=ws).stdout)
    assert status["documents"] == 2

    (kb / "broken.pdf").write_bytes(b"%PDF-1.4 not really a pdf")
    hostile = watcher.next_change()
    assert len(hostile["failed"]) == 1 and watcher.process.poll() is None, (
        "a bad file does not stop the watch"
    )
    assert watcher.stop() == 0


@pytest.mark.slow
def test_a_watch_round_keeps_the_rule_of_a_file_without_front_matter(
    tmp_path: Path, watcher_factory: list[Watcher]
) -> None:
    ws = init_workspace(tmp_path / "ws")
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "salaries.csv").write_text("level,midpoint\nL3,69000\n")
    run_cli("ingest", str(kb), "--groups", "hr", cwd=ws)
    watcher = Watcher(ws, str(kb))  # no --groups: the rule recorded above applies
    watcher_factory.append(watcher)
    watcher.next_round()
    (kb / "salaries.csv").write_text("level,midpoint\nL3,71000\n")
    (kb / "bonus.csv").write_text("level,bonus\nL3,4000\n")
    changed = watcher.next_change()
    assert changed["updated"] + changed["added"] >= 1
    while changed["updated"] + changed["added"] < 2:
        extra = watcher.next_change()
        changed = {k: changed[k] + extra[k] for k in ("updated", "added")}
    anonymous = json.loads(run_cli("search", "L3 midpoint bonus", "--json", cwd=ws).stdout)["hits"]
    assert anonymous == [], "a watched restricted file stays restricted after its change"
    hr = json.loads(run_cli("search", "L3 midpoint", "--groups", "hr", "--json", cwd=ws).stdout)["hits"]
    assert any("71000" in hit["text"] for hit in hr)
    assert watcher.stop() == 0


def test_watch_resyncs_sql_rows_on_an_interval(tmp_path: Path, watcher_factory: list[Watcher]) -> None:
    ws = init_workspace(tmp_path / "ws")
    database = tmp_path / "offices.sqlite"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE offices (id INTEGER PRIMARY KEY, city TEXT, manager TEXT)")
        db.executemany(
            "INSERT INTO offices VALUES (?, ?, ?)", [(1, "Lisbon", "Ana Costa"), (2, "Oslo", "Per Lund")]
        )
    watcher = Watcher(
        ws,
        "--sql",
        f"sqlite:///{database}",
        "--query",
        "SELECT * FROM offices",
        "--id-column",
        "id",
        "--every",
        "0.5",
    )
    watcher_factory.append(watcher)
    assert watcher.next_change()["added"] == 2
    with sqlite3.connect(database) as db:
        db.execute("UPDATE offices SET manager = 'Rui Alves' WHERE id = 1")
    assert watcher.next_change()["updated"] == 1
    assert "Rui Alves" in _top_source(ws, "Who manages the Lisbon office?")[1]
    assert watcher.stop(signal.SIGINT) == 0


def test_watching_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    rounds = watch_paths([tmp_path / "nope"], lambda: pytest.fail("nothing to sync"))
    with pytest.raises(IngestError, match="no such file or folder to watch"):
        next(rounds)


def test_a_round_reads_the_same_in_the_cli_and_the_server_log() -> None:
    done = SyncRound("docs/a.md changed", report=IngestReport(updated=1, seconds=0.25))
    assert done.summary() == "docs/a.md changed · added 0, updated 1, deleted 0, failed 0 · 0.25s"
    assert SyncRound("every 10s", error="index busy").summary() == "every 10s · not synced: index busy"
    held = IngestReport(updated=1, held=[{"path": "bands.md", "from": ["hr"], "to": []}], seconds=0.5)
    assert "kept restricted 1 (--widen to confirm)" in SyncRound("bands.md changed", report=held).summary()
