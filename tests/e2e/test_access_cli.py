"""Issue 29's table, as a new user types it: the real `ragtune` command in a real workspace."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import HR_DOCS, init_workspace, run_cli

pytestmark = pytest.mark.slow


def _search(ws: Path, query: str, *flags: str) -> list[str]:
    result = run_cli("search", query, "-k", "10", "--json", *flags, cwd=ws)
    return [hit["source"] for hit in json.loads(result.stdout)["hits"]]


def test_readme_ingest_sequence_rerun_keeps_policies_for_staff(tmp_path: Path) -> None:
    docs = tmp_path / "docs" / "hr"
    shutil.copytree(HR_DOCS, docs)
    ws = init_workspace(tmp_path / "ws")
    run_cli("ingest", str(docs), cwd=ws)
    run_cli("ingest", str(docs / "policies"), "--groups", "staff", "--meta", "team=people", cwd=ws)
    run_cli("ingest", str(docs), cwd=ws)  # "re-run any time"

    status = json.loads(run_cli("status", "--json", cwd=ws).stdout)
    files = len([p for p in docs.rglob("*") if p.is_file()])
    assert status["documents"] == files, "one document per file"
    rules = {rule["path"].rsplit("/", 1)[-1]: rule for rule in status["rules"]}
    assert rules["hr"]["groups"] == [] and rules["policies"]["groups"] == ["staff"]
    assert rules["policies"]["documents"] == len(list((docs / "policies").iterdir()))

    anonymous = _search(ws, "bonus policy salary band midpoint")
    assert anonymous and not any(s.startswith("policies/") for s in anonymous)
    assert any(s.startswith("policies/") for s in _search(ws, "annual leave days", "--groups", "staff"))
    assert "policies/salary-bands.md" not in _search(ws, "salary band midpoint", "--groups", "staff")
    assert "policies/salary-bands.md" in _search(ws, "salary band midpoint", "--groups", "hr")


def test_a_later_ingest_without_groups_keeps_the_rule_and_widening_is_explicit(tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "salaries.csv").write_text("level,midpoint\nL3,69000\nL4,82000\n")
    ws = init_workspace(tmp_path / "ws")
    run_cli("ingest", str(kb), "--groups", "hr", cwd=ws)
    again = run_cli("ingest", str(kb), cwd=ws)
    assert "updated 0" in again.stdout
    assert _search(ws, "L3 midpoint salary") == []

    refused = run_cli("ingest", str(kb), "--public", cwd=ws, check=False)
    assert refused.returncode != 0 and "--widen" in refused.stderr and "Traceback" not in refused.stderr
    assert _search(ws, "L3 midpoint salary") == []

    reserved = run_cli("ingest", str(kb), "--groups", "public", cwd=ws, check=False)
    assert reserved.returncode != 0 and "reserved" in reserved.stderr

    widened = run_cli("ingest", str(kb), "--public", "--widen", cwd=ws)
    assert "widened salaries.csv" in widened.stdout and "everyone" in widened.stdout
    assert set(_search(ws, "L3 midpoint salary")) == {"salaries.csv"}
