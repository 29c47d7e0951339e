"""Access groups made visible: ingest names restricted documents, status counts them, unheld groups warn."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import init_workspace, run_cli

LEAVE = "---\ngroups: [auditors]\n---\n# Leave policy\n\nEveryone gets 25 days of annual leave.\n"
BANDS = "---\ngroups: [hr]\n---\n# Salary bands\n\nL3 midpoint is 69,000.\n"
PUBLIC = "# Canteen\n\nThe canteen opens at 07:30.\n"


def test_groups_nobody_holds_are_named_at_ingest_and_in_status(tmp_path: Path) -> None:
    ws, docs = tmp_path / "ws", tmp_path / "docs"
    docs.mkdir()
    (docs / "leave.md").write_text(LEAVE)
    (docs / "bands.md").write_text(BANDS)
    (docs / "canteen.md").write_text(PUBLIC)
    init_workspace(ws)
    run_cli("users", "add", "dana", "--groups", "hr", cwd=ws)

    ingest = run_cli("ingest", str(docs), cwd=ws)
    assert "restricted to group auditors (1): leave.md" in ingest.stdout
    assert "restricted to group hr (1): bands.md" in ingest.stdout
    warnings = [line for line in ingest.stderr.splitlines() if "warning:" in line]
    assert len(warnings) == 1 and "'auditors'" in warnings[0] and "reach no one" in warnings[0], ingest.stderr

    status = json.loads(run_cli("status", "--json", cwd=ws).stdout)
    groups = {row["group"]: row for row in status["groups"]}
    assert groups["(public)"]["documents"] == 1
    assert groups["hr"] == {"group": "hr", "documents": 1, "holders": ["dana"], "unheld": False}
    assert groups["auditors"]["unheld"] and groups["auditors"]["documents"] == 1
    table = run_cli("status", cwd=ws)
    assert "nobody" in table.stdout and "no user or key holds group 'auditors'" in table.stderr

    run_cli("users", "add", "erin", "--groups", "auditors", cwd=ws)
    assert "warning" not in run_cli("status", cwd=ws).stderr, "held now: no warning"
