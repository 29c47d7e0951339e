"""`ragtune tune fusion` on the HR example: a real index, the 124 labelled questions, the real config file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ragtune.config import load_config
from tests.conftest import HR, run_cli


def test_fitted_fusion_beats_both_parts_and_is_saved_with_comments_kept(
    hr_cli_workspace: Path, tmp_path: Path
) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(hr_cli_workspace, ws, symlinks=True)
    (ws / "ragtune.toml").write_text("# my notes stay\n" + (ws / "ragtune.toml").read_text())
    fit = json.loads(
        run_cli("tune", "fusion", "--questions", str(HR / "questions.jsonl"), "--json", cwd=ws).stdout
    )
    ndcg = fit["ndcg@10"]
    chosen = ndcg["rrf"] if fit["fusion"] == "rrf" else ndcg[f"convex a={fit['alpha']:.2f}"]
    assert fit["questions"] == 124, "the 12 unanswerable questions have no gold document"
    assert chosen >= max(ndcg["bm25"], ndcg["dense"]) and chosen >= ndcg["rrf"]
    saved = load_config(ws / "ragtune.toml").retrieval
    assert (saved.fusion, saved.alpha) == (fit["fusion"], fit["alpha"])
    assert (ws / "ragtune.toml").read_text().startswith("# my notes stay\n")
    search = json.loads(run_cli("search", "carry over annual leave", "--json", cwd=ws).stdout)
    assert search["hits"][0]["source"] == "policies/annual-leave.md"


def test_dry_run_leaves_the_config_alone(hr_cli_workspace: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(hr_cli_workspace, ws, symlinks=True)
    before = (ws / "ragtune.toml").read_text()
    result = run_cli("tune", "fusion", "--questions", str(HR / "questions.jsonl"), "--dry-run", cwd=ws)
    assert "not saved (--dry-run)" in result.stdout and "<- chosen" in result.stdout
    assert (ws / "ragtune.toml").read_text() == before


def test_too_few_labels_is_a_clear_error(hr_cli_workspace: Path, tmp_path: Path) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"question": "hi?", "answers": [], "gold_doc": None}) + "\n")
    result = run_cli("tune", "fusion", "--questions", str(questions), cwd=hr_cli_workspace, check=False)
    assert result.returncode == 1 and "at least 5 questions with a gold_doc" in result.stderr
