"""Hostile files through the real CLI ingest: each is skipped with one line naming it, the rest is indexed."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import init_workspace, run_cli
from tests.hostile.files import GOOD, hostile_files, write_files


def test_cli_ingest_skips_each_hostile_file_and_indexes_the_rest(tmp_path: Path) -> None:
    ws, docs = tmp_path / "ws", tmp_path / "docs"
    files = hostile_files()
    write_files(docs, files)
    init_workspace(ws)
    result = run_cli("ingest", str(docs), cwd=ws)
    skipped = [line for line in result.stderr.splitlines() if line.startswith("skipped ")]
    assert len(skipped) == len(files), result.stderr
    for name, _, reason in files:
        lines = [line for line in skipped if line.startswith(f"skipped {name}: ")]
        assert len(lines) == 1, f"one line for {name}:\n{result.stderr}"
        assert reason.lower() in lines[0].lower(), lines[0]
        assert "Traceback" not in result.stderr
    status = json.loads(run_cli("status", "--json", cwd=ws).stdout)
    assert status["documents"] == len(GOOD)
    hits = json.loads(run_cli("search", "gardening leave days", "--json", cwd=ws).stdout)["hits"]
    assert hits[0]["source"] == "good-policy.md"

    strict = run_cli("ingest", str(docs), "--strict", cwd=ws, check=False)
    assert strict.returncode == 1, "--strict still fails when files were skipped"


def test_a_file_that_turns_hostile_keeps_its_previous_version(tmp_path: Path) -> None:
    ws, docs = tmp_path / "ws", tmp_path / "docs"
    write_files(docs, [])
    init_workspace(ws)
    run_cli("ingest", str(docs), cwd=ws)
    (docs / "good-data.json").write_bytes(b"[" * 4000 + b"]" * 4000)
    result = run_cli("ingest", str(docs), cwd=ws)
    assert "skipped good-data.json: nested too deeply" in result.stderr
    hits = json.loads(run_cli("search", "canteen opens", "--json", cwd=ws).stdout)["hits"]
    assert hits[0]["source"] == "good-data.json" and "07:30" in hits[0]["text"], "old version still served"
