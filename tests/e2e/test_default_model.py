"""The default generator end to end on both example knowledge bases: real index, real Qwen2.5 0.5B.

Everything else in the suite answers with the 135M SmolLM2 for speed; these tests run what a user
gets from `ragtune init` (plus the example's persona) and check answers, verified citations, refusals.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragtune.config import DEFAULT_GENERATOR
from tests.conftest import HR, SUPPORT, init_workspace, run_cli, workspace_config

pytestmark = pytest.mark.slow


def ask(ws: Path, question: str) -> dict:
    return json.loads(run_cli("ask", question, "--json", cwd=ws).stdout)


@pytest.fixture(scope="module")
def support_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = init_workspace(
        tmp_path_factory.mktemp("support") / "ws", workspace_config(SUPPORT, small_model=False)
    )
    run_cli("ingest", str(SUPPORT / "docs"), cwd=ws)
    return ws


def test_support_answer_comes_from_the_right_document_with_a_verified_citation(
    support_workspace: Path,
) -> None:
    answer = ask(
        support_workspace, "If an alert just keeps firing, how often does Quarry re-send the notification?"
    )
    assert answer["debug"]["generator"] == DEFAULT_GENERATOR
    assert "4 hours" in answer["answer"] and not answer["refused"]
    assert [c["source"] for c in answer["citations"]][:1] == ["guides/alert-rules.md"]
    check = answer["verification"]
    assert check["supported_share"] == 1.0 and check["citation_precision"] == 1.0, check
    assert all(s["supported_by"] for s in check["sentences"])


def test_support_price_lookup_from_json_and_a_refusal(support_workspace: Path) -> None:
    price = ask(support_workspace, "How much does the Team plan cost?")
    assert "390" in price["answer"] and price["citations"][0]["source"] == "data/plans.json"
    helm = ask(support_workspace, "Is there an official Helm chart for running Quarry on Kubernetes?")
    assert helm["refused"] and helm["citations"] == [] and helm["verification"] is None


def test_hr_answer_with_the_example_persona(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws", workspace_config(HR, small_model=False))
    run_cli("ingest", str(HR / "docs"), cwd=ws)
    answer = ask(ws, "How many days of paid annual leave do full-time employees get per year?")
    assert "25" in answer["answer"] and not answer["refused"]
    assert answer["citations"][0]["source"] == "policies/annual-leave.md"
    assert answer["verification"]["supported_share"] == 1.0
