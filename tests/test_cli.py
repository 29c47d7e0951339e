"""The real `ragtune` command in subprocesses: flags, JSON contract, exit codes and error lines."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import HR, init_workspace, run_cli


def test_help_lists_the_commands() -> None:
    text = run_cli("--help").stdout
    for command in ("init", "ingest", "search", "eval", "status"):
        assert command in text
    assert "--as-user" in run_cli("search", "--help").stdout


def test_ingest_json_has_the_contract_keys(hr_cli_workspace: Path) -> None:
    report = json.loads(run_cli("ingest", str(HR / "docs"), "--json", cwd=hr_cli_workspace).stdout)
    assert {"added", "updated", "deleted", "unchanged", "failed", "chunks_embedded", "seconds"} <= set(report)
    assert report["unchanged"] == 28 and report["chunks_embedded"] == 0


def test_search_json_hits_have_sources_and_scores(hr_cli_workspace: Path) -> None:
    result = json.loads(
        run_cli(
            "search", "Who is the office manager in Lisbon?", "-k", "3", "--json", cwd=hr_cli_workspace
        ).stdout
    )
    hits = result["hits"]
    assert len(hits) == 3
    assert {"doc_id", "source", "title", "chunk_id", "text", "score", "groups"} <= set(hits[0])
    assert "sql:offices:3" in [hit["source"] for hit in hits]
    for mode in ("dense", "bm25"):
        out = json.loads(
            run_cli("search", "Founders' Day", "--mode", mode, "--json", cwd=hr_cli_workspace).stdout
        )
        assert out["hits"][0]["source"] == "data/holidays-2026.csv"


def test_search_as_user_sees_restricted_documents(hr_cli_workspace: Path) -> None:
    query = "salary band midpoint senior engineer"
    anonymous = json.loads(run_cli("search", query, "-k", "20", "--json", cwd=hr_cli_workspace).stdout)
    assert anonymous["hits"], "anonymous callers get public hits, none of them restricted"
    assert all(hit["source"] != "policies/salary-bands.md" for hit in anonymous["hits"])
    for flags in (["--as-user", "dana"], ["--groups", "hr"]):
        hr = json.loads(run_cli("search", query, "-k", "1", "--json", *flags, cwd=hr_cli_workspace).stdout)
        assert hr["hits"][0]["source"] == "policies/salary-bands.md"
        assert hr["hits"][0]["groups"] == ["hr"]


def test_table_output_names_sources(hr_cli_workspace: Path) -> None:
    text = run_cli("search", "paid annual leave days", "-k", "2", cwd=hr_cli_workspace).stdout
    assert "policies/annual-leave.md" in text and "score" in text


def test_strict_fails_when_a_file_is_skipped(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    init_workspace(ws)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ok.md").write_text("# Fine\nA perfectly good note about parking.")
    (docs / "broken.pdf").write_bytes(b"%PDF garbage")
    lenient = run_cli("ingest", str(docs), cwd=ws)
    assert "skipped broken.pdf: not a readable PDF" in " ".join(lenient.stderr.split())
    (docs / "broken.pdf").write_bytes(b"%PDF other garbage")
    strict = run_cli("ingest", str(docs), "--strict", cwd=ws, check=False)
    assert strict.returncode == 1
    assert json.loads(run_cli("status", "--json", cwd=ws).stdout)["documents"] == 1


def test_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    result = run_cli("search", "anything", cwd=tmp_path, check=False)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "no ragtune.toml" in result.stderr and "ragtune init" in result.stderr
    debug = run_cli("--debug", "search", "anything", cwd=tmp_path, check=False)
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_invalid_config_names_the_field(tmp_path: Path) -> None:
    (tmp_path / "ragtune.toml").write_text("[retrieval]\nmode = 'fuzzy'\n[chunking]\nmax_tokns = 3\n")
    result = run_cli("search", "x", cwd=tmp_path, check=False)
    assert result.returncode == 1
    assert "retrieval.mode" in result.stderr and "chunking.max_tokns" in result.stderr
